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
            # As systemd 252 answers: with --since, --lines keeps the first entries, unless --reverse.
            entries = (["app.service: Started.", "Traceback (most recent call last):"]
                       + ['  File "/opt/app/current/app.py", line %d, in <module>' % n for n in range(10)]
                       + ["ModuleNotFoundError: No module named 'flask' token=s3cr3t",
                          "app.service: Main process exited, code=exited, status=1/FAILURE"])
            count = int(args[args.index("--lines") + 1])
            shown = entries[::-1][:count] if "--reverse" in args else entries[:count]
            return 0, "\n".join(shown) + "\n", ""
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
    # A port taken by another process: the error line, not systemd's lines after it nor the traceback frames.
    pytest.param({"ActiveState": "activating", "SubState": "auto-restart", "Result": "exit-code", "NRestarts": "2"},
                 ["Traceback (most recent call last):", '  File "/opt/app/current/app.py", line 9, in <module>',
                  "    self.server_bind()", "OSError: [Errno 98] Address already in use",
                  "app.service: Main process exited, code=exited, status=1/FAILURE",
                  "app.service: Failed with result 'exit-code'.", "Stopped app.service - the app."],
                 "app activating (auto-restart, exit-code, 2 restarts): OSError: [Errno 98] Address already in use",
                 id="port-taken"),
    pytest.param({"ActiveState": "active", "SubState": "running", "NRestarts": "2"},
                 ["OSError: [Errno 98] Address already in use", "app.service: Scheduled restart job.", "Started app."],
                 "app active (running, 2 restarts): OSError: [Errno 98] Address already in use",
                 id="caught-between-two-restarts"),
    pytest.param({"ActiveState": "failed"}, ["app.service: Failed with result 'timeout'."],
                 "app failed: app.service: Failed with result 'timeout'.", id="only-systemd-lines"),
])
def test_describe_service(state, journal, expected):
    assert cutover_module.describe_service("app", state, journal) == expected


@pytest.fixture
def plain_app(tmp_path, run_module):
    """Releases r1 (1.0.0) and r2 (2.0.0), current -> r1, behind a server like most real apps: /health says
    plain ``Ok``, / names the version, and only 2.0.0 sends an X-App-Version header."""
    root = str(tmp_path / "srv" / "app")
    for release_id, version in (("r1", "1.0.0"), ("r2", "2.0.0")):
        path = str(tmp_path / ("%s.tar.gz" % release_id))
        run_module(release_module, dict(app_root=root, release_id=release_id, version=version, src=path,
                                        checksum=make_tar(path, {"VERSION": version.encode()})))
    run_module(release_module, dict(app_root=root, release_id="r1", state="active"))

    def respond(path):
        version = open(os.path.join(root, "current", "VERSION")).read().strip()
        headers = {"X-App-Version": version} if version == "2.0.0" else {}
        if path == "/health":
            return 200, "Ok\n", headers
        return 200, "<h1>app %s</h1>" % version, headers

    with serve(respond) as base:
        yield root, base


def plain_args(root, base, **health):
    return dict(args(root, base + "/health", "r2", "2.0.0"),
                health=dict(dict(url=base + "/health", interval=0, timeout=5, success_threshold=2), **health))


def test_a_plain_text_health_endpoint_fails_the_json_proof_with_the_setting_to_change(plain_app, systemctl, run_module):
    root, base = plain_app
    with pytest.raises(ModuleFail) as err:
        run_module(cutover_module, plain_args(root, base, version_query="version"))
    assert "body is not valid JSON" in err.value.result["reason"]
    assert "app_health_version_from: process" in err.value.result["reason"]
    assert os.readlink(os.path.join(root, "current")) == "releases/r1"


@pytest.mark.parametrize("health, target, moved, text", [
    pytest.param(dict(version_from="header"), ("r2", "2.0.0"), True, None, id="header"),
    pytest.param(dict(version_from="header"), ("r1", "1.0.0"), False, "answered without an X-App-Version header",
                 id="header-missing"),
    pytest.param(dict(version_from="body"), ("r2", "2.0.0"), False, "body does not name 2.0.0 (body: Ok)",
                 id="body-of-health-has-no-version"),
    pytest.param(dict(version_from="body", version_url="{base}/"), ("r2", "2.0.0"), True, None, id="body-of-another-url"),
    pytest.param(dict(version_from="body", version_url="{base}/", version_regex=r"<h1>app (\S+)</h1>"),
                 ("r2", "2.0.0"), True, None, id="regex"),
    pytest.param(dict(version_from="none"), ("r2", "2.0.0"), True, None, id="none"),
])
def test_the_version_proof_is_chosen_by_version_from(plain_app, systemctl, run_module, health, target, moved, text):
    root, base = plain_app
    health = dict((key, value.format(base=base)) for key, value in health.items())
    if target[0] == "r1":
        run_module(release_module, dict(app_root=root, release_id="r2", state="active"))
    params = dict(plain_args(root, base, **health), release_id=target[0], version=target[1],
                  previous_release_id="" if target[0] == "r1" else "r1")
    if moved:
        result = run_module(cutover_module, params)
        assert result["outcome"] == "moved"
        assert os.readlink(os.path.join(root, "current")) == "releases/" + target[0]
    else:
        with pytest.raises(ModuleFail) as err:
            run_module(cutover_module, params)
        assert text in err.value.result["reason"]


@pytest.fixture
def main_process(monkeypatch, tmp_path):
    """systemctl as for a unit whose main process is a real child process: ``start(cwd, after_restart)``."""
    import subprocess
    import time
    children, calls = [], []

    def start(cwd, after_restart=True):
        child = subprocess.Popen(["sleep", "30"], cwd=cwd)
        children.append(child)
        started = int(time.monotonic() * 1000000) + (10 ** 9 if after_restart else -(10 ** 9))

        def run_command(self, argv, **kwargs):
            calls.append(list(argv))
            if "show" in argv and "--property=MainPID" in argv:
                return 0, "MainPID=%d\nActiveState=active\nSubState=running\nExecMainStartTimestampMonotonic=%d\n" % (
                    child.pid, started), ""
            return 0, "", ""
        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        return calls
    yield start
    for child in children:
        child.kill()
        child.wait()


@pytest.mark.parametrize("cwd, after_restart, text", [
    pytest.param("releases/r2", True, None, id="new-process-in-the-release"),
    pytest.param("releases/r1", True, "runs from %s/releases/r1, not from", id="runs-from-the-old-release"),
    pytest.param("releases/r2", False, "started before the restart", id="not-restarted"),
])
def test_the_process_proof_reads_systemd_and_proc(plain_app, main_process, run_module, cwd, after_restart, text):
    root, base = plain_app
    main_process(os.path.join(root, cwd), after_restart)
    params = plain_args(root, base, version_from="process")
    if text is None:
        assert run_module(cutover_module, params)["outcome"] == "moved"
    else:
        with pytest.raises(ModuleFail) as err:
            run_module(cutover_module, params)
        assert text.replace("%s", root) in err.value.result["reason"]


@pytest.mark.parametrize("extra, health, text", [
    pytest.param(dict(restart="none"), dict(version_from="process"), "the process proof needs the service restarted",
                 id="process-without-restart"),
    pytest.param({}, dict(version_from="body", version_regex=r"v\S+"), "has no group", id="regex-without-group"),
    pytest.param({}, dict(version_from="header", version_header=" "), "Invalid health.version_header", id="empty-header"),
    pytest.param({}, dict(version_from="body", version_url="/version"), "Invalid health.version_url", id="relative-url"),
])
def test_bad_proof_settings_are_refused_before_anything_changes(plain_app, systemctl, run_module, extra, health, text):
    root, base = plain_app
    with pytest.raises(ModuleFail) as err:
        run_module(cutover_module, dict(plain_args(root, base, **health), **extra))
    assert text in err.value.result["msg"]
    assert os.readlink(os.path.join(root, "current")) == "releases/r1" and systemctl == []
