"""Build the sample app's release tarballs, each with a ``.sha256`` beside it.

Versions 1.0.0, 1.1.0 and 2.0.0 are healthy; 6.6.6 starts but fails its health
check; 6.6.7 never starts; 6.6.8 fails its health check only on app03 and app04.  Each tarball carries ``--mb`` MiB of incompressible,
reproducible filler so transfers are real.  Builds are byte-for-byte
reproducible, so checksums only change when the inputs do.
"""
import argparse
import gzip
import hashlib
import io
import os
import tarfile

VERSIONS = {
    "1.0.0": "healthy",
    "1.1.0": "healthy",
    "2.0.0": "healthy",
    "6.6.6": "unhealthy",
    "6.6.7": "crash",
    # Healthy on the first hosts, broken on app03 and app04: a failure in a later batch.
    "6.6.8": "unhealthy-on:app03,app04",
}
HERE = os.path.dirname(os.path.abspath(__file__))


def filler(size):
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"conveyor-filler-%d" % counter).digest()
        counter += 1
    return bytes(out[:size])


def add(tar, name, data, mode):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1700000000
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def build(version, behaviour, out_dir, filler_bytes):
    name = "sample-%s.tar.gz" % version
    path = os.path.join(out_dir, name)
    with open(os.path.join(HERE, "app.py"), "rb") as handle:
        app = handle.read()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        add(tar, "app.py", app, 0o755)
        add(tar, "VERSION", (version + "\n").encode(), 0o644)
        add(tar, "BEHAVIOUR", (behaviour + "\n").encode(), 0o644)
        add(tar, "static/filler.bin", filler_bytes, 0o644)
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    data = compressed.getvalue()
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    digest = hashlib.sha256(data).hexdigest()
    with open(path + ".sha256", "w", encoding="utf-8") as handle:
        handle.write("%s  %s\n" % (digest, name))
    return name, digest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the tarballs")
    parser.add_argument("--mb", type=float, default=float(os.environ.get("LAB_ARTIFACT_MB", "1")),
                        help="MiB of filler in each tarball (LAB_ARTIFACT_MB, default 1)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    data = filler(int(args.mb * 1024 * 1024))
    for version, behaviour in VERSIONS.items():
        name, digest = build(version, behaviour, args.out, data)
        print("%s  %s (%s)" % (digest[:12], name, behaviour))


if __name__ == "__main__":
    main()
