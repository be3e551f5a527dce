"""Rolling deployments on the lab with traffic flowing: zero failed requests, automatic
rollback of broken builds, fleet rollback, preview, lock and validation refusals."""
import subprocess
import time

import pytest

from .conftest import Traffic, app_hosts, live_versions, on_host, playbook, releases


def deploy(version, *extra):
    return playbook("deploy.yml", "-e", "app_version=%s" % version, *extra)


def assert_fleet_on(version):
    versions = live_versions()
    assert set(versions.values()) == {version}, versions
    for host in app_hosts():
        assert on_host(host, "test -e /opt/sample/.conveyor/deploy.lock && echo held") == "", host


def test_baseline_1_0_0():
    result = deploy("1.0.0")
    assert result.rc == 0, result.output[-3000:]
    assert_fleet_on("1.0.0")


def test_deploy_2_0_0_with_zero_failed_requests():
    with Traffic() as traffic:
        result = deploy("2.0.0")
    assert result.rc == 0, result.output[-3000:]
    assert traffic.summary["failed"] == 0, traffic.summary
    assert traffic.summary["sent"] >= 200
    assert set(traffic.summary["versions"]) == {"1.0.0", "2.0.0"}
    assert_fleet_on("2.0.0")
    for host in app_hosts():
        states = {r["version"]: r["state"] for r in releases(host)}
        assert states["2.0.0"] == "good" and states["1.0.0"] == "good"


def test_rerun_is_idempotent_and_restarts_nothing():
    pids = {host: on_host(host, "systemctl show -p MainPID --value sample") for host in app_hosts()}
    result = deploy("2.0.0")
    assert result.rc == 0
    assert all(counts["changed"] == 0 for counts in result.recap().values()), result.recap()
    assert "Nothing to do" in result.output
    assert {host: on_host(host, "systemctl show -p MainPID --value sample") for host in app_hosts()} == pids


@pytest.mark.parametrize("version, cause", [
    pytest.param("6.6.6", "answered 500", id="unhealthy-6.6.6"),
    pytest.param("6.6.7", "connection refused", id="never-starts-6.6.7"),
])
def test_broken_build_is_rolled_back_with_zero_failed_requests(version, cause):
    with Traffic() as traffic:
        result = deploy(version)
    assert result.rc != 0
    assert "Deployment of %s" % version in result.output and cause in result.output
    assert traffic.summary["failed"] == 0, traffic.summary
    assert set(traffic.summary["versions"]) == {"2.0.0"}, "a broken release served traffic"
    assert_fleet_on("2.0.0")
    first = app_hosts()[0]
    states = {r["version"]: r["state"] for r in releases(first)}
    assert states[version] == "failed"
    for host in app_hosts()[1:]:
        assert version not in {r["version"]: r for r in releases(host)} or \
            {r["version"]: r["state"] for r in releases(host)}[version] != "good"


def test_failure_in_a_later_batch_rolls_the_whole_fleet_back():
    with Traffic() as traffic:
        result = deploy("6.6.8")
    assert result.rc != 0
    assert traffic.summary["failed"] == 0, traffic.summary
    assert "The fleet was rolled back" in result.output
    assert_fleet_on("2.0.0")
    for host in app_hosts():
        states = {r["version"]: r["state"] for r in releases(host)}
        assert states["6.6.8"] == "failed", (host, states)


def test_halt_policy_leaves_earlier_batches_and_says_so():
    result = deploy("6.6.8", "-e", "rolling_failure_policy=halt")
    assert result.rc != 0
    assert "rolling_failure_policy is halt" in result.output
    versions = live_versions()
    assert versions["app01"] == "6.6.8" and versions["app02"] == "6.6.8"
    assert versions["app03"] == "2.0.0" and versions["app04"] == "2.0.0"
    restore = deploy("2.0.0")
    assert restore.rc == 0, restore.output[-3000:]
    assert_fleet_on("2.0.0")


def test_check_mode_previews_and_changes_nothing():
    before = {host: on_host(host, "ls /opt/sample/releases; readlink /opt/sample/current") for host in app_hosts()}
    result = deploy("1.1.0", "--check", "--diff")
    assert result.rc == 0, result.output[-3000:]
    assert "would stage release" in result.output or "+release " in result.output
    assert "+current -> releases/" in result.output
    after = {host: on_host(host, "ls /opt/sample/releases; readlink /opt/sample/current") for host in app_hosts()}
    assert after == before
    assert_fleet_on("2.0.0")


def test_a_held_lock_refuses_the_run_and_changes_nothing():
    assert on_host("app02", "mkdir -p /opt/sample/.conveyor && echo '{\"run_id\": \"other-run\", \"owner\": "
                   "\"bob@ci\", \"started_at\": \"2099-01-01T00:00:00.000000Z\", \"ttl\": 3600}' "
                   "> /opt/sample/.conveyor/deploy.lock && echo ok") == "ok"
    try:
        before = {host: on_host(host, "ls /opt/sample/releases") for host in app_hosts()}
        result = deploy("1.1.0")
        assert result.rc != 0
        assert "held by run other-run by bob@ci" in result.output
        assert "nothing was changed" in result.output  # the preflight checklist refused it
        assert {host: on_host(host, "ls /opt/sample/releases") for host in app_hosts()} == before
        assert on_host("app01", "test -e /opt/sample/.conveyor/deploy.lock && echo held") == ""
    finally:
        on_host("app02", "rm -f /opt/sample/.conveyor/deploy.lock")
    assert set(live_versions().values()) == {"2.0.0"}


@pytest.mark.parametrize("extra, text", [
    pytest.param([], "app_version is not set: pass the version to deploy", id="missing-version"),
    pytest.param(["-e", '{"app_version": "1.0 beta"}'], "app_version (rolling_version)", id="malformed-version"),
    pytest.param(["-e", "app_version=9.9.9"], "HTTP 404", id="no-such-artifact"),
    pytest.param(["-e", "app_version=1.1.0", "-e", '{"rolling_batches": [0]}'], "rolling_batches", id="serial-zero"),
    pytest.param(["-e", "app_version=1.1.0", "-e", '{"rolling_batches": ["150%"]}'], "outside 1%-100%", id="percent"),
    pytest.param(["-e", "app_version=1.1.0", "-e", '{"rolling_batches": ["100%"]}'], "rolling_min_healthy_percent",
                 id="capacity"),
])
def test_bad_input_fails_before_any_host_is_touched(extra, text):
    before = {host: on_host(host, "ls /opt/sample/releases") for host in app_hosts()}
    result = playbook("deploy.yml", *extra)
    assert result.rc != 0
    assert text in result.output
    assert {host: on_host(host, "ls /opt/sample/releases") for host in app_hosts()} == before


def lb_status():
    """{server: status} from HAProxy's stats CSV on 127.0.0.1:8404."""
    csv = subprocess.run(["curl", "-sf", "http://127.0.0.1:8404/stats;csv"], capture_output=True, text=True,
                         check=False).stdout.splitlines()
    header = csv[0][2:].split(",")
    rows = [dict(zip(header, line.split(","))) for line in csv[1:] if line.startswith("sample,app")]
    return {row["svname"]: row["status"] for row in rows}


def test_runtime_capacity_refusal_drains_nothing_and_changes_nothing():
    for host in ("app03", "app04"):
        on_host(host, "systemctl stop sample")
    try:
        deadline = time.time() + 15
        while time.time() < deadline and [s for s in lb_status().values() if s == "UP"] != ["UP", "UP"]:
            time.sleep(0.5)
        before = {host: on_host(host, "ls /opt/sample/releases; readlink /opt/sample/current") for host in app_hosts()}
        # The checklist would refuse this run (two hosts down); skip it to test the guard that
        # holds when the fleet degrades after the checklist passed.
        result = deploy("1.1.0", "-e", '{"preflight_checks": ["reachable"]}')
        assert result.rc != 0
        assert "Refusing to take servers out of sample" in result.output
        assert "app01 not_started (drain:" in result.output
        assert "unreachable during the batch" not in result.output
        assert lb_status()["app01"] == "UP" and lb_status()["app02"] == "UP"
        for host in app_hosts():
            assert on_host(host, "readlink /opt/sample/current") == before[host].splitlines()[-1]
            assert on_host(host, "test -e /opt/sample/.conveyor/deploy.lock && echo held") == ""
    finally:
        for host in ("app03", "app04"):
            on_host(host, "systemctl start sample")
    deadline = time.time() + 15
    while time.time() < deadline and set(lb_status().values()) != {"UP"}:
        time.sleep(0.5)
    assert set(lb_status().values()) == {"UP"}
