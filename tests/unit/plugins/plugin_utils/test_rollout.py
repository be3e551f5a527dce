# -*- coding: utf-8 -*-
"""The rollout engine's decisions: plan, commit, batch judgement, progress, recovery, rows, verdict, rollback."""

import datetime

import pytest

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _rollout, _runinfo

T0 = datetime.datetime(2026, 12, 1, 10, 0, 0, tzinfo=datetime.timezone.utc)
POLICY = {"batches": [2], "min_healthy_percent": 50, "failure_policy": "rollback_fleet", "bake_seconds": 0}
HOSTS = ["app01", "app02", "app03", "app04"]


def rel(version, rid=None):
    return {"release_id": rid or "r-" + version, "version": version}


def deploy_run(hosts=None, policy=None, skip=(), errors=None):
    hosts = hosts or HOSTS
    run = _rollout.new_run("deploy", hosts, dict(POLICY, **(policy or {})), len(hosts), "alice@ci", "RUN-1",
                           version="2.0.0", release_id="R2", lb={"enabled": True}, now=T0)
    prepared = {}
    for host in hosts:
        if errors and host in errors:
            prepared[host] = {"error": errors[host]}
        elif host in skip:
            prepared[host] = {"from": rel("2.0.0"), "to": rel("2.0.0"), "back": rel("2.0.0"), "work": False,
                              "skip_reason": "already runs 2.0.0 and is healthy"}
        else:
            prepared[host] = {"from": rel("1.0.0"), "to": rel("2.0.0", "R2"), "back": rel("1.0.0"), "work": True}
    return _rollout.commit(run, prepared, now=T0 + datetime.timedelta(seconds=5))


def record(run, outcomes, index):
    return {"hosts": {h: {"outcome": o, "reason": "" if o == "deployed" else "its gate failed", "gate_s": 1.0,
                          "drain_s": 0.0} for h, o in outcomes.items()}, "index": index}


def test_run_ids_are_unique_sortable_and_shared_through_the_environment():
    ids = {_runinfo.new_run_id(T0) for dummy in range(50)}
    assert len(ids) == 50 and all(i.startswith("20261201T100000Z-") for i in ids)
    env = {}
    first = _runinfo.shared_run_id(env, T0)
    assert _runinfo.shared_run_id(env) == first and env[_runinfo.RUN_ID_ENV] == first


def test_actor_is_the_awx_user_when_awx_launched_it():
    assert _rollout.actor({"awx_user_name": "carol"}, controller="awx-1") == "carol@awx-1"
    assert _rollout.actor({}, user="bob", controller="vm") == "bob@vm"
    assert "@" in _rollout.actor({}) and not _rollout.actor({}).startswith("unknown@")


def test_commit_cuts_the_hosts_that_move_into_batches_and_leaves_the_others():
    run = deploy_run(skip=("app02",))
    assert run["work"] == ["app01", "app03", "app04"]
    assert run["batches"] == [["app01", "app03"], ["app04"]]
    assert run["moves"]["app02"]["skip_reason"].startswith("already runs")
    assert "staged on 3 host(s); batches of 2, 1 host(s)" in _rollout.announce(run)
    assert "rotation" not in _rollout.announce(run)


def test_the_plan_names_the_hosts_it_puts_back_into_rotation():
    run = deploy_run(skip=("app02",))
    run["out_of_rotation"] = ["app02", "app03"]  # app02 stays out: it was skipped (its prepare was not told)
    assert _rollout.announce(run).endswith(
        "at least 2 serving throughout. app03 out of the load balancer's rotation when the run started: it is put "
        "back by its batch.")
    run["out_of_rotation"] = ["app01", "app03"]
    assert "app01, app03 out of the load balancer's rotation when the run started: they are put back by their " \
           "batch." in _rollout.announce(run)


def test_commit_aborts_on_any_host_error_and_moves_nothing():
    run = deploy_run(errors={"app03": "lock: held by run other by bob@ci"})
    assert run["work"] == [] and run["batches"] == []
    assert run["aborted"].startswith("Aborted before any cutover, nothing live changed: app03: lock: held by run other")
    failed, message = _rollout.verdict(run, _rollout.final_rows(run, {}, {}))
    assert failed and "held by run other" in message


def test_a_host_that_never_answered_is_refused():
    run = _rollout.new_run("deploy", HOSTS, POLICY, 4, "a@b", "RUN", version="2", release_id="R", now=T0)
    run = _rollout.commit(run, {"app01": None, "app02": {"unreachable": True, "msg": "ssh: timeout"}})
    assert run["refused"]["app02"] == "unreachable: ssh: timeout" and "app01" in run["refused"]


def test_capacity_is_refused_naming_the_variables():
    with pytest.raises(_rollout.PlanError, match="rolling_batches.*rolling_min_healthy_percent"):
        _rollout.new_run("deploy", HOSTS, dict(POLICY, batches=["100%"]), 4, "a@b", "RUN", lb={"enabled": True})
    # Without a load balancer nothing is drained, so any batch is fine.
    assert _rollout.new_run("deploy", HOSTS, dict(POLICY, batches=["100%"]), 4, "a@b", "RUN")["policy"]


@pytest.mark.parametrize("result, outcome", [
    ({"outcome": "moved", "timings": {"verify": 1.2}}, "deployed"),
    ({"outcome": "reverted", "failed": True, "reason": "gate failed"}, "rolled_back"),
    ({"outcome": "failed", "failed": True, "msg": "could not restart"}, "failed"),
    ({"unreachable": True, "msg": "ssh"}, "unreachable"),
    (None, "unreachable"),
])
def test_cutover_outcomes(result, outcome):
    assert _rollout.cutover_outcome(result, _rollout.LABELS["deploy"])[0] == outcome


def test_batch_judgement_stops_on_a_failed_host_an_enable_error_or_a_closed_window():
    run = deploy_run()
    ok = {"app01": {"outcome": "moved"}, "app02": {"outcome": "moved"}}
    labels = run["labels"]
    assert not _rollout.judge_batch(run, ["app01", "app02"], ["app01", "app02"], ok, labels)["stop"]
    bad = dict(ok, app02={"outcome": "reverted", "failed": True, "reason": "503"})
    judged = _rollout.judge_batch(run, ["app01", "app02"], ["app01", "app02"], bad, labels)
    assert judged["stop"] and judged["hosts"]["app02"] == {"outcome": "rolled_back", "reason": "503", "gate_s": None,
                                                           "drain_s": None}
    assert _rollout.judge_batch(run, ["app01", "app02"], ["app01", "app02"], ok, labels,
                                enable={"failed": True, "msg": "timeout"})["error"] == "enable: timeout"
    closed = _rollout.judge_batch(run, ["app01", "app02"], [], {}, labels, closed="window closed")
    assert closed["stop"] and closed["hosts"]["app01"]["outcome"] == "not_started"
    refused = _rollout.judge_batch(run, ["app01"], [], {}, labels, drain={"failed": True, "msg": "Refusing"})
    assert refused["hosts"]["app01"]["reason"] == "drain: Refusing"


def test_progress_line_counts_hosts_and_estimates_the_rest():
    run = deploy_run()
    first = record(run, {"app01": "deployed", "app02": "deployed"}, 1)
    line, figures = _rollout.progress(run, first, first["hosts"], run["t_committed"] + 10.0)
    assert line == "Batch 1 of 2: app01 deployed, app02 deployed; 2 of 4 host(s) moved; 10.0 s elapsed; ETA 10 s"
    assert figures == {"batch": 1, "batches": 2, "moved": 2, "hosts": 4, "elapsed_s": 10.0, "eta_s": 10.0,
                       "stopped": False}
    second = dict(record(run, {"app03": "deployed", "app04": "rolled_back"}, 2), stop=True)
    line, figures = _rollout.progress(run, second, dict(first["hosts"], **second["hosts"]), run["t_committed"] + 21)
    assert line.endswith("3 of 4 host(s) moved; 21.0 s elapsed; STOPPED: app04: its gate failed")
    assert figures["eta_s"] is None and figures["stopped"]


def test_fleet_recovery_moves_back_only_deployed_hosts_after_a_failure_with_rollback_fleet():
    run = deploy_run()
    rows = dict(record(run, {"app01": "deployed", "app02": "deployed"}, 1)["hosts"],
                **record(run, {"app03": "deployed", "app04": "rolled_back"}, 2)["hosts"])
    hosts, batches = _rollout.recovery(run, rows)
    assert hosts == ["app01", "app02", "app03"] and batches == [["app01", "app02"], ["app03"]]
    assert _rollout.recovery(run, rows, closed="window")[0] == []
    halt = deploy_run(policy={"failure_policy": "halt"})
    assert _rollout.recovery(halt, rows)[0] == []
    good = {h: {"outcome": "deployed"} for h in HOSTS}
    assert _rollout.recovery(run, good)[0] == []


def test_rows_and_verdict_of_a_recovered_deploy():
    run = deploy_run()
    rows = dict(record(run, {"app01": "deployed", "app02": "deployed"}, 1)["hosts"],
                **record(run, {"app03": "failed", "app04": "not_started"}, 2)["hosts"])
    back = {h: {"outcome": "rolled_back", "reason": "", "gate_s": 1.0} for h in ("app01", "app02")}
    final = _rollout.final_rows(run, rows, back)
    by = {row["host"]: row for row in final}
    assert by["app01"]["outcome"] == "rolled_back" and by["app01"]["to"] == "1.0.0"
    assert by["app01"]["reason"] == "fleet rollback after a failed batch"
    failed, message = _rollout.verdict(run, final)
    assert failed and "Deployment of 2.0.0 (release R2) failed:" in message
    assert "app03 failed (its gate failed)" in message and "The fleet was rolled back" in message


def test_a_fleet_rollback_that_could_not_move_a_host_leaves_its_row_on_the_release_it_runs():
    run = deploy_run()
    rows = dict(record(run, {"app01": "deployed", "app02": "deployed"}, 1)["hosts"],
                **record(run, {"app03": "not_started", "app04": "not_started"}, 2)["hosts"])
    back = {"app01": {"outcome": "not_started", "reason": "drain: cannot talk to the runtime API"},
            "app02": {"outcome": "rolled_back", "reason": "", "gate_s": 1.0}}
    by = {row["host"]: row for row in _rollout.final_rows(run, rows, back)}
    assert (by["app01"]["outcome"], by["app01"]["to"]) == ("deployed", "2.0.0")
    assert by["app01"]["reason"] == "the fleet rollback could not move it back: drain: cannot talk to the runtime API"
    assert (by["app02"]["outcome"], by["app02"]["to"]) == ("rolled_back", "1.0.0")
    failed, message = _rollout.verdict(run, list(by.values()))
    assert failed and "The fleet was rolled back" not in message
    assert "The fleet rollback did not finish: app01 still runs 2.0.0." in message


def test_a_failed_first_deploy_never_claims_a_fleet_rollback():
    run = deploy_run(hosts=["app01"], policy={"batches": [1], "min_healthy_percent": 0})
    rows = record(run, {"app01": "failed"}, 1)["hosts"]
    failed, message = _rollout.verdict(run, _rollout.final_rows(run, rows, {}))
    assert failed and "rolled back to its previous release" not in message and "No host runs 2.0.0" in message


def test_verdict_of_a_successful_run_and_of_a_closed_window():
    run = deploy_run(skip=("app04",))
    rows = {h: {"outcome": "deployed", "reason": ""} for h in ("app01", "app02", "app03")}
    assert _rollout.verdict(run, _rollout.final_rows(run, rows, {})) == (False, "")
    rows["app03"] = {"outcome": "not_started", "reason": "the window closed"}
    failed, message = _rollout.verdict(run, _rollout.final_rows(run, rows, {}), closed="closed")
    assert failed and "stopped when the deployment window closed" in message and "next window" in message


def test_summary_never_says_ok_for_a_failed_run():
    run = deploy_run()
    rows = _rollout.final_rows(run, {h: {"outcome": "deployed", "reason": ""} for h in HOSTS}, {})
    failed, dummy = _rollout.verdict(run, rows, smoke={"passed": False, "msg": "failed: 503"})
    found = _rollout.summary(run, rows, failed, run["t_committed"] + 3, smoke={"msg": "failed: 503"})
    assert failed and _rollout.summary_lines(found)[0].startswith("Release R2 (2.0.0): FAILED")


def rb_info(current, target=None, problem=None):
    return {"current": current, "target": target, "target_problem": problem}


def test_rollback_goes_to_the_previous_good_release():
    move = _rollout.rollback_move(rb_info(rel("2.0.0"), rel("1.0.0")), "")
    assert move["work"] and move["to"]["version"] == "1.0.0" and move["back"]["version"] == "2.0.0"
    refused = _rollout.rollback_move(rb_info(rel("1.0.0"), None, "no previous good release"), "")
    assert refused["error"] == "no previous good release"


def test_a_second_rollback_is_a_retry_that_changes_nothing_and_says_how_to_go_further():
    live = dict(rel("1.1.0"), activated_reason="rollback: bad", activated_run="RB-1")
    move = _rollout.rollback_move(rb_info(live, rel("1.0.0")), "")
    assert not move["work"] and move["to"]["version"] == "1.1.0"
    assert "by run RB-1" in move["skip_reason"] and "rollback_to" in move["skip_reason"]
    further = _rollout.rollback_move(rb_info(live, rel("1.0.0")), "1.0.0")
    assert further["work"] and further["to"]["version"] == "1.0.0"


def test_a_retry_of_a_partial_rollback_finishes_it_and_the_rows_show_the_live_version():
    run = _rollout.new_run("rollback", HOSTS, dict(POLICY, batches=[1]), 4, "a@b", "RB-2", now=T0)
    done = dict(rel("1.0.0"), activated_reason="rollback", activated_run="RB-1")
    prepared = {h: _rollout.rollback_move(rb_info(done, rel("0.9.0")), "") for h in ("app01", "app02")}
    prepared.update({h: _rollout.rollback_move(rb_info(rel("2.0.0"), rel("1.0.0")), "")
                     for h in ("app03", "app04")})
    run = _rollout.commit(run, prepared)
    assert run["work"] == ["app03", "app04"] and not run["aborted"]
    rows = {h: {"outcome": "rolled_back", "reason": ""} for h in ("app03", "app04")}
    final = {row["host"]: row for row in _rollout.final_rows(run, rows, {})}
    assert final["app01"] == dict(final["app01"], outcome="skipped", to="1.0.0", **{"from": "1.0.0"})
    assert final["app03"]["to"] == "1.0.0" and final["app03"]["from"] == "2.0.0"
    assert _rollout.verdict(run, list(final.values())) == (False, "")


def test_rollback_hosts_that_disagree_abort_naming_each_target():
    run = _rollout.new_run("rollback", HOSTS[:2], dict(POLICY, batches=[1]), 2, "a@b", "RB", now=T0)
    prepared = {"app01": _rollout.rollback_move(rb_info(rel("2.0.0"), rel("1.0.0")), ""),
                "app02": _rollout.rollback_move(rb_info(rel("2.0.0"), rel("1.1.0")), "")}
    run = _rollout.commit(run, prepared)
    assert "hosts disagree on the rollback target (app01 -> 1.0.0, app02 -> 1.1.0)" in run["aborted"]
    assert "rollback_to" in run["aborted"]


def test_hook_points_are_checked_by_name_and_shape():
    assert _rollout.hook_problems({"before_gate": ["curl -f localhost/warm"], "at_end": ["true"]}) == []
    assert "unknown extension point 'after_deploy'" in _rollout.hook_problems({"after_deploy": ["x"]})[0]
    assert "must be a list of commands" in _rollout.hook_problems({"after_batch": "make warm"})[0]
    assert _rollout.hook_problems([]) == ["rolling_hooks must be a mapping of extension point to a list of commands"]


def test_controller_hooks_run_in_order_with_the_run_in_their_environment_and_stop_at_the_first_failure(tmp_path):
    run = deploy_run()
    out = tmp_path / "seen"
    assert _rollout.run_controller_hooks(['echo "$CONVEYOR_HOOK $CONVEYOR_RUN_ID $CONVEYOR_BATCH" >> %s' % out],
                                         "after_batch", run, {"CONVEYOR_BATCH": "2"}) == ""
    assert out.read_text() == "after_batch RUN-1 2\n"
    problem = _rollout.run_controller_hooks(["echo no >&2; exit 3", "echo never >> %s" % out], "at_end", run)
    assert problem == "at_end hook 'echo no >&2; exit 3' exited 3: no" and out.read_text().count("\n") == 1


def test_a_rollback_runs_only_the_end_of_run_hooks_and_they_run_in_order_with_the_outcome():
    hooks = {"after_stage": ["build"], "before_gate": ["warm"], "after_batch": ["check"], "at_end": ["end"],
             "on_failure": ["page"], "on_rollback": ["tell"]}
    assert _rollout.run_hooks("deploy", hooks) == hooks
    assert _rollout.run_hooks("rollback", hooks) == {"at_end": ["end"], "on_failure": ["page"], "on_rollback": ["tell"]}
    assert _rollout.run_hooks("rollback", None) == {}
    run = deploy_run()
    run["hooks"] = hooks
    failed = {"CONVEYOR_OUTCOME": "failed"}
    assert _rollout.end_hooks(run, True, True) == [("on_failure", ["page"], failed), ("on_rollback", ["tell"], failed),
                                                   ("at_end", ["end"], failed)]
    assert [point for point, _c, _e in _rollout.end_hooks(run, False, False)] == ["at_end"]
    run["hooks"] = {"on_failure": ["page"]}
    assert _rollout.end_hooks(run, False, True) == []


def test_task_file_hooks_are_found_in_the_inventory_then_the_playbook_directory(tmp_path):
    inventory, playbooks = tmp_path / "inventory", tmp_path / "playbooks"
    for directory in (inventory, playbooks):
        (directory / "hooks").mkdir(parents=True)
    (inventory / "hooks" / "end.yml").write_text("[]")
    (playbooks / "hooks" / "end.yml").write_text("[]")
    (playbooks / "hooks" / "batch.yml").write_text("[]")
    dirs = [str(inventory), str(playbooks)]
    found, problems = _rollout.hook_task_files({"at_end": "hooks/end.yml", "after_batch": "hooks/batch.yml",
                                                "on_rollback": str(playbooks / "hooks" / "end.yml")}, dirs, "deploy")
    assert problems == []
    assert found == {"at_end": str(inventory / "hooks" / "end.yml"), "after_batch": str(playbooks / "hooks" / "batch.yml"),
                     "on_rollback": str(playbooks / "hooks" / "end.yml")}
    assert set(_rollout.hook_task_files({"at_end": "hooks/end.yml", "after_batch": "hooks/batch.yml"}, dirs,
                                        "rollback")[0]) == {"at_end"}
    dummy, problems = _rollout.hook_task_files({"at_end": "hooks/nope.yml", "before_gate": "x.yml", "on_failure": ""},
                                               dirs, "deploy")
    assert problems[0] == "rolling_hook_tasks.at_end: no task file hooks/nope.yml (looked in %s, %s)" % (
        inventory / "hooks" / "nope.yml", playbooks / "hooks" / "nope.yml")
    assert "names 'before_gate', where no task file can run" in problems[1]
    assert problems[2] == "rolling_hook_tasks.on_failure must be the path of a task file"
    assert _rollout.hook_task_files("hooks/end.yml", dirs, "deploy")[1] == [
        "rolling_hook_tasks must be a mapping of extension point to a task file"]
    assert _rollout.hook_task_files(None, dirs, "deploy") == ({}, [])


def test_the_end_of_run_task_files_follow_the_outcome():
    run = deploy_run()
    run["hook_tasks"] = {"at_end": "/h/end.yml", "on_failure": "/h/fail.yml", "on_rollback": "/h/back.yml"}
    assert _rollout.end_task_hooks(run, False, False) == [{"point": "at_end", "file": "/h/end.yml"}]
    assert [t["point"] for t in _rollout.end_task_hooks(run, True, True)] == ["on_failure", "on_rollback", "at_end"]
    run["hook_tasks"] = {}
    assert _rollout.end_task_hooks(run, True, True) == []


def test_check_mode_lists_the_hooks_that_would_run_and_where():
    run = deploy_run()
    run["hooks"] = {}
    assert _rollout.hooks_preview(run) == ""
    run["hooks"] = {"after_batch": ["./check.sh"], "after_stage": ["bin/build-assets", "bin/warm"]}
    run["hook_tasks"] = {"at_end": "/srv/inv/hooks/end.yml"}
    assert _rollout.hooks_preview(run) == (
        "Hooks this run would run (--check runs none): after_stage (each host): bin/build-assets; bin/warm | "
        "after_batch (the controller): ./check.sh | at_end (task file): /srv/inv/hooks/end.yml")


def test_finish_marks_good_and_prunes_only_where_the_whole_deploy_reached_its_target():
    run = deploy_run(policy={"keep_releases": 3, "not_release_fault": False})
    good = {h: {"outcome": "deployed"} for h in HOSTS}
    assert _rollout.finish_marks(run, "app01", "deployed", good, {}) == (
        [{"release_id": "R2", "state": "good", "reason": None}], 3)
    halted = dict(good, app04={"outcome": "failed"})
    assert _rollout.finish_marks(run, "app01", "deployed", halted, {}) == ([], 0)
    assert _rollout.finish_marks(run, "app04", "failed", halted, {}) == ([], 0)
    marks, keep = _rollout.finish_marks(run, "app01", "deployed", halted, {"app01": {"outcome": "rolled_back"}})
    assert keep == 0 and marks[0]["state"] == "failed" and marks[0]["release_id"] == "R2"
    assert "fleet rollback" in marks[0]["reason"] and "RUN-1" in marks[0]["reason"]


def test_finish_marks_the_release_a_rollback_left_failed_unless_it_was_not_its_fault():
    run = _rollout.new_run("rollback", ["app01"], dict(POLICY, keep_releases=5, not_release_fault=False,
                                                       min_healthy_percent=0), 1,
                           "alice@ci", "RB-1", lb={"enabled": True}, now=T0)
    run["reason"] = "errors after 2.0.0"
    run["moves"] = {"app01": {"to": rel("1.0.0"), "back": rel("2.0.0", "R2"), "work": True}}
    marks, keep = _rollout.finish_marks(run, "app01", "rolled_back", {}, {})
    assert marks == [{"release_id": "R2", "state": "failed", "reason": "rolled back: errors after 2.0.0"}]
    assert keep == 0
    run["policy"]["not_release_fault"] = True
    assert _rollout.finish_marks(run, "app01", "rolled_back", {}, {}) == ([], 0)
    assert _rollout.finish_marks(dict(run, policy=dict(run["policy"], not_release_fault=False)), "app01", "failed",
                                 {}, {}) == ([], 0)


def test_a_rollback_that_took_over_a_dead_runs_lock_repairs_a_host_it_would_leave_alone():
    live = dict(rel("1.0.0"), activated_reason="rollback: bad", activated_run="RB-1")
    repaired = _rollout.rollback_move(rb_info(live, rel("0.9.0")), "", repair=True)
    assert repaired["work"] and repaired["repair"] and repaired["to"]["version"] == "1.0.0"
    assert "skip_reason" not in repaired
    named = _rollout.rollback_move(rb_info(rel("1.0.0")), "1.0.0", repair=True)
    assert named["work"] and named["to"]["version"] == "1.0.0"
    # Repair never invents a target.
    refused = _rollout.rollback_move(rb_info(rel("1.0.0"), None, "no previous good release"), "", repair=True)
    assert not refused["work"] and refused["error"] == "no previous good release"


def test_commit_names_the_runs_whose_locks_were_taken_over_and_the_plan_says_so():
    run = _rollout.new_run("deploy", HOSTS, POLICY, 4, "a@b", "RUN-2", version="2.0.0", release_id="R2", now=T0)
    dead = {"run_id": "RUN-1", "reason": "its ansible-playbook process 7 on controller c is gone", "owner": "a@c"}
    prepared = {}
    for index, host in enumerate(HOSTS):
        prepared[host] = {"from": rel("1.0.0"), "to": rel("2.0.0", "R2"), "back": rel("1.0.0"), "work": True}
        if host in ("app02", "app03"):
            prepared[host]["took_over"] = dict(dead, started_at="2026-12-01T09:0%d:00Z" % (5 - index))
    run = _rollout.commit(run, prepared, now=T0)
    # They go first: the dead run may have left them drained.
    assert run["work"] == ["app02", "app03", "app01", "app04"] and run["batches"][0] == ["app02", "app03"]
    # Those the dead run left out of rotation first of all.
    drained = _rollout.commit(_rollout.new_run("deploy", HOSTS, POLICY, 4, "a@b", "RUN-2", version="2.0.0",
                                               release_id="R2", now=T0), prepared, out_of_rotation={"app03"})
    assert drained["work"] == ["app03", "app02", "app01", "app04"]
    assert run["takeovers"] == [dict(dead, hosts=["app02", "app03"], started_at="2026-12-01T09:03:00Z")]
    said = _rollout.announce(run)
    assert said.startswith("Took over the deploy lock of run RUN-1 on app02, app03 (its ansible-playbook process 7 "
                           "on controller c is gone); those hosts go through their batch again. Release R2")
    found = _rollout.summary(run, _rollout.final_rows(run, {}, {}), False, run["t_committed"] + 1)
    assert found["takeovers"] == run["takeovers"]
    assert "takeovers" not in _rollout.summary(deploy_run(), [], False, T0.timestamp() + 9)


def migrating_run(group=(), **extra):
    run = _rollout.new_run("deploy", HOSTS, dict(POLICY), len(HOSTS), "alice@ci", "RUN-1", version="2.0.0",
                           release_id="R2", lb={"enabled": True}, now=T0)
    run["migration"] = {"configured": True, "group_hosts": list(group)}
    run.update(extra)
    prepared = {host: {"from": rel("1.0.0"), "to": rel("2.0.0", "R2"), "back": rel("1.0.0"),
                       "work": host != "app01"} for host in HOSTS}
    prepared["app01"]["skip_reason"] = "already runs 2.0.0"
    return _rollout.commit(run, prepared, now=T0)


def test_the_migration_runs_on_one_host_that_moves_the_groups_first_or_the_first_batchs_first():
    assert migrating_run()["migration"]["host"] == "app02"
    assert migrating_run(group=["app04", "app03"])["migration"]["host"] == "app04"
    # A group host that does not move (it already runs the version) cannot migrate from a staged release.
    assert migrating_run(group=["app01"])["migration"]["host"] == "app02"
    assert deploy_run()["migration"]["host"] is None  # none configured
    nothing = migrating_run()
    nothing_moves = _rollout.commit(dict(nothing, migration={"configured": True}), {
        host: {"from": rel("2.0.0"), "to": rel("2.0.0"), "back": rel("2.0.0"), "work": False} for host in HOSTS})
    assert nothing_moves["migration"]["host"] is None


def test_a_failed_migration_aborts_the_run_and_marks_the_release_failed_where_it_was_staged():
    run = migrating_run()
    failed = _rollout.migrated(run, "app02", {"failed": True, "msg": "migrate: exited 3: boom",
                                              "migration": {"outcome": "failed", "rc": 3, "output": "secret-free"}})
    assert failed["batches"] == [] and failed["work"] == []
    assert failed["aborted"] == ("Aborted before any cutover, nothing live changed: the migration failed on app02: "
                                 "migrate: exited 3: boom. Release R2 is marked failed.")
    assert "output" not in failed["migration"] and failed["migration"]["staged_on"] == ["app02", "app03", "app04"]
    assert _rollout.finish_marks(failed, "app03", None, {}, {}) == (
        [{"release_id": "R2", "state": "failed", "reason": "its migration failed in run RUN-1"}], 0)
    assert _rollout.finish_marks(failed, "app01", None, {}, {}) == ([], 0)
    verdict = _rollout.verdict(failed, _rollout.final_rows(failed, {}, {}))
    assert verdict == (True, failed["aborted"])
    assert _rollout.summary(failed, [], True, T0.timestamp())["migration"]["outcome"] == "failed"


def test_after_a_migration_that_cannot_be_undone_a_failed_batch_does_not_roll_the_fleet_back():
    run = _rollout.migrated(migrating_run(), "app02", {"migration": {
        "outcome": "succeeded", "rc": 0, "duration_s": 1.5, "irreversible": "declared by the release"}})
    assert run["migration"]["outcome"] == "succeeded" and not run["aborted"]
    rows = dict(record(run, {"app02": "deployed", "app03": "deployed"}, 1)["hosts"],
                **record(run, {"app04": "rolled_back"}, 2)["hosts"])
    assert _rollout.recovery(run, rows) == ([], [])
    failed, message = _rollout.verdict(run, _rollout.final_rows(run, rows, {}))
    assert failed and "No fleet rollback: the migration of release R2 cannot be undone (declared by the release)" in message
    reversible = _rollout.migrated(migrating_run(), "app02", {"migration": {"outcome": "succeeded", "irreversible": ""}})
    assert _rollout.recovery(reversible, rows)[0] == ["app02", "app03"]


CROSSES = [{"release_id": "R4", "version": "4.0.0", "why": "declared by the release (MIGRATION_IRREVERSIBLE)"}]


def test_a_rollback_past_a_migration_that_cannot_be_undone_needs_a_reason_and_carries_it():
    move = _rollout.rollback_move(rb_info(rel("4.0.0", "R4"), rel("2.0.0")), "")
    refused = _rollout.past_migrations(move, CROSSES, "  ")
    assert not refused["work"] and refused["error"].startswith(
        "going back to 2.0.0 would go back past a database migration that cannot be undone, release R4 (4.0.0): "
        "declared by the release (MIGRATION_IRREVERSIBLE). Fix forward, or give -e rollback_past_migration_reason=")
    allowed = _rollout.past_migrations(move, CROSSES, "INC-7")
    assert allowed["work"] and allowed["past_migration"] == CROSSES
    assert _rollout.past_migrations(move, [], "") == move
    run = _rollout.new_run("rollback", ["app01", "app02"], dict(POLICY, batches=["100%"]), 2, "alice@ci", "RB-1",
                           lb={"enabled": False}, now=T0)
    run["past_migration_reason"] = "INC-7"
    committed = _rollout.commit(run, {"app01": dict(allowed), "app02": dict(allowed)})
    assert committed["past_migration"] == {"reason": "INC-7", "releases": [dict(CROSSES[0], hosts=["app01", "app02"])]}
    assert _rollout.summary(committed, [], False, T0.timestamp())["past_migration"]["reason"] == "INC-7"


def test_a_batch_whose_analysis_failed_goes_back_whatever_the_failure_policy():
    halt = deploy_run(policy={"failure_policy": "halt"})
    rows = record(halt, {"app01": "deployed"}, 1)["hosts"]
    assert _rollout.recovery(halt, rows)[0] == []
    rows["app01"]["analysis_failed"] = True
    hosts, batches = _rollout.recovery(halt, rows)
    assert hosts == ["app01"] and batches == [["app01"]]
    # Even when every host moved (a fleet of one canary), the analysed batch goes back.
    single = deploy_run(hosts=["app01"], policy={"min_healthy_percent": 0})
    assert _rollout.recovery(single, {"app01": {"outcome": "deployed", "analysis_failed": True}})[0] == ["app01"]
    assert _rollout.recovery(single, {"app01": {"outcome": "deployed"}})[0] == []


def test_a_canary_switched_back_after_its_analysis_is_named_so_in_rows_and_verdict():
    run = deploy_run()
    rows = record(run, {"app01": "deployed"}, 1)["hosts"]
    rows["app01"]["analysis_failed"] = True
    recovered = {"app01": {"outcome": "rolled_back", "reason": "", "gate_s": 1.0, "drain_s": 0.0}}
    final = _rollout.final_rows(run, rows, recovered)
    assert final[0]["outcome"] == "rolled_back" and final[0]["reason"] == "switched back: the analysis of its batch failed"
    failed, message = _rollout.verdict(run, final, ["analysis fail: error_ratio 0.05 > 0.02"])
    assert failed and "analysis fail: error_ratio 0.05 > 0.02." in message
    assert message.endswith("The hosts whose analysis failed were switched back to their previous release.")


def test_a_failed_watch_sends_the_whole_fleet_back_whatever_the_failure_policy():
    halt = deploy_run(policy={"failure_policy": "halt"})
    rows = dict(record(halt, {"app01": "deployed", "app02": "deployed"}, 1)["hosts"],
                **record(halt, {"app03": "deployed", "app04": "deployed"}, 2)["hosts"])
    assert _rollout.recovery(halt, rows)[0] == []
    for host in ("app03", "app04"):
        rows[host]["watch_failed"] = True
    assert _rollout.recovery(halt, rows)[0] == ["app01", "app02", "app03", "app04"]


# --------------------------------------------------------------------------- pause, promote, abort

@pytest.mark.parametrize("value, canary, expected", [
    ("", False, 0), (None, True, 0), ("canary", True, 1), ("Canary", True, 1), (2, False, 2), ("3", False, 3)])
def test_pause_after_is_canary_or_a_batch_number(value, canary, expected):
    assert _rollout.pause_after(value, canary) == expected


@pytest.mark.parametrize("value, canary, said", [
    ("canary", False, "rolling_canary is off"), ("0", False, "give canary, or the number"),
    ("-1", False, "give canary"), ("soon", True, "give canary"), (True, False, "give canary")])
def test_a_pause_point_that_cannot_be_is_refused_naming_the_variable(value, canary, said):
    with pytest.raises(_rollout.PlanError) as err:
        _rollout.pause_after(value, canary)
    assert "rolling_pause_after" in str(err.value) and said in str(err.value)


def paused_run():
    run = deploy_run(policy={"batches": [1, 1, 2]})
    run["policy"].update(pause_after=1, pause_ttl=3600, keep_releases=5)
    return run


def test_a_run_pauses_only_after_its_pause_batch_and_never_after_its_last():
    run = paused_run()
    assert _rollout.pausing(run, 1, 3) and not _rollout.pausing(run, 2, 3)
    assert not _rollout.pausing(run, 1, 3, "recover")
    assert "The run pauses after batch 1 (rolling_pause_after)" in _rollout.announce(run)
    run["policy"]["pause_after"] = 3
    assert not _rollout.pausing(run, 3, 3)
    assert "rolling_pause_after is 3, but the run has 3 batch(es): it does not pause." in _rollout.announce(run)
    assert not _rollout.pausing(dict(paused_run(), resumed={"mode": "promote"}), 1, 3)


def test_a_paused_run_is_not_failed_and_its_later_hosts_wait():
    run = paused_run()
    pause = {"after_batch": 1, "batches": 3, "at": "2026-12-01T10:00:10Z", "canary_weight": 10, "restore": {"app01": 100},
             "until": "2026-12-01T11:00:10Z"}
    first = dict(record(run, {"app01": "deployed"}, 1), paused=pause, direction="forward")
    assert _rollout.paused_of(run, [first]) == pause
    rows = _rollout.final_rows(run, _rollout.rows_of([first]), {}, pause)
    by = {row["host"]: row for row in rows}
    assert by["app01"]["outcome"] == "deployed" and by["app02"]["outcome"] == "waiting"
    assert by["app02"]["to"] == "1.0.0"
    assert _rollout.verdict(run, rows) == (False, "")
    # No fleet recovery moves a paused run's hosts back, though its later hosts did not move.
    assert _rollout.recovery_of(run, [first]) == ([], [])
    assert _rollout.recovery(run, _rollout.rows_of([first]))[0] == ["app01"]
    found = _rollout.summary(dict(run, paused=pause), rows, False, run["t_committed"] + 3)
    lines = _rollout.summary_lines(found)
    assert "PAUSED" in lines[0] and "restore" not in found["paused"]
    assert "playbooks/promote.yml -e run_id=RUN-1" in lines[1] and "canary at 10% weight" in lines[1]
    state = _rollout.pause_state(run, [first], pause)
    assert state["run"]["run_id"] == "RUN-1" and state["records"][0]["paused"] == pause and "heartbeat" not in state["run"]


def resume_answers(run, pause, hosts=None, **changes):
    state = _rollout.pause_state(run, [dict(record(run, {"app01": "deployed"}, 1), paused=pause, direction="forward")],
                                 pause)
    answers = {}
    for host in hosts or HOSTS:
        answers[host] = {"paused": {"run_id": run["run_id"], "after_batch": 1}, "state": state, "locked": True}
    answers.update(changes)
    return answers


def test_promote_continues_the_same_run_after_its_pause():
    run = paused_run()
    pause = {"after_batch": 1, "batches": 3, "at": "2026-12-01T10:00:10Z", "restore": {"app01": 100}}
    resumed = _rollout.resume("", resume_answers(run, pause), "promote", "bob@ctl", now=T0)
    assert resumed["run_id"] == "RUN-1" and resumed["release_id"] == "R2" and resumed["batches"] == run["batches"]
    assert resumed["start_batch"] == 1 and resumed["resumed"]["restore"] == {"app01": 100}
    assert "abort" not in resumed and not _rollout.pausing(resumed, 1, 3)
    # The batches moved before the pause count as this run's: a later failure rolls them back too.
    records = _rollout.batch_records(resumed, {})
    assert [r["index"] for r in records] == [1] and "paused" not in records[0]
    assert _rollout.paused_of(resumed, records) is None
    assert "batches 2 to 3 of 3, 3 host(s)" in _rollout.resumed_line(resumed)


def test_abort_switches_back_what_the_paused_run_moved_and_succeeds_when_nothing_is_left_on_it():
    run = paused_run()
    pause = {"after_batch": 1, "batches": 3, "at": "2026-12-01T10:00:10Z", "restore": {}}
    aborted = _rollout.resume("RUN-1", resume_answers(run, pause), "abort", "bob@ctl", reason="p99 too high", now=T0)
    assert aborted["start_batch"] == 3 and aborted["abort"]["reason"] == "p99 too high"
    rows = _rollout.rows_of(_rollout.batch_records(aborted, {}))
    hosts, batches = _rollout.recovery(aborted, rows)
    assert hosts == ["app01"] and batches == [["app01"]]
    back = {"app01": {"outcome": "rolled_back", "reason": "", "gate_s": 1.0}}
    final = _rollout.final_rows(aborted, rows, back)
    by = {row["host"]: row for row in final}
    assert by["app01"]["reason"] == "aborted by bob@ctl" and by["app01"]["to"] == "1.0.0"
    assert by["app02"]["outcome"] == "not_started"
    assert _rollout.verdict(aborted, final) == (False, "")
    marks, keep = _rollout.finish_marks(aborted, "app01", "deployed", rows, back)
    assert marks[0]["state"] == "failed" and marks[0]["reason"] == "aborted by bob@ctl: p99 too high in run RUN-1"
    found = _rollout.summary(aborted, final, False, aborted["t_committed"] + 1)
    assert "ABORTED" in _rollout.summary_lines(found)[0] and found["abort"]["by"] == "bob@ctl"
    stuck = _rollout.final_rows(aborted, rows, {"app01": {"outcome": "not_started", "reason": "drain: no answer"}})
    failed, message = _rollout.verdict(aborted, stuck)
    assert failed and "Abort of run RUN-1" in message and "app01 deployed" in message
    nothing_before = dict(aborted["moves"]["app01"], back={"release_id": "", "version": ""})
    first = dict(aborted, moves=dict(aborted["moves"], app01=nothing_before))
    failed, message = _rollout.verdict(first, _rollout.final_rows(first, rows, {}))
    assert failed and "app01 deployed (it has no earlier release to go back to" in message


def test_resume_refuses_what_it_cannot_continue_naming_the_hosts():
    run = paused_run()
    pause = {"after_batch": 1, "batches": 3, "at": "2026-12-01T10:00:10Z", "restore": {}}
    with pytest.raises(_rollout.PlanError) as err:
        _rollout.resume("", dict((h, {"paused": None, "state": None}) for h in HOSTS), "promote", "bob")
    assert "No paused run holds app01, app02, app03, app04: nothing to promote" in str(err.value)
    other = dict(resume_answers(run, pause)["app04"], paused={"run_id": "RUN-7", "after_batch": 1})
    with pytest.raises(_rollout.PlanError) as err:
        _rollout.resume("", resume_answers(run, pause, app04=other), "promote", "bob")
    assert "different paused runs (RUN-1 on app01, app02, app03; RUN-7 on app04)" in str(err.value)
    with pytest.raises(_rollout.PlanError) as err:
        _rollout.resume("", resume_answers(run, pause, app03={"paused": None, "state": None, "msg": "no paused run"}),
                        "abort", "bob")
    assert "app03 no longer reports it paused (app03: no paused run)" in str(err.value)
    with pytest.raises(_rollout.PlanError) as err:
        _rollout.resume("", resume_answers(run, pause, app02=None), "promote", "bob")
    assert "app02: no answer" in str(err.value)
    limited = dict((h, a) for h, a in resume_answers(run, pause).items() if h == "app01")
    with pytest.raises(_rollout.PlanError) as err:
        _rollout.resume("", limited, "promote", "bob")
    assert "app02, app03, app04 are not in this play (a --limit" in str(err.value)
