"""Faults of the fleet in the middle of a rollout (#17, faults 1, 2 and 6): an app host or the load balancer stops
answering, HAProxy's admin socket disappears, a new release never answers, or its port is taken. The run stops without switching another host and says why, the
summary never claims a rollback that did not happen, the locks of every reachable host are released, and the
next deploy, once the fault is gone, needs no hand.

SSH gives up on a silent host after ServerAliveInterval x ServerAliveCountMax; these runs use 2 s x 2 (an
operator who wants faults found fast sets the same in ansible.cfg's ssh_args).
"""
import subprocess

import pytest

from .test_interrupts import Deploy, assert_consistent, other_version
from .conftest import Traffic, app_hosts, live_versions, locks, on_host, playbook, releases, serves

FAST_SSH = {"ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=120s -o ServerAliveInterval=2 "
                                "-o ServerAliveCountMax=2", "ANSIBLE_TIMEOUT": "5"}


def docker(*args):
    subprocess.run(["docker"] + list(args), check=True, capture_output=True)


def lb(command):
    return subprocess.run(["docker", "exec", "conveyor-lb", "sh", "-c", command], check=False,
                          capture_output=True, text=True).stdout


@pytest.fixture
def fast_ssh(monkeypatch):
    from . import conftest
    monkeypatch.setattr(conftest, "ENV", dict(conftest.ENV, **FAST_SSH))
    from . import test_interrupts
    monkeypatch.setattr(test_interrupts, "ENV", dict(conftest.ENV, **FAST_SSH))


@pytest.fixture
def settled():
    """A fleet on one version with nothing left over, so that the batches are app01, app02, then app03 and app04."""
    version = other_version()
    result = playbook("deploy.yml", "-e", "app_version=" + version)
    assert result.rc == 0, result.output[-3000:]
    assert_consistent(version)


def first_batch(deploy):
    """The hosts of the first batch, from its progress line ("Batch 1 of 3: app01 deployed; ...")."""
    assert deploy.until("Batch 1 of 3"), "".join(deploy.lines)[-3000:]
    line = next(line for line in deploy.lines if line.startswith("Batch 1 of 3"))
    return [word for word in line.split(";")[0].split(":")[1].split() if word in app_hosts()]


def test_an_app_host_that_stops_answering_mid_batch_is_failed_by_the_run_and_the_others_are_released(settled,
                                                                                                     fast_ssh):
    target = other_version()
    before = live_versions()
    deploy = Deploy(target)
    victim = "app02"
    try:
        # Stop the second batch's host as that batch starts.
        assert first_batch(deploy) == ["app01"], "".join(deploy.lines)[-3000:]
        docker("pause", "conveyor-" + victim)
        rc, output = deploy.finish()
    finally:
        docker("unpause", "conveyor-" + victim)
    assert rc != 0, output[-3000:]
    assert "app02" in output and "unreachable" in output.lower(), output[-3000:]
    # The rollout stopped at that batch: app03 and app04 were never switched, and the policy (rollback_fleet)
    # took app01 back; every reachable host's lock is released.
    after = live_versions()
    assert after["app03"] == before["app03"] and after["app04"] == before["app04"], (before, after)
    assert after["app01"] == before["app01"], (before, after, output[-4000:])
    assert set(locks()) <= {"app02"}, locks()
    # Once the host answers again, the next deploy goes through, taking over what the run left on app02.
    result = playbook("deploy.yml", "-e", "app_version=" + target)
    assert result.rc == 0, result.output[-3000:]
    assert_consistent(target)


@pytest.mark.parametrize("fault", ["socket-gone", "lb-silent"])
def test_when_the_load_balancer_goes_away_mid_rollout_no_other_host_is_switched(settled, fast_ssh, fault):
    target = other_version()
    before = live_versions()
    deploy = Deploy(target)
    try:
        assert first_batch(deploy) == ["app01"], "".join(deploy.lines)[-3000:]
        if fault == "socket-gone":
            lb("mv /run/haproxy/admin.sock /run/haproxy/admin.sock.away")
        else:
            docker("pause", "conveyor-lb")
        rc, output = deploy.finish()
    finally:
        if fault == "socket-gone":
            lb("mv /run/haproxy/admin.sock.away /run/haproxy/admin.sock")
        else:
            docker("unpause", "conveyor-lb")
    assert rc != 0, output[-3000:]
    after = live_versions()
    moved = [host for host in app_hosts() if after[host] != before[host]]
    assert moved in ([], ["app01"]), (before, after)
    summary = [line for line in output.splitlines() if line.startswith(("Release ", "Rollback "))]
    assert summary and "FAILED" in summary[-1], output[-3000:]
    if moved:
        assert "rolled back to its previous release" not in output, output[-3000:]
        assert "The fleet rollback did not finish: app01 still runs" in output, output[-3000:]
    assert locks() == {}, locks()
    result = playbook("deploy.yml", "-e", "app_version=" + target)
    assert result.rc == 0, result.output[-3000:]
    assert_consistent(target)


def test_a_release_that_never_answers_is_bounded_by_its_gate_and_the_host_is_reverted(settled):
    """Fault 6: a restart whose process never becomes ready (6.5.0 accepts connections and never answers)."""
    before = live_versions()
    with Traffic() as traffic:
        result = playbook("deploy.yml", "-e", "app_version=6.5.0", "-e", "rolling_health_timeout=20")
    assert result.rc != 0, result.output[-3000:]
    # Each probe is bounded (no answer within its request timeout), and so is the gate.
    assert "no answer within" in result.output, result.output[-4000:]
    assert traffic.summary["failed"] == 0, traffic.summary
    assert live_versions() == before
    assert_consistent(set(before.values()).pop())
    assert {r["version"]: r["state"] for r in releases("app01")}["6.5.0"] == "failed"


@pytest.fixture
def squatter():
    """On app01, the app's port held by a process outside the unit: the old release, started by hand."""
    host = "app01"
    on_host(host, "systemctl stop sample && systemd-run --unit conveyor-squatter -p WorkingDirectory=/opt/sample/current "
                  "/usr/bin/python3 /opt/sample/current/app.py && sleep 1")
    assert serves(host) == "200"
    yield host
    on_host(host, "systemctl stop conveyor-squatter; systemctl reset-failed sample conveyor-squatter; "
                  "systemctl restart sample")


def test_a_port_already_taken_fails_the_host_naming_it_and_the_host_is_reverted(settled, squatter):
    """Fault 6: the new release cannot bind its port; the process that holds it answers with the old version."""
    before = live_versions()
    target = other_version()
    result = playbook("deploy.yml", "-e", "app_version=" + target)
    assert result.rc != 0, result.output[-3000:]
    # The gate's reason, and the unit's journal naming the cause.
    assert "Address already in use" in result.output, result.output[-4000:]
    assert live_versions() == before
    assert locks() == {}, locks()
    summary = [line for line in result.output.splitlines() if line.startswith("Release ")]
    assert summary and "FAILED" in summary[-1], result.output[-3000:]
