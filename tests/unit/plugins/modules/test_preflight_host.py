"""conveyor.deploy.preflight_host against a real app root, a real HTTP artifact store and a real health URL."""
import http.server
import json
import os
import threading

import pytest

from ansible_collections.conveyor.deploy.plugins.modules import preflight_host

SHA = "a" * 64


@pytest.fixture
def server():
    """/app.tar.gz (2048 bytes), /app.tar.gz.sha256, /health (ok or error as set), everything else 404."""
    state = {"health": "ok"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, body=b""):
            pages = {"/app.tar.gz": b"x" * 2048, "/app.tar.gz.sha256": (SHA + "  app.tar.gz\n").encode(),
                     "/health": json.dumps({"status": state["health"], "version": "1.0.0"}).encode()}
            if self.path not in pages:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(500 if self.path == "/health" and state["health"] != "ok" else 200)
            self.send_header("Content-Length", str(len(pages[self.path])))
            self.end_headers()
            if body:
                self.wfile.write(pages[self.path])

        def do_HEAD(self):
            self._answer()

        def do_GET(self):
            self._answer(body=True)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1], state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def root(tmp_path):
    """An app root with release r1 (1.0.0) live."""
    app = tmp_path / "app"
    release = app / "releases" / "r1"
    release.mkdir(parents=True)
    (release / ".conveyor-release.json").write_text(json.dumps({"release_id": "r1", "version": "1.0.0"}))
    (app / "shared").mkdir()
    (app / "current").symlink_to("releases/r1")
    return str(app)


def run(run_module, root, base, **extra):
    args = dict(app_root=root, artifact_url=base + "/app.tar.gz", health_url=base + "/health",
                health_json=[{"query": "status", "equals": "ok"}])
    args.update(extra)
    result = run_module(preflight_host, args)
    return result, {row["check"]: row for row in result["rows"]}


def test_a_healthy_host_passes_every_check(run_module, root, server):
    base, dummy = server
    result, rows = run(run_module, root, base, config_test_command="test -e .conveyor-release.json")
    assert result["passed"] and not result["changed"]
    assert list(rows) == ["prepared", "lock", "artifact", "disk", "fleet_healthy", "config_test"]
    assert rows["prepared"]["summary"] == "%s with releases/ and shared/" % root
    assert result["artifact"] == {"found": True, "size": 2048, "sha256": SHA, "where": "HTTP 200 for %s/app.tar.gz" % base}
    assert rows["fleet_healthy"]["summary"].startswith("1.0.0: healthy")
    assert rows["config_test"]["summary"] == "exit 0: no output"
    assert result["current"] == {"release_id": "r1", "version": "1.0.0"}


def test_every_failure_is_reported_in_one_answer(run_module, root, server):
    base, state = server
    state["health"] = "error"
    os.makedirs(os.path.join(root, ".conveyor"))
    with open(os.path.join(root, ".conveyor", "deploy.lock"), "w") as handle:
        json.dump({"run_id": "other", "owner": "bob@ci", "started_at": "2099-01-01T00:00:00.000000Z", "ttl": 3600}, handle)
    result, rows = run(run_module, root, base, artifact_url=base + "/missing.tar.gz", disk_factor=10 ** 12,
                       config_test_command="echo broken config in \"$(basename $PWD)\" >&2; exit 3")
    assert not result["passed"]
    assert "held by run other by bob@ci" in rows["lock"]["summary"] and not rows["lock"]["passed"]
    assert rows["artifact"]["summary"] == ("not found: HTTP 404 for %s/missing.tar.gz; no checksum published at "
                                           "%s/missing.tar.gz.sha256 and app_artifact_sha256 is not set" % (base, base))
    assert rows["disk"]["passed"]  # nothing found, nothing to hold
    assert rows["fleet_healthy"]["summary"].startswith("1.0.0: unhealthy: answered 500")
    assert rows["config_test"] == {"check": "config_test", "passed": False, "summary": "exit 3: broken config in r1"}


def test_disk_and_production_checksum(run_module, root, server, tmp_path):
    base, dummy = server
    artifact = tmp_path / "local.tar.gz"
    artifact.write_bytes(b"y" * 4096)
    result, rows = run(run_module, root, base, artifact_url=str(artifact), production=True, allow_unverified=True,
                       disk_factor=10 ** 12, checks=["artifact", "disk"])
    assert list(rows) == ["artifact", "disk"]
    assert "production refuses an artifact without one" in rows["artifact"]["summary"]
    assert not rows["disk"]["passed"] and "MiB needed (1000000000000 x the artifact)" in rows["disk"]["summary"]
    result, rows = run(run_module, root, base, artifact_url=str(artifact), allow_unverified=True, checks=["artifact"])
    assert rows["artifact"]["passed"] and rows["artifact"]["summary"].endswith("sha256 not required here")


def test_nothing_live_yet_and_a_stale_lock(run_module, tmp_path, server):
    base, dummy = server
    root = str(tmp_path / "fresh")
    os.makedirs(os.path.join(root, ".conveyor"))
    with open(os.path.join(root, ".conveyor", "deploy.lock"), "w") as handle:
        json.dump({"run_id": "dead", "owner": "x@y", "started_at": "2000-01-01T00:00:00.000000Z", "ttl": 60}, handle)
    dummy_result, rows = run(run_module, root, base, checks=["lock", "fleet_healthy"])
    assert rows["fleet_healthy"] == {"check": "fleet_healthy", "passed": True, "summary": "no release is live yet"}
    # An expired lock passes: the rollout takes it over (and the row carries it for the controller).
    assert rows["lock"]["passed"] and "an expired deploy lock is there (run dead by x@y" in rows["lock"]["summary"]
    assert "expired 2000-01-01T00:01:00" in rows["lock"]["summary"] and rows["lock"]["lock"]["run_id"] == "dead"


def test_a_url_that_cannot_be_asked_is_a_row_not_a_crash(run_module, root, server):
    base, dummy = server
    dummy_result, rows = run(run_module, root, base, artifact_url=base + "/sample-1.0 beta.tar.gz", checks=["artifact"])
    assert not rows["artifact"]["passed"] and "not found: %s/sample-1.0 beta.tar.gz: " % base in rows["artifact"]["summary"]


def write_manifest(root, release_id, version, state):
    release = os.path.join(root, "releases", release_id)
    os.makedirs(release, exist_ok=True)
    with open(os.path.join(release, ".conveyor-release.json"), "w") as handle:
        json.dump({"release_id": release_id, "version": version, "state": state}, handle)


@pytest.mark.parametrize("others, passed, text", [
    pytest.param([], True, "not deployed: 1.0.0 failed its first deploy here", id="failed-first-deploy"),
    pytest.param([("r0", "0.9.0", "failed")], True, "not deployed", id="only-failed-releases"),
    pytest.param([("r0", "0.9.0", "good")], False, "1.0.0: unhealthy", id="a-good-release-existed-so-the-host-is-down"),
])
def test_a_host_whose_first_deploy_failed_is_not_deployed_not_unhealthy(run_module, root, server, others, passed, text):
    base, state = server
    state["health"] = "error"
    write_manifest(root, "r1", "1.0.0", "failed")
    for release in others:
        write_manifest(root, *release)
    dummy_result, rows = run(run_module, root, base, checks=["fleet_healthy"])
    assert rows["fleet_healthy"]["passed"] is passed and text in rows["fleet_healthy"]["summary"]


@pytest.fixture
def systemctl(tmp_path, monkeypatch):
    """A systemctl on PATH that knows sample.service only, as `systemctl show -p LoadState --value` answers."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "systemctl"
    fake.write_text('#!/bin/sh\nfor last; do :; done\n[ "$last" = sample.service ] && echo loaded || echo not-found\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))


def test_a_host_nobody_prepared_fails_prepared_and_says_what_to_run(run_module, server, tmp_path, systemctl):
    base, dummy = server
    never = str(tmp_path / "never" / "app")
    result, rows = run(run_module, never, base, service="sample")
    assert not result["passed"]
    assert not rows["prepared"]["passed"]
    summary = rows["prepared"]["summary"]
    assert summary.startswith("not prepared for the application: no %s, no %s/releases, no %s/shared" % ((never,) * 3))
    assert "Run playbooks/environment.yml for this host first" in summary and "preflight_checks" in summary
    # the other checks still answer, in the same round-trip
    assert rows["artifact"]["passed"] and rows["lock"]["passed"]
    assert rows["fleet_healthy"]["summary"] == "no release is live yet"


@pytest.mark.parametrize("service, passed, says", [
    ("sample", True, ", sample.service"),
    ("sample.service", True, ", sample.service"),
    ("shop", False, "not prepared for the application: no unit shop.service (systemd says not-found)"),
])
def test_prepared_asks_systemd_for_the_unit(run_module, root, server, systemctl, service, passed, says):
    base, dummy = server
    dummy_result, rows = run(run_module, root, base, service=service, checks=["prepared"])
    assert rows["prepared"]["passed"] is passed
    assert says in rows["prepared"]["summary"]


def test_prepared_without_systemd_says_so(run_module, root, server, tmp_path, monkeypatch):
    base, dummy = server
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    monkeypatch.setattr(preflight_host.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    dummy_result, rows = run(run_module, root, base, service="sample", checks=["prepared"])
    assert not rows["prepared"]["passed"]
    assert "no systemctl (no systemd on this host, so no unit sample.service)" in rows["prepared"]["summary"]
