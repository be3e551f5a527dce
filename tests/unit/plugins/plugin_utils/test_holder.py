"""Whether a lock's holder is provably dead, from a fake /proc."""
import datetime

import pytest

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _holder

BOOT = "6ea50fdf-5822-401c-a0c4-73d0702a7da9"


def stat_line(pid, start, name="ansible-playbook"):
    # Field 22 is the start time; the command name may hold spaces and parentheses.
    rest = ["S"] + ["0"] * 18 + [str(start)] + ["0"] * 10
    return "%d (%s) %s\n" % (pid, name, " ".join(rest))


@pytest.fixture
def proc(tmp_path):
    (tmp_path / "sys/kernel/random").mkdir(parents=True)
    (tmp_path / "sys/kernel/random/boot_id").write_text(BOOT + "\n")
    for pid, start, name in ((100, 5000, "ansible-playbook"), (200, 9000, "python3 (x) y")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(stat_line(pid, start, name))
    return str(tmp_path)


def test_process_start_reads_field_22_past_a_name_with_spaces(proc):
    assert _holder.process_start(100, proc) == "5000"
    assert _holder.process_start(200, proc) == "9000"
    assert _holder.process_start(300, proc) == ""


def test_identity_names_host_boot_pid_and_its_start(proc):
    assert _holder.identity(100, proc, "ctl") == {"host": "ctl", "boot_id": BOOT, "pid": 100, "pid_start": "5000"}


def holder(**changes):
    found = {"host": "ctl", "boot_id": BOOT, "pid": 300, "pid_start": "4000"}
    found.update(changes)
    return {"run_id": "dead", "controller": found}


@pytest.mark.parametrize("lock, dead", [
    pytest.param(holder(), "its ansible-playbook process 300 on controller ctl is gone", id="process-gone"),
    pytest.param(holder(pid=200), "its ansible-playbook process 200 on controller ctl is gone "
                 "(that pid is another process now)", id="pid-reused"),
    pytest.param(holder(pid=200, pid_start="9000"), None, id="still-running"),
    pytest.param(holder(pid=100, pid_start="5000"), None, id="this-run"),
    pytest.param(holder(host="other"), None, id="another-controller"),
    pytest.param(holder(boot_id="another-boot"), None, id="another-boot"),
    pytest.param(holder(pid="x"), None, id="unreadable-pid"),
    pytest.param({"run_id": "old", "pid": 300, "owner": "root@ctl"}, None, id="lock-without-controller"),
    pytest.param(None, None, id="no-lock"),
])
def test_dead_reason_needs_proof(proc, lock, dead):
    me = _holder.identity(100, proc, "ctl")
    assert _holder.dead_reason(lock, me, proc) == dead


@pytest.mark.parametrize("alive, dead", [(False, "its ansible-playbook process 300 on controller ctl is gone"),
                                         (True, None)])
def test_without_a_boot_id_or_start_time_only_a_missing_process_proves_it(alive, dead):
    me = {"host": "ctl", "boot_id": "", "pid": 100, "pid_start": ""}
    lock = holder(boot_id="", pid_start="")
    assert _holder.dead_reason(lock, me, alive=lambda pid: alive) == dead


def process(tmp_path, pid, argv, run_id):
    (tmp_path / str(pid)).mkdir()
    (tmp_path / str(pid) / "environ").write_bytes(b"PATH=/bin\0CONVEYOR_RUN_ID=%s\0HOME=/root\0" % run_id)
    (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(argv) + b"\0")


def test_a_run_is_alive_while_a_worker_still_works_on_a_host(proc, tmp_path):
    process(tmp_path, 400, [b"/usr/bin/python3", b"/venv/bin/ansible-playbook", b"deploy.yml"], b"dead")
    process(tmp_path, 401, [b"ssh: /root/.ansible/cp/0a1b [mux]"], b"dead")
    process(tmp_path, 402, [b"/usr/bin/python3", b"/venv/bin/ansible-playbook"], b"dead-not")
    assert _holder.run_processes("dead", proc) == [400, 401]
    me = _holder.identity(100, proc, "ctl")
    # A worker blocked on its result pipe, and a ControlPersist master, do not keep it alive.
    assert _holder.working("dead", proc) == []
    assert _holder.dead_reason(holder(), me, proc).endswith("is gone")
    process(tmp_path, 403, [b"/usr/bin/ssh", b"-o", b"ControlMaster=auto", b"app01", b"/bin/sh -c python3"], b"dead")
    process(tmp_path, 404, [b"/bin/sh", b"-c", b"python3 /root/.ansible/tmp/x/AnsiballZ_cutover.py"], b"dead")
    assert _holder.working("dead", proc) == [403, 404]
    assert _holder.dead_reason(holder(), me, proc) is None


RENEWED = {"run_id": "20261206T220000Z-aa", "ttl": 600, "renewed": {"host": "lb01", "backend": "shop"},
           "controller": {"host": "awx-job-17", "boot_id": "other", "pid": 7, "pid_start": "1"}}


def beats(silent_s):
    last = datetime.datetime(2026, 12, 6, 22, 0, 0, tzinfo=datetime.timezone.utc)
    read = last + datetime.timedelta(seconds=silent_s)
    return {"host": "lb01", "read_at": read.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "beats": {RENEWED["run_id"]: "2026-12-06T22:00:00.000000Z"}}


@pytest.mark.parametrize("lock, heartbeat, dead", [
    pytest.param(RENEWED, beats(599), False, id="silent-less-than-its-ttl"),
    pytest.param(RENEWED, beats(600), True, id="silent-for-its-ttl"),
    pytest.param(RENEWED, None, False, id="no-heartbeats-read"),
    pytest.param(dict(RENEWED, run_id="another"), beats(5000), False, id="its-run-never-beat-here"),
    pytest.param({k: v for k, v in RENEWED.items() if k != "renewed"}, beats(5000), False, id="a-lock-not-renewed"),
    pytest.param(dict(RENEWED, ttl="x"), beats(5000), False, id="unreadable-ttl"),
])
def test_a_run_on_another_controller_is_dead_once_its_heartbeats_stop_for_its_ttl(proc, lock, heartbeat, dead):
    me = _holder.identity(100, proc, "ctl")
    why = _holder.dead_reason(lock, me, proc, alive=lambda pid: True, heartbeat=heartbeat)
    assert bool(why) is dead, why
    if dead:
        assert why == ("it has not renewed its lock for 600 s, longer than its ttl of 600 s (its last heartbeat on "
                       "the load balancer was at 2026-12-06T22:00:00.000000Z)")
