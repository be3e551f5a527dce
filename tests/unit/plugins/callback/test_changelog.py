"""Every hook of conveyor.deploy.changelog, with the file sink written for real."""
import json
import os
import signal

import pytest

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _changelog

from .conftest import Play, Playbook, Task, result, stats

SECRET = "CANARY-s3cr3t-42"
LOCK = Task("Lock | Take the deploy lock", "conveyor.deploy.deploy_lock", {"state": "present"})
STAGE = Task("Stage | Download and unpack", "conveyor.deploy.release", {"state": "{{ templated }}"})
DRAIN = Task("Cutover | Drain the batch", "conveyor.deploy.haproxy_server", {"state": "drained"})
GATE = Task("Switch | Gate the host", "conveyor.deploy.health_check", {})
SWITCH = Task("Switch | Switch", "conveyor.deploy.release", {"state": "active"})
DEBUG = Task("Show something", "ansible.builtin.debug", {})
SUMMARY = {"release_id": "20261127T100000Z-2.0.0", "version": "2.0.0", "failed": True,
           "phases_s": {"prepare": 1.0},
           "hosts": [{"host": "app01", "outcome": "deployed", "from": "1.0.0", "to": "2.0.0", "reason": ""},
                     {"host": "app02", "outcome": "rolled_back", "from": "1.0.0", "to": "1.0.0", "reason": "gate"}]}


@pytest.fixture
def signals():
    """Whatever the callback installs for SIGINT and SIGTERM is undone after the test."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield saved
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.fixture
def changelog(load_callback, tmp_path, signals):
    plugin, display = load_callback("conveyor.deploy.changelog", path=str(tmp_path / "log.jsonl"),
                                    report_dir=str(tmp_path / "reports"))
    plugin.v2_playbook_on_start(Playbook("/somewhere/playbooks/deploy.yml"))
    plugin.v2_playbook_on_play_start(Play(extra_vars={"app_version": "2.0.0", "change_id": "CHG-7",
                                                      "awx_job_id": 99, "awx_user_name": "bob",
                                                      "vault_whatever": SECRET},
                                          host_vars={"env_name": "lab", "app_name": "{{ templated }}"}))
    return plugin, display, tmp_path / "log.jsonl"


def run_task(plugin, task, hosts, data=None, failed=(), unreachable=()):
    for host in hosts:
        plugin.v2_runner_on_start(type("H", (), {"get_name": lambda self, h=host: h})(), task)
    for host in hosts:
        payload = dict(data or {"changed": True})
        if host in unreachable:
            plugin.v2_runner_on_unreachable(result(host, task, {"msg": "ssh: connect refused", "unreachable": True}))
        elif host in failed:
            plugin.v2_runner_on_failed(result(host, task, dict(payload, failed=True, msg="answered 500")))
        else:
            plugin.v2_runner_on_ok(result(host, task, payload))


def only_record(path):
    records = _changelog.read_records(str(path))
    assert len(records) == 1
    return records[0]


def test_a_run_becomes_one_sealed_record_with_hosts_phases_and_failures(changelog):
    plugin, display, path = changelog
    run_task(plugin, LOCK, ["app01", "app02"])
    run_task(plugin, STAGE, ["app01", "app02"], {"changed": True, "invocation": {"module_args": {"state": "staged"}}})
    run_task(plugin, DRAIN, ["app01"], {"changed": True, "changed_servers": ["app01", "app02"]})
    run_task(plugin, SWITCH, ["app01", "app02"])
    run_task(plugin, GATE, ["app01", "app02"], failed=["app02"])
    run_task(plugin, SWITCH, ["app02"])
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 5}, "app02": {"ok": 4}}, {"conveyor_deploy": SUMMARY}))

    record = only_record(path)
    assert _changelog.verify(str(path))[0]
    assert (record["kind"], record["version"], record["environment"], record["outcome"]) == \
        ("deploy", "2.0.0", "lab", "failed")
    assert record["application"] is None  # a template is not rendered, and not copied
    assert record["release_id"] == SUMMARY["release_id"] and record["rolled_back"] is True
    assert record["actor"]["awx"] == {"job_id": "99", "launched_by": "bob"}
    assert record["change"] == {"change_id": "CHG-7"}
    assert record["hosts"]["app01"]["outcome"] == "deployed"
    assert (record["hosts"]["app02"]["from"], record["hosts"]["app02"]["to"]) == ("1.0.0", "1.0.0")
    assert [p["name"] for p in record["hosts"]["app01"]["phases"]] == ["lock", "stage", "drain", "switch", "verify"]
    phases = [(p["name"], p["failed"]) for p in record["hosts"]["app02"]["phases"]]
    assert phases == [("lock", False), ("stage", False), ("drain", False), ("switch", False), ("verify", True),
                      ("revert", False)]
    assert record["failures"] == [{"host": "app02", "task": "Switch | Gate the host", "msg": "answered 500"}]
    assert SECRET not in path.read_text()
    assert any("recorded as record 1" in line and "report" in line and stderr for line, stderr in display.lines)
    assert "deploy 2.0.0 to lab: failed" in (path.parent / "reports" / "latest.html").read_text()


def test_unreachable_hosts_and_skipped_tasks(changelog):
    plugin, _display, path = changelog
    run_task(plugin, LOCK, ["app01", "app02"], unreachable=["app02"])
    plugin.v2_runner_on_skipped(result("app01", GATE, {"skipped": True}))
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}, "app02": {"unreachable": 1}}))
    record = only_record(path)
    assert record["hosts"]["app02"]["outcome"] == "unreachable" and record["outcome"] == "failed"
    assert record["failures"][0]["msg"] == "unreachable: ssh: connect refused"
    assert [p["name"] for p in record["hosts"]["app01"]["phases"]] == ["lock"]
    assert record["kind"] == "deploy"  # from the playbook's name when no summary was published


def test_no_log_results_loop_items_and_tasks_are_censored(changelog):
    plugin, _display, path = changelog
    plugin.v2_runner_on_failed(result("app01", DEBUG, {"failed": True, "msg": "bad " + SECRET, "_ansible_no_log": True}))
    secret_task = Task("Write the env file", "ansible.builtin.template", no_log=True, role="conveyor.deploy.environment")
    plugin.v2_runner_on_failed(result("app02", secret_task, {"failed": True, "msg": SECRET}))
    looped = {"failed": True, "invocation": {"module_args": {"x": SECRET}},
              "results": [{"failed": True, "_ansible_no_log": True, "msg": SECRET, "item": SECRET}]}
    plugin.v2_runner_on_failed(result("app01", STAGE, looped))
    plugin.v2_playbook_on_stats(stats({"app01": {"failures": 2}, "app02": {"failures": 1}}))
    text = path.read_text()
    assert SECRET not in text
    assert [f["msg"] for f in only_record(path)["failures"]] == [
        "the output has been hidden due to the fact that 'no_log: true' was specified for this result"] * 3


def test_runs_that_do_not_use_the_collection_are_not_recorded(changelog):
    plugin, _display, path = changelog
    run_task(plugin, DEBUG, ["app01"])
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}}))
    assert not path.exists()


def test_the_checklist_approval_and_window_come_from_the_preflight_summary(changelog):
    plugin, _display, path = changelog
    run_task(plugin, Task("Checklist", "ansible.builtin.assert", role="conveyor.deploy.preflight"), ["app01"])
    preflight = {"change": {"change_id": "CHG-8", "approver": "carol", "override_reason": ""},
                 "checks": [{"host": "app01", "check": "disk", "passed": True}], "window": {"open": True}}
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}}, {"conveyor_preflight": preflight}))
    record = only_record(path)
    assert record["change"] == {"change_id": "CHG-8", "approver": "carol"}
    assert record["checklist"] == preflight["checks"] and record["window"] == {"open": True}
    assert record["hosts"]["app01"]["phases"][0]["name"] == "checklist"


def test_an_unwritable_log_warns_and_the_run_goes_on(load_callback, tmp_path):
    (tmp_path / "ro").write_text("a file where the directory should be")
    plugin, display = load_callback("conveyor.deploy.changelog", path=str(tmp_path / "ro" / "log.jsonl"))
    plugin.v2_playbook_on_start(Playbook("deploy.yml"))
    assert "will not be recorded" in display.warnings[0]
    plugin.v2_playbook_on_play_start(Play())
    run_task(plugin, LOCK, ["app01"])
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}}))
    assert not display.lines


def test_an_unwritable_required_log_stops_the_run_before_it_starts(load_callback, tmp_path):
    (tmp_path / "ro").write_text("x")
    plugin, display = load_callback("conveyor.deploy.changelog", path=str(tmp_path / "ro" / "log.jsonl"),
                                    required=True)
    with pytest.raises(SystemExit) as stop:
        plugin.v2_playbook_on_start(Playbook("deploy.yml"))
    assert stop.value.code == 1
    assert "required" in display.errors[0] and "Nothing was changed" in display.errors[0]


@pytest.mark.parametrize("required", [True, False])
def test_a_log_whose_last_line_is_garbage_names_the_line_and_a_required_log_refuses_the_run(load_callback, tmp_path,
                                                                                            signals, required):
    path = tmp_path / "log.jsonl"
    _changelog.ChangeLogFile(str(path)).append({"run_id": "r1", "kind": "deploy"})
    with open(path, "a") as handle:
        handle.write("garbage\n")
    plugin, display = load_callback("conveyor.deploy.changelog", path=str(path), required=required)
    if required:
        with pytest.raises(SystemExit):
            plugin.v2_playbook_on_start(Playbook("deploy.yml"))
        assert "line 2 of %s, the last one, is not a sealed record" % path in display.errors[0]
        assert "Nothing was changed" in display.errors[0]
    else:
        plugin.v2_playbook_on_start(Playbook("deploy.yml"))
        assert "line 2 of" in display.warnings[0] and "will not be recorded" in display.warnings[0]


def test_check_mode_runs_are_recorded_as_previews(changelog, monkeypatch):
    plugin, _display, path = changelog
    plugin.recorder.check_mode = True
    run_task(plugin, LOCK, ["app01"])
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}}))
    record = only_record(path)
    assert record["check_mode"] is True and record["hosts"]["app01"]["outcome"] == "previewed"
    json.dumps(record)


def test_a_run_refused_by_the_checklist_records_every_host_as_refused(changelog):
    plugin, _display, path = changelog
    run_task(plugin, Task("Lock | check", "conveyor.deploy.deploy_lock", role="conveyor.deploy.preflight"),
             ["app01", "app02"])
    preflight = {"passed": False, "change": {}, "checks": [{"host": "all hosts", "check": "window", "passed": False}]}
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 3, "failures": 1}, "app02": {"ok": 3}},
                                      {"conveyor_preflight": preflight}))
    record = only_record(path)
    assert record["outcome"] == "failed"
    assert {name: host["outcome"] for name, host in record["hosts"].items()} == {"app01": "refused", "app02": "refused"}


CUTOVER = Task("Cutover | Switch, restart and gate the host", "conveyor.deploy.cutover", {})


def test_a_cutover_result_becomes_the_hosts_switch_restart_verify_and_revert_phases(changelog):
    plugin, _display, path = changelog
    moved = {"changed": True, "outcome": "moved", "phases": [
        {"name": "switch", "start_s": 0.0, "end_s": 0.1, "failed": False},
        {"name": "restart", "start_s": 0.1, "end_s": 0.3, "failed": False},
        {"name": "verify", "start_s": 0.3, "end_s": 1.5, "failed": False}]}
    reverted = {"changed": True, "outcome": "reverted", "phases": moved["phases"][:2] + [
        {"name": "verify", "start_s": 0.3, "end_s": 2.0, "failed": True},
        {"name": "revert", "start_s": 2.0, "end_s": 2.1, "failed": False},
        {"name": "revert", "start_s": 2.1, "end_s": 2.3, "failed": False},
        {"name": "revert", "start_s": 2.3, "end_s": 3.0, "failed": False}]}
    run_task(plugin, DRAIN, ["app01"], {"changed": True, "changed_servers": ["app01", "app02"]})
    run_task(plugin, CUTOVER, ["app01"], moved)
    run_task(plugin, CUTOVER, ["app02"], reverted, failed=["app02"])
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 2}, "app02": {"ok": 1}}, {"conveyor_deploy": SUMMARY}))
    record = only_record(path)
    assert [p["name"] for p in record["hosts"]["app01"]["phases"]] == ["drain", "switch", "restart", "verify"]
    phases = record["hosts"]["app02"]["phases"]
    assert [(p["name"], p["failed"]) for p in phases] == [("drain", False), ("switch", False), ("restart", False),
                                                          ("verify", True), ("revert", False)]
    revert = phases[-1]
    assert revert["end"] > revert["start"] > phases[-2]["start"]
    assert record["failures"] == [{"host": "app02", "task": CUTOVER.name, "msg": "answered 500"}]


def test_a_drain_made_ahead_is_recorded_at_the_time_the_load_balancer_was_called(changelog):
    plugin, _display, path = changelog
    batch_drain = Task("Cutover | Drain the batch from the load balancer", "conveyor.deploy.rollout_batch",
                       {"step": "drain"})
    # 2026-12-01T10:00:00Z and 0.4 s later: the previous batch's task drained these hosts.
    window = [1796119200.0, 1796119200.4]
    run_task(plugin, batch_drain, ["app01"], {"changed": False, "moving": ["app01", "app02"], "lb_window": window})
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}, "app02": {"ok": 0}}, {"conveyor_deploy": SUMMARY}))
    record = only_record(path)
    for host in ("app01", "app02"):
        drain = record["hosts"][host]["phases"][0]
        assert (drain["name"], drain["start"], drain["end"]) == ("drain", "2026-12-01T10:00:00.000Z",
                                                                 "2026-12-01T10:00:00.400Z")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_records_the_run_as_interrupted_then_ends_it_as_ansible_would(load_callback, tmp_path,
                                                                               signals, signum):
    seen = []
    # Ansible's own handler (the task queue manager's), installed before the playbook starts.
    signal.signal(signum, lambda number, frame: seen.append(number))
    plugin, dummy_display = load_callback("conveyor.deploy.changelog", path=str(tmp_path / "log.jsonl"),
                                          report_dir=str(tmp_path / "reports"))
    plugin.v2_playbook_on_start(Playbook("/somewhere/playbooks/deploy.yml"))
    plugin.v2_playbook_on_play_start(Play(extra_vars={"app_version": "2.0.0"}, host_vars={"env_name": "lab"}))
    run_task(plugin, LOCK, ["app01", "app02"])
    run_task(plugin, DRAIN, ["app01"], {"changed": True, "changed_servers": ["app01"]})
    os.kill(os.getpid(), signum)
    assert seen == [signum]
    record = only_record(tmp_path / "log.jsonl")
    assert (record["outcome"], record["interrupted_by"]) == ("interrupted", signal.Signals(signum).name)
    assert {host: entry["outcome"] for host, entry in record["hosts"].items()} == \
        {"app01": "interrupted", "app02": "interrupted"}
    assert [p["name"] for p in record["hosts"]["app01"]["phases"]] == ["lock", "drain"]
    # A second signal (Ctrl-C twice) and a late stats call add nothing.
    os.kill(os.getpid(), signum)
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 2}}, {}))
    assert len(_changelog.read_records(str(tmp_path / "log.jsonl"))) == 1


def test_a_run_that_took_over_a_dead_runs_locks_records_that_run_as_interrupted_once(changelog, load_callback):
    plugin, display, path = changelog
    takeover = {"run_id": "20261203T100000Z-deadbeef", "reason": "its ansible-playbook process 7 on controller c is gone",
                "owner": "alice@c", "started_at": "2026-12-03T10:00:01.000000Z", "hosts": ["app01", "app02"]}
    summary = dict(SUMMARY, failed=False, takeovers=[takeover])
    run_task(plugin, LOCK, ["app01", "app02"])
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 5}, "app02": {"ok": 4}}, {"conveyor_deploy": summary}))
    dead, mine = _changelog.read_records(str(path))
    assert _changelog.verify(str(path))[0]
    assert (dead["run_id"], dead["outcome"], dead["found_by"]) == (takeover["run_id"], "interrupted", mine["run_id"])
    assert dead["actor"] == {"user": "alice", "controller": "c"} and dead["started_at"] == takeover["started_at"]
    assert set(dead["hosts"]) == {"app01", "app02"} and dead["reason"] == takeover["reason"]
    assert mine["took_over"] == [takeover["run_id"]] and mine["outcome"] == "succeeded"
    history = _changelog.render_history([dead, mine])
    assert "- Took over the locks of: %s" % takeover["run_id"] in history
    assert "INTERRUPTED" in history and "alice@c" in history
    # Recorded already (the run caught its signal, or a run before this one): not twice.
    again, dummy_display = load_callback("conveyor.deploy.changelog", path=str(path))
    again.v2_playbook_on_start(Playbook("/somewhere/playbooks/deploy.yml"))
    again.v2_playbook_on_play_start(Play(extra_vars={"app_version": "2.0.0"}, host_vars={"env_name": "lab"}))
    run_task(again, LOCK, ["app01"])
    again.v2_playbook_on_stats(stats({"app01": {"ok": 5}}, {"conveyor_deploy": summary}))
    ids = [r["run_id"] for r in _changelog.read_records(str(path))]
    assert len(ids) == 3 and ids.count(takeover["run_id"]) == 1


@pytest.mark.parametrize("extra, outcome", [
    ({"paused": {"after_batch": 1, "batches": 3, "at": "t", "until": "u"}}, "paused"),
    ({"abort": {"by": "bob", "reason": "slow", "at": "t"}, "resumed": {"mode": "abort", "after_batch": 1}}, "aborted"),
])
def test_a_pause_and_an_abort_are_recorded_as_such_with_what_they_continue(changelog, extra, outcome):
    plugin, _display, path = changelog
    run_task(plugin, Task("Lock", "conveyor.deploy.deploy_lock"), ["app01", "app02"])
    # An abort leaves the hosts after the pause not_started, and a pause leaves them waiting: neither fails the run.
    left = "waiting" if outcome == "paused" else "not_started"
    summary = dict({"failed": False, "run_id": "RUN-1", "release_id": "R2", "kind": "deploy",
                    "hosts": [{"host": "app01", "outcome": "deployed" if outcome == "paused" else "rolled_back"},
                              {"host": "app02", "outcome": left}]}, **extra)
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}, "app02": {"ok": 1}}, {"conveyor_deploy": summary}))
    record = only_record(path)
    assert record["outcome"] == outcome and record["hosts"]["app02"]["outcome"] == left
    for key in extra:
        assert record[key] == extra[key]
