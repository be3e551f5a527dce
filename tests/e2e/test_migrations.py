"""Database migrations on the lab (#15): once per run, before the first switch, as the app user with the service's
environment; a failing one changes nothing live; one that cannot be undone stops rollbacks past it unless the
operator gives a reason, which the change log records.

The database is a SQLite file on a volume every app host mounts (/srv/lab-db), as a real fleet shares a database
server. Release 4.0.0 needs schema 2 (its /health fails without it) and carries bin/migrate, which brings it and
cannot be undone (MIGRATION_IRREVERSIBLE); 6.6.5's migration fails, printing the app's secret key.
"""
import json
import os

import pytest

from .conftest import ROOT, Traffic, app_hosts, lb_servers, live_versions, locks, on_host, playbook, releases

MIGRATE = ["-e", "app_migrate_command=bin/migrate"]
DB = "/srv/lab-db/sample.sqlite"
CHANGELOG = os.path.join(ROOT, "build", "conveyor", "changelog.jsonl")


def last_record():
    with open(CHANGELOG) as handle:
        return [json.loads(line) for line in handle if line.strip()][-1]


def migrations_of(run_id):
    """The rows bin/migrate wrote for run ``run_id``: (host, version, uid)."""
    out = on_host("app01", "python3 -c \"import sqlite3; print('\\n'.join('|'.join(r) for r in sqlite3.connect('%s')"
                           ".execute('SELECT host, version, user FROM migrations WHERE run_id = ?', ('%s',))))\""
                  % (DB, run_id))
    return [tuple(line.split("|")) for line in out.splitlines() if line]


@pytest.fixture(scope="module", autouse=True)
def on_2_0_0():
    result = playbook("deploy.yml", "-e", "app_version=2.0.0")
    assert result.rc == 0, result.output[-3000:]
    on_host("app01", "rm -f %s" % DB)  # 2.0.0 has no use for it; 4.0.0 needs its migration
    yield


def test_a_failing_migration_changes_nothing_live_and_marks_the_release_failed_everywhere():
    secret = on_host("app01", "sed -n 's/^APP_SECRET_KEY=//p' /etc/sample/secrets.env").strip("'\"")
    assert len(secret) >= 4
    before = {host: on_host(host, "readlink /opt/sample/current") for host in app_hosts()}
    result = playbook("deploy.yml", "-e", "app_version=6.6.5", *MIGRATE)
    assert result.rc != 0
    assert "the migration failed on app01" in result.output
    assert "'bin/migrate' of release" in result.output and "exited 3" in result.output
    assert "duplicate column total (key ********)" in result.output
    assert secret not in result.output
    assert {host: on_host(host, "readlink /opt/sample/current") for host in app_hosts()} == before
    assert set(live_versions().values()) == {"2.0.0"}
    assert locks() == {}
    assert all(admin == "0" for dummy, admin in lb_servers().values()), lb_servers()
    record = last_record()
    assert record["migration"]["outcome"] == "failed"
    assert migrations_of(record["run_id"]) == [("app01", "6.6.5", on_host("app01", "id -u sample"))]
    for host in app_hosts():
        failed = [r for r in releases(host) if r["version"] == "6.6.5"]
        assert failed and all(r["state"] == "failed" for r in failed), (host, failed)
    history = on_host("app01", "grep '\"migrate\"' /opt/sample/.conveyor/history.jsonl | tail -1")
    assert "********" in history and secret not in history


def test_the_migration_runs_once_per_run_before_any_switch_and_the_new_release_needs_it():
    with Traffic() as traffic:
        result = playbook("deploy.yml", "-e", "app_version=4.0.0", *MIGRATE)
    assert result.rc == 0, result.output[-3000:]
    assert traffic.summary["failed"] == 0, traffic.summary
    assert "Migration of" in result.output and "ran on app01" in result.output
    assert "it cannot be undone: no automatic fleet rollback past it" in result.output
    assert set(live_versions().values()) == {"4.0.0"}
    record = last_record()
    assert record["migration"]["host"] == "app01" and record["migration"]["outcome"] == "succeeded"
    assert record["migration"]["duration_s"] >= 0 and "MIGRATION_IRREVERSIBLE" in record["migration"]["irreversible"]
    # Once for the run, not once per host, and as the app user.
    assert migrations_of(record["run_id"]) == [("app01", "4.0.0", on_host("app01", "id -u sample"))]
    for host in app_hosts():
        live = [r for r in releases(host) if r["version"] == "4.0.0" and r["state"] == "good"]
        assert live and "declared by the release" in live[0]["migration_irreversible"], host
    migrated = [r for r in releases("app01") if (r.get("migration") or {}).get("run_id") == record["run_id"]]
    assert len(migrated) == 1 and migrated[0]["migration"]["outcome"] == "succeeded", migrated
    assert migrated[0]["release_id"] == on_host("app01", "basename $(readlink /opt/sample/current)")
    # A rerun has nothing to move, so nothing migrates again.
    again = playbook("deploy.yml", "-e", "app_version=4.0.0", *MIGRATE)
    assert again.rc == 0, again.output[-3000:]
    assert "Migration of" not in again.output


def test_a_rollback_past_an_irreversible_migration_is_refused_and_the_override_is_recorded():
    refused = playbook("playbooks/rollback.yml")
    assert refused.rc != 0
    assert "would go back past a database migration that cannot be undone" in refused.output
    assert "rollback_past_migration_reason" in refused.output
    assert set(live_versions().values()) == {"4.0.0"}
    assert locks() == {}
    reason = "INC-7: checkout broken; schema 2 is read-compatible with 2.0.0"
    result = playbook("playbooks/rollback.yml", "-e", json.dumps({"rollback_past_migration_reason": reason}))
    assert result.rc == 0, result.output[-3000:]
    assert set(live_versions().values()) == {"2.0.0"}
    record = last_record()
    assert record["kind"] == "rollback" and record["past_migration"]["reason"] == reason
    assert [entry["version"] for entry in record["past_migration"]["releases"]] == ["4.0.0"]
    assert sorted(record["past_migration"]["releases"][0]["hosts"]) == sorted(app_hosts())
