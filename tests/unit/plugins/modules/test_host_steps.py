"""The host_steps module on real releases on disk: prepare (inspect, probe, lock, stage, hook) and finish
(mark, prune, unlock) in one execution, stopping at the first failed step and naming it."""
import json
import os

import pytest

from ansible_collections.conveyor.deploy.plugins.modules import host_steps
from ansible_collections.conveyor.deploy.plugins.modules import release as release_module
from ansible_collections.conveyor.deploy.plugins.module_utils._release import MANIFEST

from ...conftest import ModuleFail
from .jsonserver import serve
from .test_release import make_tar


@pytest.fixture
def fleet(tmp_path, run_module):
    """An app root whose live release r1 (1.0.0) is good, two artifacts, and a health server for a version."""
    root = str(tmp_path / "srv" / "app")
    artifacts = {}
    for version in ("1.0.0", "2.0.0"):
        path = str(tmp_path / ("app-%s.tar.gz" % version))
        artifacts[version] = (path, make_tar(path, {"VERSION": version.encode() + b"\n"}))
    run_module(release_module, dict(app_root=root, release_id="r1", version="1.0.0", src=artifacts["1.0.0"][0],
                                    checksum=artifacts["1.0.0"][1]))
    run_module(release_module, dict(app_root=root, release_id="r1", state="active"))
    run_module(release_module, dict(app_root=root, release_id="r1", state="good"))
    answers = {"status": 200}

    with serve(lambda: (answers["status"], {"version": "1.0.0"})) as base:
        yield dict(root=root, artifacts=artifacts, url=base + "/health", answers=answers)


def prepare(fleet, version="2.0.0", release_id="r2", **extra):
    path, digest = fleet["artifacts"][version]
    args = dict(app_root=fleet["root"], run_id="RUN-1",
                skip_if_live=dict(version=version, url=fleet["url"],
                                  json_assertions=[{"query": "version", "equals": version}]),
                lock=dict(owner="alice@ci", pid=4242, ttl=600),
                stage=dict(release_id=release_id, version=version, src=path, checksum=digest))
    args.update(extra)
    return args


def lock_of(root):
    path = os.path.join(root, ".conveyor", "deploy.lock")
    return json.load(open(path)) if os.path.exists(path) else None


def test_prepare_inspects_locks_and_stages_in_one_execution(run_module, fleet):
    result = run_module(host_steps, prepare(fleet))
    assert result["changed"] and result["locked"] and "skipped" not in result
    assert result["current"]["release_id"] == "r1" and result["release"]["version"] == "2.0.0"
    assert [step["name"] for step in result["steps"]] == ["inspect", "probe", "lock", "stage"]
    assert lock_of(fleet["root"])["run_id"] == "RUN-1" and lock_of(fleet["root"])["pid"] == 4242
    manifest = json.load(open(os.path.join(fleet["root"], "releases", "r2", MANIFEST)))
    assert manifest["state"] == "staged" and manifest["sha256"] == fleet["artifacts"]["2.0.0"][1]


def test_prepare_leaves_a_host_that_already_runs_the_version_healthy(run_module, fleet):
    result = run_module(host_steps, prepare(fleet, "1.0.0", "r1b"))
    assert result["skipped"] == "already runs 1.0.0 and is healthy" and not result["changed"]
    assert lock_of(fleet["root"]) is None and not os.path.exists(os.path.join(fleet["root"], "releases", "r1b"))
    fleet["answers"]["status"] = 503
    again = run_module(host_steps, prepare(fleet, "1.0.0", "r1b"))
    assert "skipped" not in again and again["locked"] and "does not answer its health URL" in again["msg"]


def test_a_lock_held_by_another_run_stops_before_staging_and_names_the_holder(run_module, fleet):
    run_module(host_steps, dict(app_root=fleet["root"], run_id="OTHER", lock=dict(owner="bob@ci", ttl=600)))
    with pytest.raises(ModuleFail) as err:
        run_module(host_steps, prepare(fleet))
    result = err.value.result
    assert result["failed_step"] == "lock" and result["msg"].startswith("lock: Could not take the deploy lock")
    assert "bob@ci" in result["msg"] and not os.path.exists(os.path.join(fleet["root"], "releases", "r2"))
    # Another run's lock: no skip probe (that run may have left the host half done), the lock step fails.
    assert [step["failed"] for step in result["steps"]] == [False, True]
    assert result["lock_held"]["run_id"] == "OTHER" and result["foreign_lock"]["run_id"] == "OTHER"


def test_the_lock_of_a_run_named_dead_is_taken_over_and_recorded(run_module, fleet):
    run_module(host_steps, dict(app_root=fleet["root"], run_id="DEAD", lock=dict(owner="bob@ci", ttl=600)))
    args = prepare(fleet)
    args["lock"] = dict(args["lock"], takeover="SOMEONE-ELSE", reason="gone")
    with pytest.raises(ModuleFail):
        run_module(host_steps, args)
    args["lock"] = dict(args["lock"], takeover="DEAD", reason="its process 7 on controller c is gone")
    result = run_module(host_steps, args)
    assert result["took_over"]["run_id"] == "DEAD" and result["took_over"]["reason"].startswith("its process 7")
    assert lock_of(fleet["root"])["run_id"] == "RUN-1" and os.path.isdir(os.path.join(fleet["root"], "releases", "r2"))
    history = [json.loads(line) for line in open(os.path.join(fleet["root"], ".conveyor", "history.jsonl"))]
    taken = [entry for entry in history if entry["action"] == "lock_takeover"]
    assert len(taken) == 1 and taken[0]["broken"]["run_id"] == "DEAD" and taken[0]["run_id"] == "RUN-1"


def test_a_bad_checksum_fails_the_stage_step_and_keeps_the_lock_reported(run_module, fleet):
    args = prepare(fleet)
    args["stage"]["checksum"] = "0" * 64
    with pytest.raises(ModuleFail) as err:
        run_module(host_steps, args)
    result = err.value.result
    assert result["failed_step"] == "stage" and "sha256 mismatch" in result["msg"]
    assert result["locked"] is True and lock_of(fleet["root"])["run_id"] == "RUN-1"


def test_staging_options_are_checked_as_the_release_module_checks_them(run_module, fleet):
    args = prepare(fleet)
    args["stage"]["checksum_url"] = "http://127.0.0.1:1/x.sha256"
    with pytest.raises(ModuleFail) as err:
        run_module(host_steps, args)
    assert err.value.result["failed_step"] == "stage" and "mutually exclusive" in err.value.result["msg"]


def test_a_failing_after_stage_hook_is_named_with_its_output_censored_and_kept_in_the_history(
        run_module, fleet, tmp_path):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("DB_PASSWORD='from-the-secrets-file'\n")
    args = prepare(fleet, after_stage=['test -f VERSION && echo "built $CONVEYOR_VERSION for $CONVEYOR_HOST $CONVEYOR_BATCH in $PWD"',
                                       "echo token=s3cr3t-x db=$DB_PASSWORD >&2; exit 3"],
                   censor=["s3cr3t-x"], hook_env_files=[str(secrets), str(tmp_path / "missing.env")],
                   hook_env={"CONVEYOR_HOST": "app07", "CONVEYOR_BATCH": 2})
    with pytest.raises(ModuleFail) as err:
        run_module(host_steps, args)
    result = err.value.result
    assert result["failed_step"] == "after_stage"
    assert result["msg"].startswith("after_stage hook 'echo token=******** db=$DB_PASSWORD >&2; exit 3' exited 3 "
                                    "after ")
    assert result["msg"].endswith(": token=******** db=********")
    lines = [json.loads(line) for line in open(os.path.join(fleet["root"], ".conveyor", "history.jsonl"))]
    hooks = [line for line in lines if line["action"] == "hook"]
    assert [(h["point"], h["result"], h["rc"]) for h in hooks] == [("after_stage", "ok", 0), ("after_stage", "failed", 3)]
    assert hooks[0]["output"] == "built 2.0.0 for app07 2 in %s" % os.path.join(fleet["root"], "releases", "r2") and hooks[0]["run_id"] == "RUN-1"
    assert "from-the-secrets" not in json.dumps(lines) and "s3cr3t-x" not in json.dumps(lines)


def test_check_mode_prepares_nothing(run_module, fleet):
    result = run_module(host_steps, prepare(fleet, after_stage=["touch /nonexistent/should-not-run"]),
                        check_mode=True)
    assert result["changed"] and not result["locked"]
    assert lock_of(fleet["root"]) is None and not os.path.exists(os.path.join(fleet["root"], "releases", "r2"))


def test_finish_marks_prunes_and_unlocks_and_reports_a_failed_mark_without_keeping_the_lock(run_module, fleet):
    path, digest = fleet["artifacts"]["1.0.0"]
    run_module(release_module, dict(app_root=fleet["root"], release_id="unused", version="1.0.0", src=path,
                                    checksum=digest))
    run_module(host_steps, prepare(fleet))
    run_module(release_module, dict(app_root=fleet["root"], release_id="r2", state="active"))
    result = run_module(host_steps, dict(app_root=fleet["root"], run_id="RUN-1", prune=1, unlock=True,
                                         marks=[{"release_id": "gone", "state": "good"},
                                                {"release_id": "r2", "state": "good"}]))
    assert lock_of(fleet["root"]) is None
    assert json.load(open(os.path.join(fleet["root"], "releases", "r2", MANIFEST)))["state"] == "good"
    # keep 1: the live release, and the previous good one as the rollback target; the never-used one goes.
    assert sorted(os.listdir(os.path.join(fleet["root"], "releases"))) == ["r1", "r2"]
    assert len(result["problems"]) == 1 and result["problems"][0].startswith("mark: ")
    assert [step["name"] for step in result["steps"]] == ["inspect", "mark", "mark", "prune", "unlock"]


def test_finish_never_releases_the_lock_of_another_run(run_module, fleet):
    run_module(host_steps, dict(app_root=fleet["root"], run_id="OTHER", lock=dict(owner="bob@ci", ttl=600)))
    result = run_module(host_steps, dict(app_root=fleet["root"], run_id="RUN-1", unlock=True))
    assert lock_of(fleet["root"])["run_id"] == "OTHER"
    assert "belongs to" in result["problems"][0]


def test_resolve_finds_the_rollback_target_and_locks_only_a_host_that_moves(run_module, fleet):
    run_module(host_steps, prepare(fleet))
    run_module(release_module, dict(app_root=fleet["root"], release_id="r2", state="active"))
    run_module(host_steps, dict(app_root=fleet["root"], run_id="RUN-1", unlock=True))
    result = run_module(host_steps, dict(app_root=fleet["root"], run_id="RB-1", target_previous_good=True,
                                         lock=dict(owner="alice@ci", ttl=600)))
    assert result["current"]["release_id"] == "r2" and result["target"]["release_id"] == "r1"
    assert result["locked"] and [step["name"] for step in result["steps"]] == ["inspect", "lock"]
    with pytest.raises(ModuleFail) as err:
        # RB-1 still works on the host: a second run that would leave it alone must not ignore that.
        run_module(host_steps, dict(app_root=fleet["root"], run_id="RB-2", target="2.0.0",
                                    lock=dict(owner="alice@ci", ttl=600)))
    assert err.value.result["lock_held"]["run_id"] == "RB-1"
    run_module(host_steps, dict(app_root=fleet["root"], run_id="RB-1", unlock=True))
    here = run_module(host_steps, dict(app_root=fleet["root"], run_id="RB-2", target="2.0.0",
                                       lock=dict(owner="alice@ci", ttl=600)))
    assert here["target"]["release_id"] == "r2" and "locked" not in here
    missing = run_module(host_steps, dict(app_root=fleet["root"], run_id="RB-3", target="9.9.9",
                                          lock=dict(owner="alice@ci", ttl=600)))
    assert missing["target"] is None and "no release with id or version 9.9.9" in missing["target_problem"]
    assert "locked" not in missing and not os.path.exists(os.path.join(fleet["root"], ".conveyor", "deploy.lock"))


@pytest.fixture
def guarded(fleet):
    """The 2.0.0 artifact and its checksum behind HTTP basic auth (user deployer, password hunter2-pw)."""
    import base64

    path, digest = fleet["artifacts"]["2.0.0"]
    expected = "Basic " + base64.b64encode(b"deployer:hunter2-pw").decode()
    seen = []

    def respond(request, headers):
        seen.append(headers.get("Authorization"))
        if headers.get("Authorization") != expected:
            return 404, "not found"  # no WWW-Authenticate challenge, as many artifact repositories answer
        return 200, open(path, "rb").read() if request.endswith(".tar.gz") else "%s  a.tar.gz\n" % digest

    with serve(respond) as base:
        yield base + "/a.tar.gz", seen


def test_an_artifact_server_s_credentials_are_sent_and_never_kept(run_module, fleet, guarded):
    url, seen = guarded
    stage = dict(release_id="r2", version="2.0.0", src=url, checksum_url=url + ".sha256")
    with pytest.raises(ModuleFail) as failure:
        run_module(host_steps, prepare(fleet, stage=stage, lock=None, skip_if_live=None))
    assert "HTTP 404" in failure.value.result["msg"]
    result = run_module(host_steps, prepare(fleet, stage=stage, lock=None, skip_if_live=None,
                                            artifact_username="deployer", artifact_password="hunter2-pw"))
    assert result["release"]["sha256"] == fleet["artifacts"]["2.0.0"][1] and result["release"]["verified"]
    assert seen[-1].startswith("Basic ")
    kept = open(os.path.join(fleet["root"], "releases", "r2", MANIFEST)).read() + \
        open(os.path.join(fleet["root"], ".conveyor", "history.jsonl")).read()
    assert "hunter2" not in kept and "hunter2" not in json.dumps(result)


def test_taking_the_lock_keeps_the_change_log_s_anchor_in_the_history(run_module, fleet):
    anchor = {"seq": 11, "sha256": "ab" * 32}
    lock = dict(owner="alice@ci", pid=4242, ttl=600, changelog_anchor=anchor)
    run_module(host_steps, prepare(fleet, lock=lock), check_mode=True)
    history = os.path.join(fleet["root"], ".conveyor", "history.jsonl")

    def anchors():
        return [json.loads(line) for line in open(history) if '"changelog_anchor"' in line]
    assert anchors() == []
    run_module(host_steps, prepare(fleet, lock=lock))
    run_module(host_steps, prepare(fleet, lock=lock))  # the same run again: the lock is already its own
    found = anchors()
    assert len(found) == 1 and (found[0]["seq"], found[0]["sha256"], found[0]["run_id"]) == (11, "ab" * 32, "RUN-1")
