"""The migration step on a host: the service's environment, the app user, a time limit, censored output, a record."""
import json
import os

import pytest

from ansible_collections.conveyor.deploy.plugins.module_utils import _hooks, _migration, _release_ops
from ansible_collections.conveyor.deploy.plugins.module_utils._release import (
    MANIFEST, Layout, ReleaseError, read_manifest, release_order, write_json_atomic,
)


def test_environment_files_are_read_as_systemd_reads_them():
    assert _hooks.parse_env("# c\n; c\nA=1\nexport B='two words'\nC=\"x=y\"\n  bad line\nD=\n") == {
        "A": "1", "B": "two words", "C": "x=y", "D": ""}


def test_secrets_files_values_are_secret_and_a_missing_file_is_skipped(tmp_path):
    (tmp_path / "app.env").write_text("APP_ENV=lab\n")
    (tmp_path / "secrets.env").write_text("APP_SECRET_KEY=s3cr3t-value\n")
    env, secrets = _hooks.read_env([str(tmp_path / "app.env"), str(tmp_path / "secrets.env"),
                                    str(tmp_path / "missing.env")])
    assert env == {"APP_ENV": "lab", "APP_SECRET_KEY": "s3cr3t-value"} and secrets == ["s3cr3t-value"]


class FakeModule(object):
    def __init__(self, rc, out="", err=""):
        self.answer = (rc, out, err)
        self.calls = []

    def run_command(self, argv, cwd=None, environ_update=None, expand_user_and_vars=True):
        assert not expand_user_and_vars  # the shell expands the command's variables, in the app's environment
        self.calls.append((argv, cwd, environ_update))
        return self.answer


@pytest.fixture
def staged(tmp_path):
    layout = Layout(str(tmp_path / "app"))
    layout.ensure_dirs()
    os.makedirs(layout.release_dir("R2"))
    write_json_atomic(os.path.join(layout.release_dir("R2"), MANIFEST),
                      {"release_id": "R2", "version": "2.0.0", "migration_irreversible": "declared by the inventory"})
    (tmp_path / "secrets.env").write_text("KEY=hunter2-secret\n")
    return layout, {"release_id": "R2", "command": "bin/migrate", "user": "shop", "timeout": 30,
                    "env_files": [str(tmp_path / "secrets.env")], "previous_version": "1.0.0", "censor": []}


def history(layout):
    with open(layout.history) as handle:
        return [json.loads(line) for line in handle]


def test_a_migration_runs_as_the_app_user_in_the_release_bounded_and_recorded(staged):
    layout, options = staged
    module = FakeModule(0, "connecting with hunter2-secret\nschema 1 -> 2\n")
    outcome = _migration.run(module, layout, options, "RUN-1")
    argv, cwd, env = module.calls[0]
    assert argv == ["timeout", "--kill-after=5", "30", "runuser", "-u", "shop", "--", "/bin/sh", "-c", "bin/migrate"]
    assert cwd == layout.release_dir("R2")
    assert env["KEY"] == "hunter2-secret" and env["CONVEYOR_PREVIOUS_VERSION"] == "1.0.0"
    assert env["CONVEYOR_RUN_ID"] == "RUN-1" and env["CONVEYOR_VERSION"] == "2.0.0"
    assert outcome["outcome"] == "succeeded" and outcome["irreversible"] == "declared by the inventory"
    assert outcome["output"] == "connecting with ********\nschema 1 -> 2"
    assert read_manifest(layout.release_dir("R2"))["migration"]["run_id"] == "RUN-1"
    line = history(layout)[-1]
    assert line["action"] == "migrate" and line["result"] == "ok" and "hunter2" not in json.dumps(line)


@pytest.mark.parametrize("rc, text", [(3, "exited 3 after"), (124, "did not finish within 30 s")])
def test_a_failed_migration_names_the_command_its_status_and_its_last_line_censored(staged, rc, text):
    layout, options = staged
    with pytest.raises(ReleaseError) as caught:
        _migration.run(FakeModule(rc, "", "first\nduplicate column (key hunter2-secret)\n"), layout, options, "RUN-1")
    assert "the migration 'bin/migrate' of release R2 " + text in caught.value.msg
    assert caught.value.msg.endswith("duplicate column (key ********)")
    assert caught.value.context["migration"]["outcome"] == "failed"
    assert history(layout)[-1]["result"] == "failed"


def test_check_mode_runs_nothing_and_a_missing_release_is_refused(staged):
    layout, options = staged
    module = FakeModule(0)
    assert _migration.run(module, layout, options, "RUN-1", check_mode=True)["outcome"] == "would run"
    assert module.calls == []
    with pytest.raises(ReleaseError, match="release R9 is not staged"):
        _migration.run(module, layout, dict(options, release_id="R9"), "RUN-1")


def test_a_release_declares_an_irreversible_migration_by_its_marker_or_the_inventory(tmp_path):
    assert _release_ops.irreversible_migration(str(tmp_path)) == ""
    assert _release_ops.irreversible_migration(str(tmp_path), True) == "declared by the inventory (app_migrate_irreversible)"
    (tmp_path / "MIGRATION_IRREVERSIBLE").write_text("drops   a\ncolumn\n")
    assert _release_ops.irreversible_migration(str(tmp_path)) == \
        "declared by the release (MIGRATION_IRREVERSIBLE): drops a column"


def rel(rid, activated, irreversible=""):
    return {"release_id": rid, "version": rid, "activated_at": activated, "staged_at": "", "migration_irreversible":
            irreversible}


def test_a_rollback_crosses_the_irreversible_releases_that_went_live_after_its_target():
    r1, r2 = rel("1", "2026-01-01T00:00:00Z"), rel("2", "2026-01-02T00:00:00Z", "x")
    never_live = dict(rel("2b", "", "y"), staged_at="2026-01-02T12:00:00Z")
    r3 = rel("3", "2026-01-03T00:00:00Z")
    releases = [r3, r1, never_live, r2]
    assert [c["release_id"] for c in _release_ops.crossed_migrations(releases, r1, r3)] == ["2"]
    assert _release_ops.crossed_migrations(releases, r2, r3) == []  # going back to the migrated release itself
    assert [c["release_id"] for c in _release_ops.crossed_migrations(releases, r1, r2)] == ["2"]
    assert _release_ops.crossed_migrations(releases, None, r3) == []
    assert release_order(r1) < release_order(r3)
