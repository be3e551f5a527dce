"""Write unsafe and oversized archives for the release scenario's refusal tests."""
import hashlib
import io
import os
import sys
import tarfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def write(name, members):
    path = os.path.join(out, name)
    with tarfile.open(path, "w:gz") as tar:
        for member_name, kind, data, link in members:
            info = tarfile.TarInfo(member_name)
            info.type = kind
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    with open(path + ".sha256", "w") as handle:
        handle.write("%s  %s\n" % (digest, name))


REG, SYM, LNK = tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
write("absolute.tar.gz", [("ok.txt", REG, b"x", ""), ("/tmp/evil-absolute", REG, b"x", "")])
write("dotdot.tar.gz", [("ok.txt", REG, b"x", ""), ("../../evil-dotdot", REG, b"x", "")])
write("symlink.tar.gz", [("ok.txt", REG, b"x", ""), ("link", SYM, b"", "/etc/shadow")])
write("hardlink.tar.gz", [("ok.txt", REG, b"x", ""), ("hard", LNK, b"", "../../etc/passwd")])
# Random bytes do not compress: 3 MiB unpacked fills a 1 MiB tmpfs while unpacking.
write("big.tar.gz", [("big-%d.bin" % i, REG, os.urandom(1 << 20), "") for i in range(3)])
