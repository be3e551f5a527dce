"""Manual rollback on the lab: refusals that change nothing, a rolling rollback with zero
failed requests, a rerun that changes nothing."""
import datetime

import pytest

from .conftest import Traffic, app_hosts, live_versions, on_host, playbook, releases


def rollback(*extra):
    return playbook("playbooks/rollback.yml", *extra)


def snapshot():
    return {host: on_host(host, "ls /opt/sample/releases; readlink /opt/sample/current; "
                                "grep -h '\"state\"' /opt/sample/releases/*/.conveyor-release.json")
            for host in app_hosts()}


@pytest.fixture(scope="module", autouse=True)
def history():
    """1.0.0 then 2.0.0 live everywhere, whatever ran before."""
    for version in ("1.0.0", "2.0.0"):
        result = playbook("deploy.yml", "-e", "app_version=%s" % version, "-e", "rolling_force=true")
        assert result.rc == 0, result.output[-3000:]


def test_refused_without_a_previous_good_release():
    result = rollback("-e", "app_root=/opt/never-deployed")
    assert result.rc != 0
    assert "no previous good release to go back to" in result.output
    assert "nothing live changed" in result.output


def test_refused_without_a_reason_in_production():
    before = snapshot()
    result = rollback("-e", "env_is_production=true")
    assert result.rc != 0 and 'give -e rollback_reason="..."' in result.output
    assert snapshot() == before


def test_refused_when_the_named_release_is_missing():
    before = snapshot()
    result = rollback("-e", "rollback_to=0.9.9")
    assert result.rc != 0
    assert "no release with id or version 0.9.9" in result.output
    assert snapshot() == before


def test_refused_when_the_target_does_not_verify_on_one_host():
    app = app_hosts()[-1]
    target = [r for r in releases(app) if r["version"] == "1.0.0"][-1]["release_id"]
    path = "/opt/sample/releases/%s/app.py" % target
    on_host(app, "cp -p %s /tmp/app.py.orig && echo '# tampered' >> %s" % (path, path))
    try:
        before = snapshot()
        result = rollback("-e", "rollback_to=1.0.0")
        assert result.rc != 0
        assert "%s: " % app in result.output and "does not verify" in result.output
        assert snapshot() == before
    finally:
        on_host(app, "cp -p /tmp/app.py.orig %s" % path)


def test_refused_when_a_lock_is_held():
    # A deploy that started a minute ago and is still running (one started after the rollback would be waited
    # for a while: two runs started together settle who goes first).
    started = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.000000Z")
    on_host("app03", "echo '{\"run_id\": \"deploy-in-progress\", \"owner\": \"carol@ci\", \"started_at\": "
                     "\"%s\", \"ttl\": 3600}' > /opt/sample/.conveyor/deploy.lock" % started)
    try:
        before = snapshot()
        result = rollback("-e", "rollback_to=1.0.0")
        assert result.rc != 0 and "held by run deploy-in-progress by carol@ci" in result.output
        assert snapshot() == before
    finally:
        on_host("app03", "rm -f /opt/sample/.conveyor/deploy.lock")


def test_rolling_rollback_with_zero_failed_requests_then_rerun_changes_nothing():
    with Traffic() as traffic:
        result = rollback("-e", "rollback_to=1.0.0", "-e", "rollback_reason=e2e: 2.0.0 is bad")
    assert result.rc == 0, result.output[-3000:]
    assert traffic.summary["failed"] == 0, traffic.summary
    assert set(live_versions().values()) == {"1.0.0"}
    assert "10/10 consecutive successes" in result.output  # the smoke test through HAProxy
    for host in app_hosts():
        live = [r for r in releases(host) if r["version"] == "2.0.0" and r.get("reason", "").startswith("rolled back")]
        assert live, host
        assert on_host(host, "test -e /opt/sample/.conveyor/deploy.lock && echo held") == ""
    again = rollback("-e", "rollback_to=1.0.0", "-e", "rollback_reason=e2e: 2.0.0 is bad")
    assert again.rc == 0
    assert all(counts["changed"] == 0 for counts in again.recap().values()), again.recap()
    assert "Nothing to do" in again.output


def test_emergency_rollback_all_at_once():
    result = playbook("deploy.yml", "-e", "app_version=2.0.0", "-e", "rolling_force=true")
    assert result.rc == 0, result.output[-3000:]
    # as an AWX survey answers it: the string "true"
    result = rollback("-e", "rollback_to=1.0.0", "-e", "rollback_all_at_once=true", "-e", "rollback_reason=drill",
                      "-e", "rollback_not_release_fault=true")
    assert result.rc == 0, result.output[-3000:]
    assert result.output.count("PLAY [Rollout | Cut over batch by batch") == 1, "not one batch"
    assert set(live_versions().values()) == {"1.0.0"}
    # not the release's fault: the newest 2.0.0 stays good
    for host in app_hosts():
        newest = sorted((r for r in releases(host) if r["version"] == "2.0.0"), key=lambda r: r["staged_at"])[-1]
        assert newest["state"] == "good", host


def test_refused_when_hosts_disagree_on_the_target():
    # Last in this file: it leaves app01 with a different history from the others.
    fleet = playbook("deploy.yml", "-e", "app_version=2.0.0", "-e", "rolling_force=true")
    assert fleet.rc == 0, fleet.output[-3000:]
    first = app_hosts()[0]
    result = playbook("deploy.yml", "-e", "app_version=1.1.0", "--limit", first)
    assert result.rc == 0, result.output[-3000:]
    try:
        before = snapshot()
        result = rollback()
        assert result.rc != 0
        assert "hosts disagree on the rollback target" in result.output
        assert "%s -> 2.0.0" % first in result.output and "-> 1.0.0" in result.output
        assert "rollback_to" in result.output
        assert snapshot() == before
    finally:
        restore = playbook("deploy.yml", "-e", "app_version=2.0.0", "-e", "rolling_force=true", "--limit", first)
        assert restore.rc == 0, restore.output[-3000:]
