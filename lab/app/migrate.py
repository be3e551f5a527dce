"""The sample app's database migration (``bin/migrate`` in the releases that need one).

The database is a SQLite file on a volume every lab app host mounts (``/srv/lab-db``), standing for the
database server a real fleet shares. Each run appends a row to ``migrations`` (so a test counts how often
it ran); the ``schema`` release then raises the schema to 2, and the ``migration-fails`` release fails.
"""
import os
import socket
import sqlite3
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DB = os.environ.get("APP_DB", "/srv/lab-db/sample.sqlite")


def read(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as handle:
        return handle.read().strip()


def main():
    behaviour = read("BEHAVIOUR")
    con = sqlite3.connect(DB, timeout=10)
    con.execute("CREATE TABLE IF NOT EXISTS migrations (run_id TEXT, host TEXT, release_id TEXT, version TEXT, "
                "user TEXT, at TEXT DEFAULT (datetime('now')))")
    con.execute("INSERT INTO migrations (run_id, host, release_id, version, user) VALUES (?, ?, ?, ?, ?)",
                (os.environ.get("CONVEYOR_RUN_ID", ""), socket.gethostname(), os.environ.get("CONVEYOR_RELEASE_ID", ""),
                 read("VERSION"), str(os.getuid())))
    con.commit()
    before = con.execute("PRAGMA user_version").fetchone()[0]
    print("connecting as sample with key %s" % os.environ.get("APP_SECRET_KEY", "(none)"))
    if behaviour == "migration-fails":
        print("ALTER TABLE orders failed: duplicate column total (key %s)" % os.environ.get("APP_SECRET_KEY"),
              file=sys.stderr)
        return 3
    con.execute("PRAGMA user_version = 2")
    con.commit()
    print("schema %d -> 2" % before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
