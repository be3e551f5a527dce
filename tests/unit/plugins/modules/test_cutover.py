"""The cutover module on real releases on disk, probed over real HTTP; systemctl is recorded, not run."""
import json
import os

import pytest

from ansible.module_utils import basic

from ansible_collections.conveyor.deploy.plugins.modules import cutover as cutover_module
from ansible_collections.conveyor.deploy.plugins.modules import release as release_module

from ...conftest import ModuleFail
from .jsonserver import serve
from .test_release import make_tar


@pytest.fixture
def app(tmp_path, run_module):
    """An app root with releases r1 (1.0.0) and r2 (2.0.0) and bad (6.6.6), current -> r1, and a server
    that answers for whatever current points at: 500 for 6.6.6."""
    root = str(tmp_path / "srv" / "app")
    for release_id, version in (("r1", "1.0.0"), ("r2", "2.0.0"), ("bad", "6.6.6")):
        path = str(tmp_path / ("%s.tar.gz" % release_id))
        digest = make_tar(path, {"VERSION": version.encode()})
        run_module(release_module, dict(app_root=root, release_id=release_id, version=version, src=path,
                                        checksum=digest))
    run_module(release_module, dict(app_root=root, release_id="r1", state="active"))

    def respond():
        version = open(os.path.join(root, "current", "VERSION")).read().strip()
        return 500 if version == "6.6.6" else 200, {"status": "ok", "version": version}

    with serve(respond) as base:
        yield root, base + "/health"


@pytest.fixture
def systemctl(monkeypatch):
    calls = []

    def run_command(self, args, **kwargs):
        calls.append(list(args))
        if "journalctl" in args:
            return 0, "Traceback (most recent call last):\nModuleNotFoundError: No module named 'flask' token=s3cr3t\n", ""
        if "show" in args:
            return 0, "ActiveState=failed\nSubState=failed\nResult=exit-code\nExecMainStatus=1\nNRestarts=0\n", ""
        return 0, "", ""
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return calls


def args(root, url, release_id, version, **extra):
    base = dict(app_root=root, release_id=release_id, version=version, previous_release_id="r1",
                previous_version="1.0.0", service="app", run_id="run-1",
                health=dict(url=url, json_assertions=[{"query": "status", "equals": "ok"}], version_query="version",
                            interval=0, timeout=5, name="app01 /health"))
    base.update(extra)
    return base


def manifest(root, release_id):
    return json.load(open(os.path.join(root, "releases", release_id, ".conveyor-release.json")))


def test_moves_a_host_in_one_execution(app, systemctl, run_module):
    root, url = app
    result = run_module(cutover_module, args(root, url, "r2", "2.0.0"))
    assert result["outcome"] == "moved" and result["changed"]
    assert os.readlink(os.path.join(root, "current")) == "releases/r2"
    assert ["timeout", "--kill-after=5", "90", "systemctl", "restart", "app"] in systemctl
    assert [p["name"] for p in result["phases"]] == ["switch", "restart", "verify"]
    assert result["gate"]["passed"] and result["previous"]["release_id"] == "r1"


def test_a_failing_gate_reverts_marks_failed_and_names_the_service_state(app, systemctl, run_module):
    root, url = app
    with pytest.raises(ModuleFail) as err:
        run_module(cutover_module, args(root, url, "bad", "6.6.6", censor=["s3cr3t"]))
    result = err.value.result
    assert result["outcome"] == "reverted"
    assert os.readlink(os.path.join(root, "current")) == "releases/r1"
    assert manifest(root, "bad")["state"] == "failed"
    assert "app01 /health on 6.6.6: answered 500" in result["msg"]
    assert "app failed (failed, exit-code, status 1)" in result["reason"] and "ModuleNotFoundError" in result["reason"]
    assert "s3cr3t" not in json.dumps(result)
    assert [c for c in systemctl if c[-2:] == ["restart", "app"]].__len__() == 2
    assert result["revert_gate"]["passed"]


def test_a_first_deployment_that_fails_stops_the_service(app, systemctl, run_module):
    root, url = app
    with pytest.raises(ModuleFail) as err:
        run_module(cutover_module, args(root, url, "bad", "6.6.6", previous_release_id="", previous_version=""))
    assert err.value.result["outcome"] == "failed"
    assert "no previous release to return to" in err.value.result["msg"]
    assert any(c[-2:] == ["stop", "app"] for c in systemctl)


def test_the_version_is_part_of_the_gate(app, systemctl, run_module):
    """A host that answers 200 with the old version after the switch has not moved."""
    root, url = app
    with pytest.raises(ModuleFail) as err:
        run_module(cutover_module, args(root, url, "r2", "9.9.9"))
    assert "JSON version is \"2.0.0\", expected \"9.9.9\"" in err.value.result["msg"]


def test_check_mode_changes_nothing(app, systemctl, run_module):
    root, url = app
    result = run_module(cutover_module, args(root, url, "r2", "2.0.0"), check_mode=True, diff=True)
    assert result["changed"] and result["diff"]["after"] == "current -> releases/r2\n"
    assert os.readlink(os.path.join(root, "current")) == "releases/r1" and systemctl == []


@pytest.mark.parametrize("health, text", [
    pytest.param(dict(url="127.0.0.1:8000/health"), "Invalid health.url", id="no-scheme"),
    pytest.param(dict(url="http://x/h", success_threshold=0), "success_threshold must be at least 1", id="zero"),
    pytest.param(dict(url="http://x/h", timeout=-1), "timeout and request_timeout positive", id="negative-timeout"),
    pytest.param(dict(url="http://x/h", version_query="a[["), "not a valid JMESPath", id="bad-query"),
])
def test_bad_health_settings_are_refused_before_anything_changes(app, systemctl, run_module, health, text):
    root, url = app
    with pytest.raises(ModuleFail) as err:
        run_module(cutover_module, dict(args(root, url, "r2", "2.0.0"), health=health))
    assert text in err.value.result["msg"]
    assert os.readlink(os.path.join(root, "current")) == "releases/r1" and systemctl == []


@pytest.mark.parametrize("state, journal, expected", [
    pytest.param({"ActiveState": "failed", "SubState": "failed", "Result": "exit-code", "ExecMainStatus": "1"},
                 ["start", "ModuleNotFoundError: No module named 'flask'"],
                 "app failed (failed, exit-code, status 1): ModuleNotFoundError: No module named 'flask'", id="crashed"),
    pytest.param({"ActiveState": "activating", "SubState": "auto-restart", "NRestarts": "4"}, ["boom"],
                 "app activating (auto-restart, 4 restarts): boom", id="restarting"),
    pytest.param({"ActiveState": "active", "SubState": "running", "Result": "success", "ExecMainStatus": "0"},
                 ["GET /health 500"], "app active (running)", id="running-journal-not-quoted"),
    pytest.param({}, [], None, id="nothing-known"),
])
def test_describe_service(state, journal, expected):
    assert cutover_module.describe_service("app", state, journal) == expected
