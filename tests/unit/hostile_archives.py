"""Archives that try to write outside the release they are unpacked into.

Each shape passes a purely textual check of member names and link targets: the escape
only shows when a member is resolved against the members before it (a path that
crosses an earlier symlink, a symlink chain whose ``..`` climbs out, a hard link to a
file reached through such a chain, then a regular file of the same name that writes
through the hard link).  ``depth`` is how many levels above the release the payload
lands; the scratch release sits three levels below its app root's parent.
"""
import io
import tarfile

SYM, LNK, REG, DIR = tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.REGTYPE, tarfile.DIRTYPE


def _climb(depth):
    """Members that make ``a/b1/.../b<depth>`` resolve ``depth`` levels above the release."""
    members = [("a", SYM, ".", b"")]
    path = "a"
    for level in range(1, depth + 1):
        members.append(("%s/b%d" % (path, level), SYM, "..", b""))
        path = "%s/b%d" % (path, level)
    return members, path


def through_symlink_chain(depth, victim):
    members, path = _climb(depth)
    return members + [("%s/%s" % (path, victim), REG, "", b"PWNED\n")]


def hardlink_then_file(depth, victim):
    members, path = _climb(depth)
    return members + [("h", LNK, "%s/%s" % (path, victim), b""), ("h", REG, "", b"PWNED\n")]


def dotdot_after_symlink(victim):
    # sub/y -> ../x/.. reads as "." textually; with x -> "." it is the release's parent.
    return [("x", SYM, ".", b""), ("sub", DIR, "", b""), ("sub/y", SYM, "../x/..", b""),
            ("sub/y/%s" % victim, REG, "", b"PWNED\n")]


def link_defined_later(victim):
    # y -> z/.. is harmless until z -> "." arrives; then y is the release's parent.
    return [("y", SYM, "z/..", b""), ("z", SYM, ".", b""), ("y/%s" % victim, REG, "", b"PWNED\n")]


def replace_symlink_with_file(victim_rel):
    return [("l", SYM, victim_rel, b""), ("l", REG, "", b"PWNED\n")]


def write(path, members, compression="gz"):
    with tarfile.open(path, "w:" + compression) as tar:
        for name, kind, link, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.mode = 0o755 if kind == DIR else 0o644
            info.size = len(data) if kind == REG else 0
            tar.addfile(info, io.BytesIO(data) if kind == REG else None)
    return path


def tarinfos(members):
    out = []
    for name, kind, link, _data in members:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        out.append(info)
    return out
