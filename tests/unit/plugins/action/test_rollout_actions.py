# -*- coding: utf-8 -*-
"""The controller-side pieces of the rollout actions and the lookup, without Ansible's executor."""

import datetime
import os

import pytest

from ansible_collections.conveyor.deploy.plugins.action import rollout_batch, rollout_host, rollout_plan, rollout_report
from ansible_collections.conveyor.deploy.plugins.lookup import rollout as lookup
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _rollout

T0 = datetime.datetime(2026, 12, 1, 10, 0, 0, tzinfo=datetime.timezone.utc)


def plan_args(**extra):
    args = {key: spec.get("default") for key, spec in rollout_plan.ARGUMENT_SPEC.items()}
    args.update(kind="deploy", version="2.0.0", app_root="/opt/shop", batches=[1],
                inputs={"artifact_url": "https://a.example/shop-2.0.0.tar.gz"})
    args.update(extra)
    return args


def test_plan_names_the_deploy_and_its_release():
    run = rollout_plan.plan(plan_args(), ["app01", "app02"], {"awx_user_name": "carol"}, run_id="20261201T100000Z-ab",
                            now=T0)
    assert run["release_id"] == "20261201T100000Z-2.0.0" and run["actor"].startswith("carol@")
    assert run["app_root"] == "/opt/shop" and run["policy"]["keep_releases"] == 5


@pytest.mark.parametrize("extra, text", [
    ({"version": "1.0 beta"}, "app_version (rolling_version) is '1.0 beta'"),
    ({"app_root": "opt/shop"}, "app_root is 'opt/shop': it must be an absolute path"),
    ({"keep_releases": 0}, "rolling_keep_releases is 0"),
    ({"inputs": {"artifact_url": "ftp://x"}}, "app_artifact_url is 'ftp://x'"),
    ({"inputs": {"artifact_url": "/srv/a.tgz", "artifact_sha256": "abc"}}, "app_artifact_sha256 must be 64 hex"),
    ({"inputs": {"artifact_url": "/srv/a.tgz", "is_production": True, "allow_unverified": True}},
     "rolling_allow_unverified is refused in production"),
    ({"lb": {"enabled": True, "host": "lb9"}, "inputs": {"artifact_url": "/a", "lb_host_known": False}},
     "rolling_lb_host 'lb9' is not in the inventory"),
    ({"kind": "rollback", "inputs": {"is_production": True}}, 'give -e rollback_reason="..."'),
    ({"emergency": {"enabled": True, "reason": " "}}, 'rolling_emergency is on without a reason: give -e emergency_reason'),
    ({"emergency": {"enabled": True, "reason": "fix\nInjected: line"}}, "emergency_reason contains a control character"),
    ({"canary": {"enabled": True}}, "rolling_canary is on, but the app has no load balancer"),
    ({"analysis": {"max_eror_ratio": 0.1}, "lb": {"enabled": True, "host": "lb01"}},
     "rolling_analysis has no setting max_eror_ratio"),
    ({"watch_seconds": 30}, "rolling_watch_seconds is on, but the app has no load balancer"),
])
def test_plan_refuses_bad_inputs_naming_the_variable(extra, text):
    with pytest.raises(_rollout.PlanError) as caught:
        rollout_plan.plan(plan_args(**extra), ["app01"], {}, run_id="RUN")
    assert text in str(caught.value)


def test_the_pause_is_planned_from_its_variable_and_refused_when_it_cannot_be():
    lb = {"enabled": True, "host": "lb01", "backend": "shop"}
    run = rollout_plan.plan(plan_args(lb=lb, canary={"enabled": True}, pause_after="canary"), ["app01", "app02"], {},
                            run_id="RUN", now=T0)
    assert run["policy"]["pause_after"] == 1 and run["policy"]["pause_ttl"] == 86400
    # An emergency never pauses; a rollback has no pause.
    hurried = rollout_plan.plan(plan_args(lb=lb, canary={"enabled": True}, pause_after="canary",
                                          emergency={"enabled": True, "reason": "fix"}), ["app01", "app02"], {}, run_id="R")
    assert hurried["policy"]["pause_after"] == 0
    with pytest.raises(rollout_plan._rollout.PlanError) as err:
        rollout_plan.plan(plan_args(lb=lb, pause_after="canary", pause_ttl=5), ["app01", "app02"], {}, run_id="RUN")
    assert "rolling_pause_after is canary, but rolling_canary is off" in str(err.value)
    assert "rolling_pause_ttl is 5" in str(err.value)


def test_an_emergency_skips_canary_analysis_watch_and_bake_and_says_so():
    lb = {"enabled": True, "host": "lb01", "backend": "shop"}
    args = plan_args(lb=lb, bake_seconds=30, canary={"enabled": True}, watch_seconds=60,
                     emergency={"enabled": True, "reason": "CVE-2026-1234 hotfix"})
    run = rollout_plan.plan(args, ["app01", "app02"], {}, run_id="RUN", now=T0)
    assert run["emergency"] == "CVE-2026-1234 hotfix"
    assert run["policy"]["bake_seconds"] == 0 and not run["policy"]["canary"]["enabled"]
    assert not run["policy"]["analysis"]["enabled"] and run["policy"]["analysis"]["watch_seconds"] == 0
    calm = rollout_plan.plan(dict(args, emergency={"enabled": False, "reason": "x"}), ["app01", "app02"], {},
                             run_id="RUN", now=T0)
    assert calm["emergency"] == "" and calm["policy"]["canary"]["enabled"] and calm["policy"]["bake_seconds"] == 30
    assert calm["policy"]["analysis"]["watch_seconds"] == 60


FROZEN = {"freezes": [{"name": "forever", "start": "2000-01-01T00:00", "end": "2100-01-01T00:00"}]}


def production(**extra):
    return plan_args(inputs={"artifact_url": "https://a.example/shop-2.0.0.tar.gz", "is_production": True},
                     environment="prod", **extra)


def no_file(path):
    raise AssertionError("no approvals file is read here")


@pytest.mark.parametrize("extra, refused", [
    ({"approval": {"change_id": "CHG-1", "approver": "carol"}}, []),
    ({"approval": {"change_id": "CHG-1", "approver": "alice"}}, ["four-eyes"]),
    ({}, ["approval refused: no change id"]),
    ({"windows": FROZEN, "approval": {"change_id": "CHG-1", "approver": "carol"}},
     ["deployment window closed for prod: freeze: forever"]),
    ({"windows": FROZEN}, ["deployment window closed", "no change id"]),
    ({"windows": FROZEN, "override_reason": "outage", "approval": {"change_id": "CHG-1", "approver": "carol"}}, []),
])
def test_production_gates_are_judged_by_the_plan(extra, refused):
    gates = rollout_plan.production_gates(production(**extra), "alice", no_file)
    assert gates["enforced"]
    for text in refused:
        assert text in gates["refused"]
    assert bool(gates["refused"]) is bool(refused)
    assert gates["window"]["overridden"] is bool(extra.get("override_reason"))


def test_gates_are_not_enforced_outside_production_nor_for_rollbacks():
    outside = rollout_plan.production_gates(plan_args(windows=FROZEN), "alice", no_file)
    assert outside == {"enforced": False, "refused": ""}
    rollback = production(kind="rollback", windows=FROZEN)
    assert not rollout_plan.production_gates(rollback, "alice", no_file)["enforced"]


def test_a_refused_gate_stops_every_host_before_it_locks_or_stages():
    run = rollout_plan.plan(production(), ["app01"], {}, run_id="RUN-1", now=T0)
    run["gates"] = rollout_plan.production_gates(production(), "alice", no_file)
    action = rollout_host.ActionModule.__new__(rollout_host.ActionModule)
    action.call = lambda **steps: pytest.fail("the host was called: %s" % steps)
    with pytest.raises(_rollout.PlanError, match="refused by its gates, which the rollout enforces whatever the "
                       "checklist ran: approval refused: no change id"):
        action.prepare(run, {"force": False, "probe": {}, "stage": {}, "lock_ttl": 60, "app_root": "/opt/shop"},
                       "app01")


@pytest.mark.parametrize("smoke_url, smoke, url, proof", [
    pytest.param("", {"lb_url": "http://lb:8080", "health_path": "/healthz", "version_from": "header",
                      "version_header": "X-Build"}, "http://lb:8080/healthz", "header", id="from-the-proof"),
    pytest.param("http://lb:8080/version", {"lb_url": "http://lb:8080"}, "http://lb:8080/version", None,
                 id="an-explicit-url-is-the-bare-version"),
    pytest.param("", {"lb_url": ""}, "", None, id="no-load-balancer-no-smoke"),
])
def test_a_rollback_plan_carries_its_smoke_test(smoke_url, smoke, url, proof):
    run = rollout_plan.plan(plan_args(kind="rollback", inputs={}, smoke_url=smoke_url, smoke=smoke), ["a"], {},
                            run_id="R-1", now=T0)
    assert run["policy"]["smoke_url"] == url
    assert (run["policy"]["smoke_proof"] or {}).get("version_from") == proof


def test_a_rollback_plan_refuses_a_bad_smoke_proof():
    with pytest.raises(_rollout.PlanError) as caught:
        rollout_plan.plan(plan_args(kind="rollback", inputs={}, smoke={"lb_url": "http://lb", "version_from": "pid"}),
                          ["a"], {}, run_id="R-1")
    assert "app_health_version_from) is 'pid'" in str(caught.value)


def test_plan_lists_every_problem_at_once():
    problems = rollout_plan.input_problems(plan_args(version="", app_root="x", keep_releases=0))
    assert len(problems) == 3


def committed():
    run = rollout_plan.plan(plan_args(batches=[2], min_healthy_percent=0), ["a", "b", "c"], {}, run_id="R-1", now=T0)
    moving = {"from": {"version": "1"}, "to": {"release_id": "R2", "version": "2"}, "back": {"release_id": "R1", "version": "1"},
              "work": True}
    return _rollout.commit(run, {"a": moving, "b": moving, "c": moving})


def test_lookup_gives_the_rollout_plays_their_hosts_and_serial():
    run = committed()
    hostvars = {"a": {"rolling_run": run}, "b": {"rolling_run": run}, "c": {}}
    found = lookup.find_run(hostvars, ["a", "b", "c"])
    assert lookup.answer("hosts", found, hostvars) == ["a", "b", "c"]
    assert lookup.answer("sizes", found, hostvars) == [2, 1]
    assert lookup.answer("recover_hosts", found, hostvars) == []
    assert lookup.answer("run_hosts", found, hostvars) == ["a", "b", "c"]
    assert lookup.answer("hosts", None, {}) == []
    # After a failed second batch, the first batch goes back.
    batch1 = {"index": 1, "hosts": {"a": {"outcome": "deployed"}, "b": {"outcome": "deployed"}}}
    batch2 = {"index": 2, "hosts": {"c": {"outcome": "rolled_back", "reason": "gate"}}}
    hostvars = {"a": {"rolling_run": run, "__rolling_batch": batch1}, "b": {"__rolling_batch": batch1},
                "c": {"__rolling_batch": batch2}}
    assert lookup.answer("recover_hosts", run, hostvars) == ["a", "b"]
    assert lookup.answer("recover_sizes", run, hostvars) == [2]


def test_the_end_of_run_plays_get_hosts_only_when_the_report_of_this_run_asks_for_them():
    run = committed()
    ok = {"summary": {"run_id": run["run_id"]}, "run_failed": False, "task_hooks": []}
    hostvars = {"a": {"rolling_run": run, "rolling_report": ok}, "b": {"rolling_report": ok}, "c": {}}
    assert lookup.answer("end_hook_hosts", run, hostvars) == []
    assert lookup.answer("failed_run_hosts", run, hostvars) == []
    failed = dict(ok, run_failed=True, task_hooks=[{"point": "on_failure", "file": "/h/f.yml"}])
    hostvars["a"]["rolling_report"] = failed
    assert lookup.answer("end_hook_hosts", run, hostvars) == ["a", "b", "c"]
    assert lookup.answer("failed_run_hosts", run, hostvars) == ["a"]
    # A report an earlier run of the same playbook left behind is not this run's.
    hostvars["a"]["rolling_report"] = dict(failed, summary={"run_id": "EARLIER"})
    assert lookup.answer("failed_run_hosts", run, hostvars) == []


def test_window_recheck_applies_to_deploys_only_and_honours_the_override():
    run = committed()
    closed = {"freezes": [{"name": "all december", "start": "2026-12-01", "end": "2026-12-31"}], "timezone": "UTC"}
    run["policy"].update(windows=closed, window_now="2026-12-01T10:00:00")
    assert "The deployment window closed (freeze: " in rollout_batch.window_problem(run, "forward")
    assert rollout_batch.window_problem(run, "recover") == ""
    run["policy"]["override_reason"] = "incident 42"
    assert rollout_batch.window_problem(run, "forward") == ""


def test_report_counts_the_requests_served_and_fails_a_failed_run():
    run = committed()
    b1 = {"index": 1, "served_before": 100, "served_after": 150,
          "hosts": {"a": {"outcome": "deployed", "reason": ""}, "b": {"outcome": "deployed", "reason": ""}}}
    b2 = {"index": 2, "served_before": 150, "served_after": 230, "hosts": {"c": {"outcome": "deployed", "reason": ""}}}
    hostvars = {"a": {"__rolling_batch": b1}, "b": {"__rolling_batch": b1}, "c": {"__rolling_batch": b2}}
    found, failed, message = rollout_report.report(run, hostvars, run["t_committed"] + 9)
    assert not failed and message == "" and found["requests_served"] == 130
    b2["hosts"]["c"] = {"outcome": "rolled_back", "reason": "503"}
    found, failed, message = rollout_report.report(run, hostvars, run["t_committed"] + 9)
    assert failed and "c rolled_back (503)" in message and found["failed"]


def test_smoke_test_expects_the_version_alone_in_every_answer():
    answers = iter([(True, 200, 3.0, None)] * 3)
    found = rollout_report.smoke_test("http://lb/version", "1.0.0", 3, probe=lambda *a: next(answers))
    assert found["passed"] and found["msg"].startswith("3/3 consecutive successes")
    bad = rollout_report.smoke_test("http://lb/version", "1.0.0", 3,
                                    probe=lambda *a: (False, 200, 2.0, "body does not match"))
    assert not bad["passed"] and "body does not match" in bad["msg"]


def test_smoke_test_with_a_proof_asks_the_proof_of_every_answer():
    seen = []

    def probe(params, compiled, pattern, check):
        seen.append(params["body_regex"])
        return (True, 200, 1.0, None) if check({"X-App-Version": "2.0.0"}, "Ok") is None else (False, 200, 1.0, "no")
    proof = {"version_from": "header", "version_header": "X-App-Version"}
    assert rollout_report.smoke_test("http://lb/health", "2.0.0", 3, proof, probe=probe)["passed"]
    assert seen == [None] * 3, "a proof replaces the bare-version body check"
    assert not rollout_report.smoke_test("http://lb/health", "3.0.0", 3, proof, probe=probe)["passed"]


class FakeTask(object):
    check_mode = False


def batch_action(calls):
    """The batch action without Ansible's executor: its load-balancer calls are recorded, and succeed."""
    action = object.__new__(rollout_batch.ActionModule)
    action._task = FakeTask()

    def lb_call(run, servers, state, task_vars, **extra):
        calls.append((state, list(servers)))
        return {"changed": True, "msg": "%s %s" % (state, ", ".join(servers)), "servers": []}
    action.lb_call = lb_call
    return action


def lb_run():
    run = committed()
    run["lb"] = {"enabled": True, "backend": "shop", "socket": "/run/haproxy/admin.sock"}
    run["policy"]["bake_seconds"] = 0
    return run


def test_done_drains_the_next_batch_and_that_batch_calls_the_load_balancer_no_more():
    run, calls = lb_run(), []
    action = batch_action(calls)
    args = {"step": "drain", "direction": "forward", "drain_var": "__rolling_drain",
            "cutover_var": "__rolling_cutover", "record_var": "__rolling_batch"}
    drain = action.drain(run, args, {}, ["a", "b"], ["a", "b"], 1, 2)
    assert calls == [("drained", ["a", "b"])] and drain["moving"] == ["a", "b"]
    moved = {"outcome": "moved", "gate": {"passed": True, "elapsed_s": 1.0}}
    hostvars = {"a": {"__rolling_cutover": moved}, "b": {"__rolling_cutover": moved}, "c": {}}
    done = action.done(run, dict(args, step="done"), {"__rolling_drain": drain}, hostvars, ["a", "b"], ["a", "b"], 1,
                       run["batches"])
    assert not done["stop"]
    assert calls[1:] == [("enabled", ["a", "b"]), ("drained", ["c"])]
    assert done["next_drain"]["index"] == 2 and done["next_drain"]["moving"] == ["c"]
    assert done["lb_window"][0] <= done["lb_window"][1]
    # The next batch's drain step finds the drain made ahead.
    hostvars.update(a={"__rolling_batch": dict(done, direction="forward")}, b={"__rolling_batch": dict(done)})
    ahead = rollout_batch.drained_ahead(run, hostvars, args, 2)
    assert ahead["moving"] == ["c"] and ahead["changed"] is False
    assert rollout_batch.drained_ahead(run, hostvars, dict(args, direction="recover"), 2) is None
    assert rollout_batch.drained_ahead(run, hostvars, args, 3) is None


def test_a_stopped_batch_drains_nothing_ahead():
    run, calls = lb_run(), []
    action = batch_action(calls)
    args = {"step": "done", "direction": "forward", "drain_var": "__rolling_drain",
            "cutover_var": "__rolling_cutover", "record_var": "__rolling_batch"}
    drain = {"moving": ["a", "b"], "drain": {"msg": "ok"}, "closed": ""}
    failed = {"outcome": "reverted", "reason": "gate: 503", "gate": {"passed": False, "elapsed_s": 2.0}}
    hostvars = {"a": {"__rolling_cutover": failed}, "b": {"__rolling_cutover": failed}}
    done = action.done(run, args, {"__rolling_drain": drain}, hostvars, ["a", "b"], ["a", "b"], 1, run["batches"])
    assert done["stop"] and "next_drain" not in done
    assert [state for state, dummy in calls] == ["enabled"]


def test_a_host_drained_ahead_that_left_the_play_rejoins_and_the_others_move():
    run, calls = lb_run(), []
    action = batch_action(calls)
    args = {"step": "drain", "direction": "forward", "drain_var": "__rolling_drain",
            "cutover_var": "__rolling_cutover", "record_var": "__rolling_batch"}
    record = {"index": 1, "direction": "forward", "hosts": {},
              "next_drain": {"index": 2, "moving": ["b", "c"], "changed": True, "msg": "batch 2 of 2: b, c"}}
    hostvars = {"a": {"__rolling_batch": record}}
    found = action.drain_step(run, args, {}, hostvars, ["b", "c"], ["b"], 2, [["a"], ["b", "c"]])
    assert found["moving"] == ["b"] and calls == [("enabled", ["c"])]
    # Without a drain made ahead, the step drains the batch itself.
    calls[:] = []
    found = action.drain_step(run, args, {}, {"a": {}}, ["b", "c"], ["b", "c"], 2, [["a"], ["b", "c"]])
    assert found["moving"] == ["b", "c"] and calls == [("drained", ["b", "c"])]


class CountingHostvars(dict):
    """hostvars whose every read is counted: each costs Ansible a merge of that host's variables."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads = []

    def get(self, host, default=None):
        self.reads.append(host)
        return super().get(host, default)


def test_each_batch_record_carries_the_earlier_ones_so_readers_read_one_host():
    run, calls = lb_run(), []
    action = batch_action(calls)
    args = {"step": "done", "direction": "forward", "drain_var": "__rolling_drain",
            "cutover_var": "__rolling_cutover", "record_var": "__rolling_batch"}
    moved = {"outcome": "moved", "timings": {"verify": 1.0}}
    hostvars = CountingHostvars(a={"__rolling_cutover": moved}, b={"__rolling_cutover": moved},
                                c={"__rolling_cutover": moved})
    first = action.done(run, args, {"__rolling_drain": {"moving": ["a", "b"]}}, hostvars, ["a", "b"], ["a", "b"], 1,
                        run["batches"])
    assert first["earlier"] == [] and first["run_id"] == run["run_id"]
    for host in ("a", "b"):
        hostvars[host]["__rolling_batch"] = first
    second = action.done(run, args, {"__rolling_drain": {"moving": ["c"]}}, hostvars, ["c"], ["c"], 2, run["batches"])
    assert [record["index"] for record in second["earlier"]] == [1]
    assert "earlier" not in second["earlier"][0] and "figures" not in second["earlier"][0]
    hostvars["c"]["__rolling_batch"] = second
    hostvars.reads[:] = []
    rows = _rollout.records_of(run, hostvars)
    assert hostvars.reads == ["c"], "the last batch's record carries the others"
    assert {host: row["outcome"] for host, row in rows.items()} == {"a": "deployed", "b": "deployed", "c": "deployed"}
    assert [row["batch"] for host, row in sorted(rows.items())] == [1, 1, 2]


def test_records_of_another_run_are_ignored_and_unexpected_errors_are_collected():
    run = committed()
    earlier = {"index": 1, "direction": "forward", "run_id": run["run_id"], "earlier": [],
               "hosts": {"a": {"outcome": "deployed"}, "b": {"outcome": "deployed"}}}
    crashed = {"index": 0, "run_id": run["run_id"], "stop": True, "error": "unexpected error on c: boom",
               "hosts": {"c": {"outcome": "failed", "reason": "unexpected error: boom"}}}
    other_run = {"index": 1, "run_id": "another-run", "earlier": [], "hosts": {"c": {"outcome": "deployed"}}}
    hostvars = {"a": {"__rolling_batch": earlier}, "b": {"__rolling_batch": earlier}, "c": {"__rolling_batch": crashed}}
    assert [record["index"] for record in _rollout.batch_records(run, hostvars)] == [1, 0]
    assert _rollout.batch_errors(run, hostvars) == ["unexpected error on c: boom"]
    assert _rollout.records_of(run, hostvars)["c"]["outcome"] == "failed"
    hostvars["c"]["__rolling_batch"] = other_run
    assert "c" not in _rollout.records_of(run, hostvars)


def test_every_load_balancer_call_renews_the_runs_locks():
    run, seen = lb_run(), []
    action = object.__new__(rollout_batch.ActionModule)
    action._execute_module = lambda module_name, module_args, task_vars: seen.append(module_args) or {}
    action.lb_call(run, ["a"], "drained", {}, wait_timeout=5)
    assert seen[0]["heartbeat"] == {"run_id": run["run_id"]} and seen[0]["servers"] == ["a"]


def plan_action(answer):
    action = object.__new__(rollout_plan.ActionModule)
    calls = []

    def execute(module_name, module_args, task_vars):
        calls.append((module_name, module_args))
        if isinstance(answer, Exception):
            raise answer
        return answer
    action._execute_module = execute
    return action, calls


def test_the_plan_records_its_first_heartbeat_and_reads_the_others_on_the_load_balancer():
    run = rollout_plan.plan(plan_args(lb=dict(LB_ARGS)), ["app01", "app02"], {}, run_id="20261201T100000Z-ab", now=T0)
    assert run["lock"] == {"renewed": {"host": "lb01", "backend": "shop"}, "bound_s": 240}
    beats = {"20261201T095000Z-cd": "2026-12-01T09:51:00.000000Z"}
    action, calls = plan_action({"changed": True, "beats": beats, "now": "2026-12-01T10:00:01.000000Z"})
    assert action.heartbeat(run, {}) == {"host": "lb01", "read_at": "2026-12-01T10:00:01.000000Z", "beats": beats}
    assert calls == [("conveyor.deploy.run_heartbeat", {"backend": "shop", "run_id": "20261201T100000Z-ab"})]


@pytest.mark.parametrize("answer", [
    {"failed": True, "msg": "Permission denied"},
    rollout_plan.AnsibleConnectionFailure("ssh: connect to host lb01 port 22: Connection refused"),
])
def test_a_load_balancer_that_cannot_keep_the_heartbeats_refuses_the_run_naming_it(answer):
    run = rollout_plan.plan(plan_args(lb=dict(LB_ARGS)), ["app01", "app02"], {}, run_id="RUN", now=T0)
    action, dummy = plan_action(answer)
    with pytest.raises(_rollout.PlanError, match="The load balancer lb01 did not answer when the run was planned "
                       r"\(.*(Permission denied|Connection refused).*\).*rolling_lb_enabled: false"):
        action.heartbeat(run, {})


LB_ARGS = {"enabled": True, "host": "lb01", "backend": "shop", "socket": "/run/haproxy/admin.sock"}
ME = {"host": "ctl", "boot_id": "b", "pid": 1, "pid_start": "1"}


def test_a_lock_whose_run_stopped_beating_is_taken_over_and_a_live_one_is_not():
    held = {"run_id": "20261201T090000Z-cd", "ttl": 600, "renewed": {"host": "lb01", "backend": "shop"},
            "started_at": "2026-12-01T09:00:00.000000Z", "controller": {"host": "awx-pod", "pid": 9}}
    for read_at, taken in (("2026-12-01T09:59:59.000000Z", False), ("2026-12-01T10:00:00.000000Z", True)):
        run = {"run_id": "20261201T100000Z-ab",
               "heartbeat": {"read_at": read_at, "beats": {held["run_id"]: "2026-12-01T09:50:00.000000Z"}}}
        action, calls = object.__new__(rollout_host.ActionModule), []

        def call(**steps):
            calls.append(steps["lock"])
            if steps["lock"].get("takeover"):
                return {"locked": True, "took_over": {"run_id": held["run_id"]}}
            return {"failed": True, "failed_step": "lock", "lock_held": held, "msg": "held"}
        action.call = call
        answer = action.call_locking(run, app_root="/opt/shop", run_id=run["run_id"], lock={"controller": ME})
        assert bool(answer.get("locked")) is taken
        assert len(calls) == (2 if taken else 1)
        if taken:
            assert calls[1]["takeover"] == held["run_id"] and "has not renewed its lock for 600 s" in calls[1]["reason"]


def test_the_locks_of_a_run_with_a_load_balancer_say_they_are_renewed():
    run = rollout_plan.plan(plan_args(lb=dict(LB_ARGS), inputs={"artifact_url": "/a.tgz", "lock_ttl": 300}),
                            ["app01", "app02"], {}, run_id="RUN", now=T0)
    run["controller"] = dict(ME, pid=os.getppid())  # this process's playbook: alive
    options = rollout_host.ActionModule.lock_options(run, {"lock_ttl": 300})
    assert options["ttl"] == 300 and options["renewed"] == {"host": "lb01", "backend": "shop"}
    assert options["bound"] == 2 * 120 + 300  # two batches of (drain 60 + re-enable 60), one ttl
    plain = rollout_plan.plan(plan_args(), ["app01", "app02"], {}, run_id="RUN", now=T0)
    plain["controller"] = run["controller"]
    assert "renewed" not in rollout_host.ActionModule.lock_options(plain, {"lock_ttl": 300})


def test_a_host_out_of_rotation_is_not_skipped_as_live_so_its_batch_puts_it_back():
    run = rollout_plan.plan(plan_args(lb=dict(LB_ARGS), inputs={"artifact_url": "/a.tgz", "lock_ttl": 300}),
                            ["app01", "app02"], {}, run_id="RUN", now=T0)
    run["controller"] = dict(ME, pid=os.getppid())
    servers = [{"name": "app01", "admin": "drain"}, {"name": "app02", "admin": "ready"}, {"name": "x9", "admin": "maint"}]
    action, calls = plan_action({"servers": servers})
    run["out_of_rotation"] = action.taken_out(run, {})
    assert run["out_of_rotation"] == ["app01", "x9"]
    assert calls == [("conveyor.deploy.haproxy_info", {"socket": "/run/haproxy/admin.sock", "backend": "shop"})]
    host = object.__new__(rollout_host.ActionModule)
    seen = {}

    def call(**steps):
        seen[steps["stage"]["version"]] = "skip_if_live" in steps
        return {"locked": True, "current": {"release_id": "R1", "version": "1.0.0"}}
    host.call = call
    args = {"force": False, "probe": {"url": "http://127.0.0.1:8000/health"}, "stage": {}, "lock_ttl": 300,
            "app_root": "/opt/shop", "artifact_username": "", "hooks": {}, "censor": []}
    for name, skipped in (("app01", False), ("app02", True)):
        run["version"] = name  # tells the two calls apart
        host.prepare(run, dict(args, lb_name=name), name)
        assert seen[name] is skipped
