"""The controller interrupted or killed in the middle of a deploy (#17, faults 3 and 4).

Ctrl-C (SIGINT) and a cancelled job (SIGTERM) are recorded in the change log as interrupted; a SIGKILL cannot be
caught, so the next run that takes over the dead run's locks records it. Either way the next deploy needs no hand
repair: it takes the locks of the dead run over (same controller, process gone), puts those hosts through their
batch again and leaves no host drained and no lock behind.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from .conftest import ENV, INVENTORY, ROOT, app_hosts, lb_servers, live_versions, locks, on_host, playbook, serves

sys.path.insert(0, os.path.join(ROOT, "collections"))  # the committed link to this checkout
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _holder  # noqa: E402 pylint: disable=C0413

CHANGELOG = os.path.join(ROOT, "build", "conveyor", "changelog.jsonl")
# Twenty seeded kills by default, as the issue asks; CONVEYOR_KILL_TRIALS=n for more, CONVEYOR_KILL_SEED to vary.
TRIALS = int(os.environ.get("CONVEYOR_KILL_TRIALS", "20"))
SEED = int(os.environ.get("CONVEYOR_KILL_SEED", "1703"))


class Deploy(object):
    """ansible-playbook deploy.yml in a process group of its own, its output gathered as it comes."""

    def __init__(self, version):
        self.proc = subprocess.Popen(["ansible-playbook", "-i", INVENTORY, "deploy.yml", "-e", "app_version=" + version],
                                     cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def until(self, text, timeout=120):
        """Wait for a line holding ``text``; False when the run ended (or the time passed) first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return True
            if self.proc.poll() is not None and not self.reader.is_alive():
                return False
            time.sleep(0.05)
        return False

    def running_after(self, seconds):
        """Whether the run is still going ``seconds`` from now."""
        try:
            self.proc.wait(timeout=seconds)
            return False
        except subprocess.TimeoutExpired:
            return True

    def send(self, signum, group=False):
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)

    def finish(self, timeout=300):
        rc = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return rc, "".join(self.lines)


def wait_for_workers(run_ids, timeout=120):
    """Until no worker of the killed runs still works on a host: Ansible starts each worker in a session of its
    own, so one outlives the kill of its playbook's process group while it finishes its module."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_holder.working(run_id) for run_id in run_ids):
            return
        time.sleep(0.2)
    raise AssertionError("a killed deploy's workers still work after %d s" % timeout)


def records():
    with open(CHANGELOG) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def other_version():
    return "1.1.0" if "1.1.0" not in set(live_versions().values()) else "1.0.0"


def assert_every_host_serves_a_complete_release(settle=20):
    """Each current is a whole release and the app answers. A kill can land while a host's module restarts the
    service; that module runs on by itself, so the host gets ``settle`` seconds to answer again."""
    for host in app_hosts():
        live = on_host(host, "test -f /opt/sample/current/.conveyor-release.json && cat /opt/sample/current/VERSION")
        assert live, "%s: current does not point at a complete release" % host
        deadline = time.monotonic() + settle
        while serves(host) != "200" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert serves(host) == "200", "%s does not serve (current is %s)" % (host, live)


def assert_consistent(version):
    assert locks() == {}
    assert lb_servers() == {host: ("2", "0") for host in app_hosts()}
    assert set(live_versions().values()) == {version}
    assert_every_host_serves_a_complete_release()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_deploy_is_recorded_and_the_next_run_repairs_what_it_left(signum):
    target = other_version()
    deploy = Deploy(target)
    # The first batch is out of the load balancer and being switched.
    assert deploy.until("Cutover | Switch, restart and gate"), "".join(deploy.lines)[-3000:]
    time.sleep(0.3)
    deploy.send(signum)
    rc, output = deploy.finish()
    assert rc != 0, output[-3000:]
    record = records()[-1]
    assert (record["outcome"], record["interrupted_by"]) == ("interrupted", signal.Signals(signum).name), output[-3000:]
    assert "deploy interrupted recorded as record %d" % record["seq"] in output
    held = locks()
    assert held and {json.loads(text)["run_id"] for text in held.values()} == {record["run_id"]}
    assert any(admin != "0" for dummy, admin in lb_servers().values()), "the interrupt left no host drained"

    result = playbook("deploy.yml", "-e", "app_version=" + target)
    assert result.rc == 0, result.output[-3000:]
    assert "Took over the deploy lock of run %s" % record["run_id"] in result.output, result.output[-3000:]
    assert_consistent(target)
    history = on_host(app_hosts()[0], "grep lock_takeover /opt/sample/.conveyor/history.jsonl | tail -1")
    assert record["run_id"] in history and "is gone" in history
    # It was recorded when it was interrupted: the run that repaired it does not record it again.
    assert [r["run_id"] for r in records()].count(record["run_id"]) == 1


def test_a_controller_killed_at_random_points_leaves_every_host_serving_and_the_next_deploy_needs_no_hand():
    rng = random.Random(SEED)
    killed, killed_ids = [], set()
    for trial in range(TRIALS):
        target = ("1.0.0", "1.1.0")[trial % 2]
        delay = round(rng.uniform(0.5, 13.0), 2)
        deploy = Deploy(target)
        if deploy.running_after(delay):
            deploy.send(signal.SIGKILL, group=True)
            deploy.finish()
            killed.append((trial, delay))
            # Ansible's workers run in sessions of their own: the one moving a host finishes its module first.
            held = {json.loads(text)["run_id"] for text in locks().values()}
            killed_ids.update((run_id, trial) for run_id in held)
            wait_for_workers(held)
        else:
            rc, output = deploy.finish()
            # Not killed: it ran to its end, after whatever the previous kill left, with no hand repair.
            assert rc == 0, "trial %d (%s s): %s" % (trial, delay, output[-3000:])
        assert_every_host_serves_a_complete_release()
    print("killed %d of %d runs at %s" % (len(killed), TRIALS, killed))
    assert killed
    left = {json.loads(text)["run_id"] for text in locks().values()}
    result = playbook("deploy.yml", "-e", "app_version=2.0.0")
    assert result.rc == 0, result.output[-3000:]
    assert_consistent("2.0.0")
    found = {r["run_id"]: r for r in records()}
    for run_id in left:
        assert found[run_id]["outcome"] == "interrupted" and found[run_id]["found_by"] == records()[-1]["run_id"]
    # Workers of killed runs that finished their task block for ever on a pipe nobody reads: end them.
    for run_id in left | {run_id for run_id, dummy in killed_ids}:
        for pid in _holder.run_processes(run_id):
            os.kill(pid, signal.SIGKILL)
    verify = subprocess.run([os.path.join(ROOT, ".venv", "bin", "python"), os.path.join(ROOT, "tools",
                                                                                        "conveyor-changelog"),
                             "verify", CHANGELOG], capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize("same", [True, False], ids=["same-version", "different-versions"])
def test_two_deploys_started_in_the_same_second_never_both_abort_and_never_interleave(same):
    """Fault 8: each run locks some hosts first. The younger run gives up at once on the older's lock, naming it,
    and releases its own as it aborts; the older waits for those and proceeds. When the younger got every lock
    first, it proceeds and the older waits for it, then runs after it: one after the other, never together."""
    first = other_version()
    second = first if same else ("2.0.0" if first != "2.0.0" else "1.0.0")
    runs = [Deploy(first), Deploy(second)]
    ended = [run.finish() for run in runs]
    outputs = "\n\n".join(output[-2500:] for dummy, output in ended)
    assert any(rc == 0 for rc, dummy in ended), outputs
    for rc, output in ended:
        assert "Traceback" not in output
        if rc != 0:
            assert "held by run" in output, output[-3000:]
    assert_consistent(records()[-1]["version"] if all(rc == 0 for rc, dummy in ended)
                      else next(version for (rc, dummy), version in zip(ended, (first, second)) if rc == 0))


DEAD_RUN = "20261206T000000Z-0badcafe"
BEATS = "/var/lib/conveyor/heartbeats/sample"


def plant_a_lock_of_another_controller(host):
    """The lock an AWX job leaves when its pod dies with it: another controller, 20 minutes old, 60 s to live,
    renewed by heartbeats, and an ``expires_at`` (for readers that cannot see them) an hour away."""
    now = time.time()
    lock = {"run_id": DEAD_RUN, "owner": "carol@awx", "pid": 41, "ttl": 60,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now - 1200)),
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(now + 3600)),
            "renewed": {"host": "lb", "backend": "sample"},
            "controller": {"host": "automation-job-17-x2k9", "boot_id": "x", "pid": 41, "pid_start": "7"}}
    assert on_host(host, "mkdir -p /opt/sample/.conveyor && echo '%s' > /opt/sample/.conveyor/deploy.lock && echo ok"
                   % json.dumps(lock)) == "ok"


def beat(seconds_ago):
    """The dead run's last heartbeat on the load balancer, ``seconds_ago`` by the load balancer's clock."""
    assert subprocess.run(
        ["docker", "exec", "conveyor-lb", "python3", "-c",
         "import datetime, json, os; os.makedirs(%r, exist_ok=True); at = datetime.datetime.now(datetime.timezone.utc)"
         " - datetime.timedelta(seconds=%d); json.dump({'run_id': %r, 'at': at.strftime('%%Y-%%m-%%dT%%H:%%M:%%S.%%fZ')},"
         " open(%r, 'w'))" % (BEATS, seconds_ago, DEAD_RUN, BEATS + "/" + DEAD_RUN)], check=False).returncode == 0


def test_a_run_of_another_controller_holds_its_locks_while_it_beats_and_loses_them_once_silent():
    """Fault 3: a run whose heartbeat stopped is taken over from any controller, its locks' time to live being
    renewed per batch; one that still beats is not, though its lock was taken long before its time to live."""
    version = other_version()
    plant_a_lock_of_another_controller("app02")
    try:
        beat(5)
        before = {host: on_host(host, "ls /opt/sample/releases") for host in app_hosts()}
        refused = playbook("deploy.yml", "-e", "app_version=" + version)
        assert refused.rc != 0
        assert "held by run %s by carol@awx" % DEAD_RUN in refused.output
        assert "nothing was changed" in refused.output
        assert {host: on_host(host, "ls /opt/sample/releases") for host in app_hosts()} == before
        assert json.loads(locks()["app02"])["run_id"] == DEAD_RUN

        beat(90)
        result = playbook("deploy.yml", "-e", "app_version=" + version)
        assert result.rc == 0, result.output[-3000:]
        assert "Took over the deploy lock of run %s on app02" % DEAD_RUN in result.output
        assert "it has not renewed its lock for 9" in result.output
        history = on_host("app02", "grep lock_takeover /opt/sample/.conveyor/history.jsonl | tail -1")
        assert DEAD_RUN in history and "longer than its ttl of 60 s" in history
        assert locks() == {}
        assert set(live_versions().values()) == {version}
        # This run beat on the load balancer too, at its plan and at every batch.
        assert on_host("lb", "ls %s | wc -l" % BEATS) not in ("", "0", "1")
    finally:
        on_host("app02", "rm -f /opt/sample/.conveyor/deploy.lock")
        on_host("lb", "rm -f %s/%s" % (BEATS, DEAD_RUN))
