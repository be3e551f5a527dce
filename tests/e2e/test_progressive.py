"""Progressive delivery (#16): a canary by weight and the analysis of live traffic between batches, on the lab's
HAProxy, with the request loop running. The lab's 5.0.0 fails 5 % of its pages and 5.1.0 answers 300 ms late; both
pass every health gate."""
import json
import os

from .conftest import ROOT, Traffic, app_hosts, live_versions, lb_servers, on_host, playbook

CANARY = ["-e", "rolling_canary=true", "-e", "rolling_canary_weight=50", "-e", "rolling_canary_seconds=10"]


def deploy(version, *extra, changelog=None):
    env = {"ANSIBLE_SHOW_CUSTOM_STATS": "1"}
    if changelog:
        env["CONVEYOR_CHANGELOG_PATH"] = changelog
    return playbook("deploy.yml", "-e", "app_version=%s" % version, *extra, env=env)


def fleet_version():
    versions = set(live_versions().values())
    assert len(versions) == 1, versions
    return versions.pop()


def weights():
    """{server: current weight} of the sample backend (column srv_uweight of `show servers state`)."""
    text = on_host("lb", "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); "
                         "s.connect('/run/haproxy/admin.sock'); s.sendall(b'show servers state sample\\n'); "
                         "print(s.makefile().read())\"")
    return {line.split()[3]: line.split()[7] for line in text.splitlines() if line[:1].isdigit() and len(line.split()) > 7}


def assert_back_in_full(before):
    assert fleet_version() == before
    assert all(state == ("2", "0") for state in lb_servers().values()), lb_servers()
    assert set(weights().values()) == {"100"}, weights()
    for host in app_hosts():
        assert on_host(host, "test -e /opt/sample/.conveyor/deploy.lock && echo held") == "", host


def stopped_by(version, text, *extra):
    """Deploy under traffic; the run must fail with ``text`` in its output: the line that says it."""
    with Traffic():
        result = deploy(version, *extra)
    assert result.rc != 0, result.output[-3000:]
    lines = [line for line in result.output.splitlines() if text in line]
    assert lines, result.output[-3000:]
    print(lines[0])
    return lines[0]


def test_an_erroring_build_is_stopped_at_the_canary_and_its_failures_stay_within_the_canary_share():
    before = fleet_version()
    with Traffic() as traffic:
        result = deploy("5.0.0", *CANARY)
    summary = traffic.summary
    print("erroring canary: %d of %d requests failed (%s)" % (summary["failed"], summary["sent"], summary["reasons"]))
    assert result.rc != 0, result.output[-3000:]
    assert "Canary: app01 rejoins at 50% of its weight for 10 s" in result.output
    assert "analysis fail: error_ratio" in result.output and "> 0.02" in result.output, result.output[-3000:]
    assert "app01 rolled_back (switched back: the analysis of its batch failed)" in result.output
    assert "app02 not_started" in result.output
    assert_back_in_full(before)
    # Only the canary served 5.0.0, at half its weight (a seventh of the traffic with 4 hosts), for about 10 s,
    # and one answer in 20 fails: some failures, and far fewer than 1 % of the requests.
    assert set(summary["reasons"]) <= {"HTTP 500"}, summary
    assert 0 < summary["failed"] < 0.01 * summary["sent"], summary


def test_a_slow_build_is_stopped_by_the_response_time_against_the_baseline():
    before = fleet_version()
    line = stopped_by("5.1.0", "analysis fail: latency_vs_baseline", *CANARY)
    assert "mean response time" in line and "on the baseline" in line
    assert_back_in_full(before)


def lock_of(host):
    text = on_host(host, "cat /opt/sample/.conveyor/deploy.lock 2>/dev/null")
    return json.loads(text) if text else None


QUICK = ["-e", '{"rolling_analysis": {"seconds": 4, "min_requests": 30, "probe": {"url": "http://127.0.0.1:8080/", '
               '"requests": 10, "max_p95_ms": 2000}}}']


def test_a_run_paused_after_its_canary_holds_its_locks_and_promote_finishes_the_same_release(tmp_path):
    before = fleet_version()
    target = "2.0.0" if before != "2.0.0" else "1.1.0"
    log = str(tmp_path / "changelog.jsonl")
    with Traffic() as traffic:
        paused = deploy(target, *CANARY, *QUICK, "-e", "pause_after=canary", changelog=log)
        assert paused.rc == 0, paused.output[-3000:]
        assert "Batch 1 of 3: app01 deployed; 1 of 4 host(s) moved" in paused.output and "PAUSED" in paused.output
        run_id = lock_of("app01")["run_id"]
        assert "Continue: playbooks/promote.yml -e run_id=%s" % run_id in paused.output
        # The canary serves the new release at its reduced weight; the others wait, and every lock holds.
        assert live_versions() == dict((host, target if host == "app01" else before) for host in app_hosts())
        assert weights()["app01"] == "50" and weights()["app02"] == "100", weights()
        assert all(lock_of(host)["paused"]["after_batch"] == 1 for host in app_hosts())
        # Another deploy is refused, and verify.yml reports the paused run.
        other = deploy(before)
        assert other.rc != 0 and "held by paused run %s" % run_id in other.output, other.output[-2000:]
        verify = playbook("playbooks/verify.yml")
        assert verify.rc != 0 and "paused run" in verify.output and "promote.yml" in verify.output
        promoted = playbook("playbooks/promote.yml", "-e", "run_id=%s" % run_id, env={
            "CONVEYOR_CHANGELOG_PATH": log, "ANSIBLE_SHOW_CUSTOM_STATS": "1"})
    print("pause, then promote: %d of %d requests failed" % (traffic.summary["failed"], traffic.summary["sent"]))
    assert promoted.rc == 0, promoted.output[-3000:]
    assert "Promoting paused run %s" % run_id in promoted.output and "batches 2 to 3 of 3" in promoted.output
    assert traffic.summary["failed"] == 0, traffic.summary
    assert fleet_version() == target and set(weights().values()) == {"100"}, weights()
    assert all(lock_of(host) is None for host in app_hosts())
    with open(log) as handle:
        records = [json.loads(line) for line in handle]
    first, last = [r for r in records if r["kind"] == "deploy" and r["playbook"] in ("deploy.yml", "promote.yml")
                   and r["outcome"] in ("paused", "succeeded")][-2:]
    assert (first["outcome"], last["outcome"]) == ("paused", "succeeded")
    assert first["release_id"] == last["release_id"] and last["resumed"]["after_batch"] == 1
    assert first["hosts"]["app02"]["outcome"] == "waiting" and last["hosts"]["app02"]["outcome"] == "deployed"
    # A healthy release passes the canary and every analysis; all of the run's analyses, the canary's from before the
    # pause included, are in its change log record and in set_stats (conveyor_deploy.analysis).
    assert promoted.output.count("analysis pass: error_ratio") == 2, promoted.output[-3000:]
    # The synthetic probe through the load balancer ran after each window, and passed.
    assert promoted.output.count("probe_failed 0 <= 0") == 2, promoted.output[-3000:]
    analyses = last["analysis"]
    assert [entry["batch"] for entry in analyses] == [1, 2, 3]
    assert all(entry["verdict"] == "pass" for entry in analyses), analyses
    assert analyses[0]["canary"] is True and analyses[0]["new"]["servers"] == ["app01"]
    assert analyses[0]["new"]["requests"] >= 30
    assert {r["metric"] for r in analyses[0]["results"]} >= {"error_ratio", "latency_vs_baseline", "probe_failed",
                                                             "probe_p95_ms"}
    assert '"analysis": [' in promoted.output and '"metric": "error_ratio"' in promoted.output


def test_abort_switches_a_paused_run_back_and_ends_it():
    before = fleet_version()
    target = "2.0.0" if before != "2.0.0" else "1.1.0"
    paused = deploy(target, "-e", "pause_after=1")
    assert paused.rc == 0 and "PAUSED after batch 1 of 3" in paused.output, paused.output[-3000:]
    nothing = playbook("playbooks/promote.yml", "-e", "run_id=20200101T000000Z-00000000")
    assert nothing.rc != 0 and "not by run 20200101T000000Z-00000000" in nothing.output, nothing.output[-2000:]
    # A promote limited to some of the run's hosts is refused before any lock changes: the pause stays whole.
    partial = playbook("playbooks/promote.yml", "--limit", "app01")
    assert partial.rc != 0 and "are not in this play (a --limit" in partial.output, partial.output[-2000:]
    assert all(lock_of(host)["paused"]["after_batch"] == 1 for host in app_hosts())
    with Traffic() as traffic:
        aborted = playbook("playbooks/abort.yml", "-e", '{"abort_reason": "error budget burnt"}')
    assert aborted.rc == 0, aborted.output[-3000:]
    assert "ABORTED" in aborted.output and "(aborted by " in aborted.output
    assert "error budget burnt" in aborted.output
    assert traffic.summary["failed"] == 0, traffic.summary
    assert_back_in_full(before)
    # The release went back where it went live, so it is marked failed there.
    marked = json.loads(on_host("app01", "grep mark_failed /opt/sample/.conveyor/history.jsonl | tail -1"))
    assert marked["version"] == target and marked["reason"].startswith("aborted by ") and "error budget burnt" in marked["reason"]
    again = playbook("playbooks/abort.yml")
    assert again.rc != 0 and "No paused run holds" in again.output and "nothing to abort" in again.output


def test_the_watch_catches_a_release_that_degrades_after_the_last_batch_and_rolls_the_fleet_back():
    before = fleet_version()
    with Traffic() as traffic:
        # 5.2.0 passes every gate and fails 20 % of its pages from 20 s after it started.
        result = deploy("5.2.0", "-e", "rolling_watch_seconds=30")
    print("degrading release: %d of %d requests failed" % (traffic.summary["failed"], traffic.summary["sent"]))
    assert result.rc != 0, result.output[-3000:]
    assert "Watching the live traffic of app01, app02, app03, app04 for 30 s after the last batch" in result.output
    assert "watch after the last batch: analysis fail: error_ratio" in result.output, result.output[-3000:]
    assert "The fleet was rolled back to its previous release." in result.output
    assert_back_in_full(before)


def test_an_emergency_skips_the_canary_the_bake_and_a_closed_window_and_is_recorded_as_one(tmp_path):
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    freeze = {"timezone": "UTC", "freezes": [{"name": "incident", "reason": "incident review",
                                              "start": (now - datetime.timedelta(hours=1)).isoformat(timespec="minutes"),
                                              "end": (now + datetime.timedelta(hours=1)).isoformat(timespec="minutes")}]}
    target = "2.0.0" if fleet_version() != "2.0.0" else "1.1.0"
    settings = ["-e", json.dumps({"deploy_windows": freeze, "rolling_bake_seconds": 20})] + CANARY
    refused = deploy(target, "-e", "emergency=true", *settings)
    assert refused.rc != 0 and "rolling_emergency is on without a reason" in refused.output, refused.output[-2000:]
    log = str(tmp_path / "changelog.jsonl")
    with Traffic() as traffic:
        result = deploy(target, "-e", '{"emergency": true, "emergency_reason": "CVE-2026-1234 hotfix"}', *settings,
                        changelog=log)
    assert result.rc == 0, result.output[-3000:]
    assert traffic.summary["failed"] == 0, traffic.summary
    assert "EMERGENCY (CVE-2026-1234 hotfix): no canary, analysis, watch, bake or window" in result.output
    assert "overridden: emergency: CVE-2026-1234 hotfix" in result.output
    assert "Canary:" not in result.output and "Baking" not in result.output
    assert "EMERGENCY Release " in result.output
    assert fleet_version() == target
    with open(log) as handle:
        record = [json.loads(line) for line in handle][-1]
    assert record["emergency"] == "CVE-2026-1234 hotfix" and record["outcome"] == "succeeded"
    assert record["window"]["overridden"] is True


PROMETHEUS = "http://127.0.0.1:9095"
RATIO = ('sum(rate(haproxy_server_http_responses_total{proxy="$backend",server=~"$servers",code="5xx"}[$window]))'
         ' / sum(rate(haproxy_server_http_responses_total{proxy="$backend",server=~"$servers"}[$window]))')


def test_prometheus_as_the_provider_catches_the_erroring_canary_and_loads_the_shipped_alerting_rules():
    import subprocess
    import urllib.request
    rules = os.path.join(ROOT, "roles", "loadbalancer", "files", "prometheus-alerts.yml")
    check = subprocess.run(["promtool", "check", "rules", rules], capture_output=True, text=True, check=False)
    assert check.returncode == 0 and "SUCCESS: 5 rules found" in check.stdout, check.stdout + check.stderr
    with urllib.request.urlopen(PROMETHEUS + "/api/v1/rules", timeout=5) as response:
        loaded = json.loads(response.read())
    names = {rule["name"] for group in loaded["data"]["groups"] for rule in group["rules"]}
    assert {"ConveyorBackendErrorRatioHigh", "ConveyorServerSlowerThanBackend", "ConveyorBackendDown"} <= names
    before = fleet_version()
    # HAProxy's own ratio cannot fail here (max 1.0): only the PromQL query can stop the canary.
    analysis = {"max_error_ratio": 1.0, "prometheus": {"url": PROMETHEUS, "queries": [
        {"name": "canary_5xx_ratio", "query": RATIO, "max": 0.02}]}}
    line = stopped_by("5.0.0", "analysis fail: prometheus:canary_5xx_ratio", *CANARY, "-e",
                      json.dumps({"rolling_analysis": analysis}))
    assert 'server=~"app01"' in line and "[10s]" in line
    assert_back_in_full(before)
