"""Build the sample app's release tarballs, each with a ``.sha256`` beside it.

Versions 1.0.0, 1.1.0 and 2.0.0 are healthy; 3.0.0 is healthy but reports no version
(``/health`` answers plain ``Ok``); 6.7.0 is healthy at ``/healthz`` but answers 404 at ``/health``,
where the lab's HAProxy checks; 6.6.6 starts but fails its health
check; 6.6.7 never starts; 6.6.8 fails its health check only on app03 and app04; 6.5.0 starts and
accepts connections but never answers one (a process stuck before it is ready);
4.0.0 needs database schema 2 and carries its migration (``bin/migrate``), which cannot be undone;
6.6.5's migration fails. 6.6.9 is hostile: besides a working app, its members climb out of the release through
earlier symlinks (to /etc, to the app root) and write through a hard link, shapes that a
purely textual member check lets through.  Each tarball carries ``--mb`` MiB of incompressible,
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
    # Reports no version: /health says plain "Ok", as most third-party apps do.
    "3.0.0": "plain",
    # Healthy at /healthz; /health, which the lab's HAProxy checks, answers 404.
    "6.7.0": "healthz",
    "6.6.6": "unhealthy",
    "6.6.7": "crash",
    # Listens, accepts, never answers: a health probe that waits for ever unless something bounds it.
    "6.5.0": "hang",
    # Healthy on the first hosts, broken on app03 and app04: a failure in a later batch.
    "6.6.8": "unhealthy-on:app03,app04",
    "6.6.9": "hostile",
    # Healthy at /health, but 5 % of the pages fail, or every page is 300 ms late: only an analysis catches them.
    "5.0.0": "errors",
    "5.1.0": "slow",
    # Degrades after the rollout: 20 % of its pages fail from 20 s after it started (the watch catches it).
    "5.2.0": "errors-after:20",
    # Needs database schema 2 (lab/app/migrate.py, run as bin/migrate, brings it); its migration cannot be undone.
    "4.0.0": "schema",
    # Its migration fails (and prints the app's secret key, which must never be shown).
    "6.6.5": "migration-fails",
}
# The releases that carry bin/migrate, and those of them whose migration cannot be undone.
MIGRATING = {"schema", "migration-fails"}
IRREVERSIBLE = {"schema"}
HERE = os.path.dirname(os.path.abspath(__file__))


def filler(size):
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"conveyor-filler-%d" % counter).digest()
        counter += 1
    return bytes(out[:size])


def add(tar, name, data, mode, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = mode
    info.mtime = 1700000000
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def add_escapes(tar):
    """Members that reach /etc and the app root from releases/<tmp>/ through earlier symlinks.

    ``a`` -> ``.``, then ``a/b1`` -> ``..`` (textually ``.``) and so on: ``a/b1/b2/b3/b4`` is ``/``.
    """
    add(tar, "a", b"", 0o777, tarfile.SYMTYPE, ".")
    path = "a"
    for level in range(1, 5):
        add(tar, "%s/b%d" % (path, level), b"", 0o777, tarfile.SYMTYPE, "..")
        path = "%s/b%d" % (path, level)
    add(tar, path + "/etc/conveyor-pwned", b"written outside the release\n", 0o644)
    # A hard link to a planted file of the app root, then a regular file of the same name.
    add(tar, "h", b"", 0o644, tarfile.LNKTYPE, "a/b1/b2/planted.txt")
    add(tar, "h", b"overwritten through a hard link\n", 0o644)


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
        if behaviour == "hostile":
            add_escapes(tar)
        if behaviour in MIGRATING:
            with open(os.path.join(HERE, "migrate.py"), "rb") as handle:
                add(tar, "bin/migrate", b"#!/usr/bin/env python3\n" + handle.read(), 0o755)
        if behaviour in IRREVERSIBLE:
            add(tar, "MIGRATION_IRREVERSIBLE", b"drops the orders.legacy_total column\n", 0o644)
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
