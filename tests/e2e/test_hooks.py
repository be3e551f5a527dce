"""Hooks on the lab (#15): commands at the rollout's named points, on the hosts as the app user with the service's
environment and the run named in theirs, on the controller after each batch and at the end; their output censored
in the hosts' history; a failing one after the switch sends its host back before it rejoins; --check runs none; a
rollback runs only its end-of-run hooks.

Host hooks append a line to /tmp/conveyor-hooks.log on their host; controller hooks to files under pytest's tmp_path.
"""
import json
import os

import pytest

from .conftest import Traffic, app_hosts, lb_servers, live_versions, locks, on_host, playbook

HOST_LOG = "/tmp/conveyor-hooks.log"
LINE = 'echo "$CONVEYOR_HOOK $(id -un) $PWD $CONVEYOR_HOST $CONVEYOR_KIND b=$CONVEYOR_BATCH p=$CONVEYOR_PREVIOUS_VERSION" >> %s'


def hooks(tmp_path, **more):
    """Every point: the host points log where and as whom they ran; the controller points append to files."""
    out = {point: [LINE % HOST_LOG] for point in ("before_switch", "after_switch", "before_gate")}
    # after_stage also prints the app's secret key (from /etc/sample/secrets.env): the history must not show it.
    out["after_stage"] = [LINE % HOST_LOG, 'echo "staged with key $APP_SECRET_KEY"']
    for point in ("after_batch", "at_end", "on_failure", "on_rollback"):
        out[point] = ['echo "$CONVEYOR_KIND $CONVEYOR_BATCH $CONVEYOR_OUTCOME" >> %s' % (tmp_path / point)]
    out.update(more)
    return ["-e", json.dumps({"app_hooks": out})]


def host_log(host):
    return [line.split() for line in on_host(host, "cat %s 2>/dev/null" % HOST_LOG).splitlines()]


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture(scope="module", autouse=True)
def on_2_0_0():
    result = playbook("deploy.yml", "-e", "app_version=2.0.0")
    assert result.rc == 0, result.output[-3000:]
    yield


@pytest.fixture(autouse=True)
def fresh_logs():
    for host in app_hosts():
        on_host(host, "rm -f %s" % HOST_LOG)
    yield


def test_check_lists_the_hooks_that_would_run_and_runs_none(tmp_path):
    result = playbook("deploy.yml", "-e", "app_version=1.1.0", "--check", "--diff", *hooks(tmp_path))
    assert result.rc == 0, result.output[-3000:]
    assert "Hooks this run would run (--check runs none): after_stage (each host): " in result.output
    assert "after_batch (the controller): echo" in result.output
    assert all(host_log(host) == [] for host in app_hosts())
    assert not any((tmp_path / point).exists() for point in ("after_batch", "at_end", "on_failure", "on_rollback"))
    assert set(live_versions().values()) == {"2.0.0"}


def test_hooks_run_at_their_points_as_the_app_user_with_the_run_in_their_environment(tmp_path):
    secret = on_host("app01", "sed -n 's/^APP_SECRET_KEY=//p' /etc/sample/secrets.env").strip("'\"")
    assert len(secret) >= 4
    result = playbook("deploy.yml", "-e", "app_version=1.1.0", *hooks(tmp_path))
    assert result.rc == 0, result.output[-3000:]
    assert set(live_versions().values()) == {"1.1.0"}
    batches = {}
    for host in app_hosts():
        current = on_host(host, "readlink -f /opt/sample/current")
        ran = host_log(host)
        assert [line[0] for line in ran] == ["after_stage", "before_switch", "after_switch", "before_gate"], ran
        assert {(line[1], line[2], line[3], line[4], line[6]) for line in ran} == {
            ("sample", current, host, "deploy", "p=2.0.0")}, ran
        batches[host] = ran[-1][5]
        history = on_host(host, "grep '\"action\": \"hook\"' /opt/sample/.conveyor/history.jsonl")
        assert "staged with key ********" in history and secret not in history
    # Each host names the batch it moved in: 1, 2, 3 (batches of 1, 25% and the rest).
    assert sorted(set(batches.values())) == ["b=1", "b=2", "b=3"], batches
    assert lines(tmp_path / "after_batch") == ["deploy 1 ", "deploy 2 ", "deploy 3 "]
    assert lines(tmp_path / "at_end") == ["deploy  succeeded"]
    assert not (tmp_path / "on_failure").exists() and not (tmp_path / "on_rollback").exists()
    assert secret not in result.output


def test_a_failing_hook_after_the_switch_sends_its_host_back_before_it_rejoins(tmp_path):
    failing = ['[ "$CONVEYOR_HOST" != app02 ] || { echo "cache warm-up failed" >&2; exit 4; }']
    with Traffic() as traffic:
        result = playbook("deploy.yml", "-e", "app_version=1.0.0", *hooks(tmp_path, before_gate=failing),
                          "-e", json.dumps({"env_contacts": {"on_call": "lab on-call +41 44 555 01 23"}}))
    assert result.rc != 0
    assert traffic.summary["failed"] == 0, traffic.summary
    assert "before_gate hook '[ \"$CONVEYOR_HOST\" != app02 ]" in result.output
    assert "exited 4 after" in result.output and "cache warm-up failed" in result.output
    # The verdict names whom to call (env_contacts).
    assert "Contacts: on call lab on-call +41 44 555 01 23." in result.output
    # The failed batch rolls the fleet back (the default failure policy): every host ends on 1.1.0, serving.
    assert set(live_versions().values()) == {"1.1.0"}
    assert all(admin == "0" for dummy, admin in lb_servers().values()), lb_servers()
    assert locks() == {}
    assert [line.split()[-1] for line in lines(tmp_path / "on_failure")] == ["failed"]
    assert [line.split()[-1] for line in lines(tmp_path / "on_rollback")] == ["failed"]
    assert [line.split()[-1] for line in lines(tmp_path / "at_end")] == ["failed"]
    history = on_host("app02", "grep '\"point\": \"before_gate\"' /opt/sample/.conveyor/history.jsonl | tail -1")
    assert '"result": "failed"' in history and "cache warm-up failed" in history


def test_a_rollback_runs_its_end_of_run_hooks_and_none_of_the_host_hooks(tmp_path):
    result = playbook("playbooks/rollback.yml", *hooks(tmp_path))
    assert result.rc == 0, result.output[-3000:]
    assert set(live_versions().values()) == {"2.0.0"}
    assert all(host_log(host) == [] for host in app_hosts())
    assert lines(tmp_path / "on_rollback") == ["rollback  succeeded"]
    assert lines(tmp_path / "at_end") == ["rollback  succeeded"]
    assert not (tmp_path / "after_batch").exists() and not (tmp_path / "on_failure").exists()
    assert os.path.getsize(tmp_path / "on_rollback") > 0


TASK_LOG = "/tmp/conveyor-task-hooks.log"
LINE_TASK = """
- name: Note the task hook on %s
  ansible.builtin.shell: >-
    echo "{{ rolling_hook_point }} {{ rolling_run.kind }} {{ rolling_run.version }}
    {{ rolling_report.run_failed | default('-') }}" >> """ + TASK_LOG + """
  changed_when: true
"""
# after_batch: once per batch, on each of its hosts through delegate_to; the end of the run: on every host.
BATCH_FILE = LINE_TASK % "each host of the batch" + """  delegate_to: "{{ item }}"
  loop: "{{ rolling_batch_hosts }}"
"""
END_FILE = LINE_TASK % "the host"


def test_task_file_hooks_run_on_the_hosts_with_the_run_in_scope_and_a_missing_one_is_refused(tmp_path):
    for host in app_hosts():
        on_host(host, "rm -f %s" % TASK_LOG)
    (tmp_path / "batch.yml").write_text(BATCH_FILE)
    (tmp_path / "end.yml").write_text(END_FILE)
    files = {"after_batch": str(tmp_path / "batch.yml"), "at_end": str(tmp_path / "end.yml")}
    missing = playbook("deploy.yml", "-e", "app_version=1.1.0",
                       "-e", json.dumps({"app_hook_tasks": dict(files, on_failure="hooks/not-there.yml")}))
    assert missing.rc != 0
    assert "rolling_hook_tasks.on_failure: no task file hooks/not-there.yml (looked in " in missing.output
    assert set(live_versions().values()) == {"2.0.0"} and locks() == {}
    result = playbook("deploy.yml", "-e", "app_version=1.1.0", "-e", json.dumps({"app_hook_tasks": files}))
    assert result.rc == 0, result.output[-3000:]
    assert set(live_versions().values()) == {"1.1.0"}
    for host in app_hosts():
        ran = on_host(host, "cat %s" % TASK_LOG).splitlines()
        assert ran == ["after_batch deploy 1.1.0 -", "at_end deploy 1.1.0 False"], (host, ran)
