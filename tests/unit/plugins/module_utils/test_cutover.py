import pytest

from ansible_collections.conveyor.deploy.plugins.module_utils import _cutover as cut

SETTINGS = dict(success_threshold=3, failure_threshold=3, interval=0, start_period=0, timeout=5, name="/health")


class FakeHost(object):
    """Releases as a dict, a service that serves whatever ``current`` points at, healthy per version."""

    def __init__(self, current="r1", healthy=("1.0.0", "2.0.0"), fail_switch_to=(), fail_restart=False):
        self.current = current
        self.versions = {"r1": "1.0.0", "r2": "2.0.0", "bad": "6.6.6"}
        self.healthy = set(healthy)
        self.fail_switch_to = set(fail_switch_to)
        self.fail_restart = fail_restart
        self.calls = []
        self.marks = {}
        self.now = 0.0

    def clock(self):
        self.now += 0.01
        return self.now

    def activate(self, release_id, force):
        self.calls.append(("activate", release_id, force))
        if release_id in self.fail_switch_to:
            raise cut.StepError("Release %s does not verify" % release_id)
        previous, self.current = self.current, release_id
        return dict(changed=previous != release_id, release={"release_id": release_id}, previous={"release_id": previous},
                    msg="switched current from %s to %s" % (previous, release_id))

    def restart(self):
        self.calls.append(("restart",))
        if self.fail_restart:
            raise cut.StepError("systemctl restart app did not return within 90 s")

    def gate(self, version, release_id):
        assert self.versions[release_id] == version, "the gate is asked for the release that carries the version"
        self.calls.append(("gate", version))

        def probe(expected):
            serving = self.versions.get(self.current)
            if serving not in self.healthy:
                return False, 500, 1.0, "answered 500"
            if serving != expected:
                return False, 200, 1.0, "JSON version is %s, expected %s" % (serving, expected)
            return True, 200, 1.0, None
        return cut.gate(probe, SETTINGS, version, clock=self.clock, sleep=lambda s: None)

    def mark(self, release_id, state, reason):
        self.marks[release_id] = (state, reason)

    def stop(self):
        self.calls.append(("stop",))

    def diagnose(self):
        return dict(state={"ActiveState": "active"}, journal=["boom"], summary="app active (running): boom")


R1 = dict(release_id="r1", version="1.0.0")
R2 = dict(release_id="r2", version="2.0.0")
BAD = dict(release_id="bad", version="6.6.6")


def names(result):
    return [phase["name"] for phase in result["phases"]]


def test_a_healthy_release_moves_the_host_in_switch_restart_verify():
    host = FakeHost()
    result = cut.cutover(host, R2, R1)
    assert result["outcome"] == cut.MOVED and host.current == "r2"
    assert names(result) == ["switch", "restart", "verify"]
    assert result["gate"]["passed"] and not host.marks
    assert all(phase["end_s"] >= phase["start_s"] for phase in result["phases"])


def test_a_release_that_fails_its_gate_goes_back_before_it_returns():
    host = FakeHost()
    result = cut.cutover(host, BAD, R1)
    assert result["outcome"] == cut.REVERTED and host.current == "r1"
    assert ("activate", "r1", True) in host.calls and ("stop",) not in host.calls
    assert host.marks["bad"][0] == "failed" and "answered 500" in host.marks["bad"][1]
    assert "answered 500, 3 times in a row" in result["reason"] and "boom" in result["reason"]
    assert names(result) == ["switch", "restart", "verify", "revert", "revert", "revert"]
    assert [p["failed"] for p in result["phases"]][2] is True
    assert result["revert_gate"]["passed"]


def test_a_first_deployment_that_fails_says_there_was_nothing_to_go_back_to():
    host = FakeHost(current=None)
    result = cut.cutover(host, BAD, None)
    assert result["outcome"] == cut.FAILED and ("stop",) in host.calls
    assert "no previous release to return to" in result["reason"]
    assert "rolled back" not in result["msg"]


def test_when_going_back_fails_too_the_service_is_stopped():
    host = FakeHost(healthy=("2.0.0",))
    result = cut.cutover(host, BAD, R1)
    assert result["outcome"] == cut.FAILED and ("stop",) in host.calls
    assert "going back to 1.0.0 failed too" in result["reason"]


def test_a_release_that_cannot_be_switched_to_leaves_the_host_untouched():
    host = FakeHost(fail_switch_to=("r2",))
    result = cut.cutover(host, R2, R1)
    assert result["outcome"] == cut.REVERTED and host.current == "r1"
    assert ("restart",) not in host.calls and "does not verify" in result["reason"]
    assert host.marks["r2"][0] == "failed"


def test_a_restart_that_hangs_fails_the_gate_and_reverts():
    host = FakeHost(fail_restart=True)
    result = cut.cutover(host, R2, R1)
    assert result["outcome"] in (cut.REVERTED, cut.FAILED)
    assert "did not return within 90 s" in result["reason"]
    assert host.marks["r2"][0] == "failed"


def test_check_mode_switches_nothing_for_real_and_probes_nothing():
    host = FakeHost()

    def preview(release_id, force):
        return dict(changed=True, release={"release_id": release_id}, previous=None, diff={"after": "x"},
                    msg="would switch current from r1 to %s" % release_id)
    host.activate = preview
    result = cut.cutover(host, R2, R1, check_mode=True)
    assert result["outcome"] == cut.MOVED and result["changed"] and "would restart" in result["msg"]
    assert host.calls == [] and result["gate"] is None


@pytest.mark.parametrize("outcomes, passed, text", [
    pytest.param([True, True, True], True, "3/3 consecutive successes", id="passes"),
    pytest.param([False, True, True, True], True, "3/3", id="passes-after-one-failure"),
    pytest.param([False, False, False], False, "3 times in a row", id="fails-early"),
])
def test_gate_counts_consecutive_outcomes(outcomes, passed, text):
    queue = list(outcomes)
    ticks = iter(range(1000))
    result = cut.gate(lambda v: (queue.pop(0), 200, 1.0, None if outcomes else "x") if queue else (True, 200, 1.0, None),
                      SETTINGS, "2.0.0", clock=lambda: next(ticks) * 0.01, sleep=lambda s: None)
    assert result["passed"] is passed and text in result["summary"]


def test_gate_times_out():
    ticks = iter(range(100000))
    result = cut.gate(lambda v: (False, None, 1.0, "connection refused"), dict(SETTINGS, failure_threshold=0, timeout=1),
                      "2.0.0", clock=lambda: next(ticks) * 0.1, sleep=lambda s: None)
    assert result["passed"] is False and "within" in result["summary"]


class HookedHost(FakeHost):
    """A FakeHost with extension-point commands; ``failing`` names the points whose commands fail."""

    def __init__(self, failing=(), **kwargs):
        super().__init__(**kwargs)
        self.failing = set(failing)

    def has_hook(self, point):
        return True

    def hook(self, point, release):
        self.calls.append(("hook", point, release["release_id"]))
        if point in self.failing:
            raise cut.StepError("%s hook 'migrate' exited 1: no database" % point)


def test_extension_points_run_in_order_around_the_switch_and_restart():
    host = HookedHost()
    result = cut.cutover(host, dict(release_id="r2", version="2.0.0"), R1)
    assert result["outcome"] == cut.MOVED
    assert [c for c in host.calls if c[0] != "gate"][:5] == [
        ("hook", "before_switch", "r2"), ("activate", "r2", False), ("hook", "after_switch", "r2"), ("restart",),
        ("hook", "before_gate", "r2")]
    assert [p["name"] for p in result["phases"]][:5] == ["hook:before_switch", "switch", "hook:after_switch",
                                                         "restart", "hook:before_gate"]


def test_a_failed_before_switch_hook_leaves_the_host_untouched():
    host = HookedHost(failing=("before_switch",))
    result = cut.cutover(host, dict(release_id="r2", version="2.0.0"), R1)
    assert result["outcome"] == cut.REVERTED and host.current == "r1"
    assert ("activate", "r2", False) not in host.calls and "no database" in result["reason"]


def test_check_mode_runs_no_hook_and_says_which_would_run():
    host = HookedHost()
    result = cut.cutover(host, dict(release_id="r2", version="2.0.0"), R1, check_mode=True)
    assert not [c for c in host.calls if c[0] == "hook"]
    assert result["hooks"] == ["before_switch", "after_switch", "before_gate"]
    assert "would run the hooks before_switch, after_switch, before_gate, restart and gate it" in result["msg"]


@pytest.mark.parametrize("point", ["after_switch", "before_gate"])
def test_a_failed_hook_after_the_switch_counts_as_a_failed_gate(point):
    host = HookedHost(failing=(point,))
    result = cut.cutover(host, dict(release_id="r2", version="2.0.0"), R1)
    assert result["outcome"] == cut.REVERTED and host.current == "r1"
    assert point + " hook 'migrate' exited 1" in result["reason"] and host.marks["r2"][0] == "failed"
