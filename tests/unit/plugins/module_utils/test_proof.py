import pytest

from ansible_collections.conveyor.deploy.plugins.module_utils import _proof as proof


@pytest.mark.parametrize("regex, problem", [
    pytest.param(None, None, id="none"),
    pytest.param(r"version (\S+)", None, id="group"),
    pytest.param(r"version \S+", "has no group", id="no-group"),
    pytest.param(r"version ((", "is not a regular expression", id="invalid"),
])
def test_regex_problem(regex, problem):
    found = proof.regex_problem(regex)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize("headers, problem", [
    pytest.param({"X-App-Version": "2.0.0"}, None, id="equal"),
    pytest.param({"x-app-version": " 2.0.0 "}, None, id="case-and-space"),
    pytest.param({"X-App-Version": "1.0.0"}, "header X-App-Version is '1.0.0', expected '2.0.0'", id="old"),
    pytest.param({"Server": "x"}, "answered without an X-App-Version header", id="missing"),
    pytest.param({}, "app_health_version_from: process", id="missing-says-the-way-out"),
])
def test_header_problem(headers, problem):
    found = proof.header_problem("X-App-Version", "2.0.0", headers)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize("text, regex, problem", [
    pytest.param("<h1>sample app 2.0.0</h1>", None, None, id="word"),
    pytest.param("<h1>sample app 2.0.01</h1>", None, "does not name 2.0.0", id="longer-version-is-not-it"),
    pytest.param("v12.0.0", None, "does not name 2.0.0", id="prefix-is-not-it"),
    pytest.param("release 2.0.0-rc1", None, "does not name 2.0.0", id="suffix-is-not-it"),
    pytest.param("build: 2.0.0\n", r"build: (\S+)", None, id="regex"),
    pytest.param("build: 1.0.0\n", r"build: (\S+)", "names version '1.0.0', expected '2.0.0'", id="regex-old"),
    pytest.param("Ok", r"build: (\S+)", "does not match app_health_version_regex", id="regex-absent"),
])
def test_body_problem(text, regex, problem):
    found = proof.body_problem(proof.version_pattern("2.0.0", regex), "2.0.0", text)
    assert (found is None) if problem is None else (problem in found)


def test_json_hint_explains_a_plain_text_body_and_leaves_other_problems():
    hinted = proof.json_hint("body is not valid JSON (Expecting value: line 1 column 1 (char 0))")
    assert hinted.startswith("body is not valid JSON") and "app_health_version_from: process" in hinted
    assert proof.json_hint('JSON version is "1.0.0", expected "2.0.0"') == 'JSON version is "1.0.0", expected "2.0.0"'
    assert proof.json_hint(None) is None


RELEASE = "/opt/app/releases/r2"
CURRENT = "/opt/app/current"
RUNNING = {"MainPID": "4242", "ActiveState": "active", "SubState": "running",
           "ExecMainStartTimestampMonotonic": "2000000"}


@pytest.mark.parametrize("show, proc, problem", [
    pytest.param(RUNNING, {"cwd": RELEASE, "exe": "/usr/bin/python3", "cmdline": []}, None, id="cwd"),
    pytest.param(RUNNING, {"cwd": "/", "exe": RELEASE + "/bin/server", "cmdline": []}, None, id="exe"),
    pytest.param(RUNNING, {"cwd": "/", "exe": "/usr/bin/python3", "cmdline": ["python3", CURRENT + "/app.py"]}, None,
                 id="cmdline-through-current"),
    pytest.param(RUNNING, {"cwd": "/opt/app/releases/r1", "exe": "/usr/bin/python3", "cmdline": ["python3", "app.py"]},
                 "runs from /opt/app/releases/r1, not from /opt/app/releases/r2", id="old-release"),
    pytest.param(RUNNING, {"cwd": "/opt/app/releases/r22", "exe": "/usr/bin/x", "cmdline": []},
                 "runs from /opt/app/releases/r22, not from", id="sibling-prefix-is-not-inside"),
    pytest.param(dict(RUNNING, ExecMainStartTimestampMonotonic="999999"), {"cwd": RELEASE}, "started before the restart",
                 id="not-restarted"),
    pytest.param(dict(RUNNING, ActiveState="activating", SubState="auto-restart", MainPID="0"), None,
                 "not running: it is activating (auto-restart)", id="crash-looping"),
    pytest.param(RUNNING, None, "cannot read /proc/4242", id="proc-unreadable"),
    pytest.param(dict(RUNNING, WorkingDirectory=CURRENT), {"cwd": None, "exe": None, "cmdline": ["gunicorn", "app:app"]},
                 None, id="no-ptrace-working-directory-through-current"),
    pytest.param(RUNNING, {"cwd": None, "exe": None, "cmdline": ["python3", CURRENT + "/app.py"]}, None,
                 id="no-ptrace-cmdline-through-current"),
    pytest.param(dict(RUNNING, WorkingDirectory="/srv"), {"cwd": None, "exe": None, "cmdline": ["gunicorn", "app:app"]},
                 "its working directory is /srv", id="no-ptrace-no-evidence"),
])
def test_process_problem(show, proc, problem):
    found = proof.process_problem(show, proc, 1000000, RELEASE, CURRENT)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize("given, url, kind", [
    pytest.param(dict(version_from="json", version_query="version"), "http://lb:8080/health", "json", id="json"),
    pytest.param(dict(version_from="body", version_url="http://127.0.0.1:8000/about?v=1"), "http://lb:8080/about?v=1",
                 "body", id="body-of-another-url"),
    pytest.param(dict(version_from="body"), "http://lb:8080/health", "body", id="body-of-health"),
    pytest.param(dict(version_from="process"), "http://lb:8080/health", "none", id="process-is-status-alone"),
])
def test_lb_check_requests_the_proofs_path_through_the_load_balancer(given, url, kind):
    found_url, found = proof.lb_check(given, "http://lb:8080/", "/health")
    assert found_url == url and found["version_from"] == kind


@pytest.mark.parametrize("given, headers, text, problem", [
    pytest.param(dict(version_from="json", version_query="v"), {}, '{"v": "2.0.0"}', None, id="json"),
    pytest.param(dict(version_from="json", version_query="v"), {}, '{"v": "1.0.0"}', 'JSON v is "1.0.0", expected "2.0.0"', id="json-old"),
    pytest.param(dict(version_from="header"), {"X-App-Version": "2.0.0"}, "", None, id="header-default-name"),
    pytest.param(dict(version_from="header", version_header="X-Build"), {"X-App-Version": "2.0.0"}, "",
                 "without an X-Build header", id="header-named"),
    pytest.param(dict(version_from="json", version_query="v"), {}, "Ok", "app_health_version_from: process",
                 id="json-plain-text-hint"),
    pytest.param(dict(version_from="body"), {}, "Ok", "does not name 2.0.0", id="body"),
    pytest.param(dict(version_from="none"), {}, "Ok", None, id="none"),
])
def test_answer_problem(given, headers, text, problem):
    found = proof.answer_problem(given, "2.0.0", headers, text)
    assert (found is None) if problem is None else (problem in found)
