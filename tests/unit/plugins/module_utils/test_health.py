import pytest

from ansible_collections.conveyor.deploy.plugins.module_utils import _health as health


@pytest.mark.parametrize("values, pct, expected", [
    pytest.param([], 95, None, id="empty"),
    pytest.param([5], 95, 5, id="single"),
    pytest.param(list(range(1, 101)), 50, 50, id="p50-of-100"),
    pytest.param(list(range(1, 101)), 95, 95, id="p95-of-100"),
    pytest.param([1, 2, 3, 1000], 95, 1000, id="outlier-in-4"),
    pytest.param(list(range(20, 0, -1)), 95, 19, id="unsorted"),
])
def test_percentile_nearest_rank(values, pct, expected):
    assert health.percentile(values, pct) == expected


def test_latency_summary():
    summary = health.latency_summary([10.0, 20.0, 30.0, 40.0])
    assert summary == {"count": 4, "p50_ms": 20.0, "p95_ms": 40.0, "max_ms": 40.0}
    assert health.latency_summary([])["p95_ms"] is None


def feed(tracker, outcomes, step=1.0):
    for index, ok in enumerate(outcomes):
        tracker.record(ok, index * step, None if ok else "boom")
        if tracker.passed or tracker.failed:
            return index + 1
    return None


def test_consecutive_successes_reset_on_failure():
    tracker = health.Tracker(success_threshold=3, failure_threshold=5)
    decided_at = feed(tracker, [True, True, False, True, True, True])
    assert decided_at == 6 and tracker.passed


def test_flapping_never_passes():
    tracker = health.Tracker(success_threshold=2, failure_threshold=5)
    assert feed(tracker, [True, False] * 10) is None
    assert not tracker.passed and not tracker.failed


def test_early_stop_after_consecutive_failures():
    tracker = health.Tracker(success_threshold=3, failure_threshold=3)
    assert feed(tracker, [False, False, False, True]) == 3
    assert tracker.failed and tracker.last_failure == "boom"


def test_failures_during_start_period_do_not_count():
    tracker = health.Tracker(success_threshold=1, failure_threshold=2, start_period=3.0)
    # attempts at 0, 1, 2 s fall in the start period; 3 and 4 count
    assert feed(tracker, [False] * 10) == 5


def test_samples_hold_the_decision_until_enough_attempts():
    tracker = health.Tracker(success_threshold=1, failure_threshold=3, samples=5)
    assert feed(tracker, [True] * 10) == 5


def test_zero_failure_threshold_waits_for_timeout():
    tracker = health.Tracker(success_threshold=1, failure_threshold=0)
    assert feed(tracker, [False] * 50) is None


class FakeClock(object):
    """A clock that only moves when the code under test sleeps; records the waits."""

    def __init__(self):
        self.now = 0.0
        self.waits = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.waits.append(round(seconds, 3))
        self.now += seconds


def scripted(outcomes):
    answers = iter(outcomes)
    return lambda: (next(answers), 200, 1.0, "refused")


def test_probe_polls_fast_while_the_service_starts_then_spaces_successes():
    clock = FakeClock()
    tracker, attempts, dummy, elapsed, timed_out = health.probe_until(
        scripted([False, False, False, True, True, True]), 3, 3, start_period=3.0, interval=0.5, timeout=60,
        clock=clock, sleep=clock.sleep)
    assert tracker.passed and not timed_out
    # three refusals in the start period retried every 0.1 s, then successes 0.5 s apart
    assert clock.waits == [0.1, 0.1, 0.1, 0.5, 0.5]
    assert len(attempts) == 6


def test_probe_waits_the_interval_after_the_start_period_and_after_a_success():
    clock = FakeClock()
    health.probe_until(scripted([False, True, False, False, False]), 1 + 2, 3, start_period=0.0, interval=0.5,
                       timeout=60, clock=clock, sleep=clock.sleep)
    # no start period: every wait is the interval, so failures are counted at the configured pace
    assert clock.waits == [0.5] * 4


def test_probe_interval_shorter_than_the_start_poll_is_kept():
    clock = FakeClock()
    health.probe_until(scripted([False, True]), 1, 3, start_period=3.0, interval=0.05, timeout=60,
                       clock=clock, sleep=clock.sleep)
    assert clock.waits == [0.05]


def test_check_json_assertions():
    compiled = health.compile_assertions([
        {"query": "status", "equals": "ok"},
        {"query": "version", "equals": "2.0.0"},
        {"query": "length(workers) > `1`"},
    ])
    assert health.check_json('{"status": "ok", "version": "2.0.0", "workers": [1, 2]}', compiled) is None
    assert health.check_json('{"status": "error", "version": "2.0.0", "workers": [1, 2]}', compiled) == \
        'JSON status is "error", expected "ok"'
    assert "is false" in health.check_json('{"status": "ok", "version": "2.0.0", "workers": [1]}', compiled)
    assert "not valid JSON" in health.check_json("<html>", compiled)


def test_check_json_compares_numbers_and_strings_as_text():
    compiled = health.compile_assertions([{"query": "version", "equals": "2"}])
    assert health.check_json('{"version": 2}', compiled) is None
    assert health.check_json('{"version": null}', compiled) is not None


def test_invalid_jmespath_names_the_assertion():
    with pytest.raises(ValueError) as err:
        health.compile_assertions([{"query": "status"}, {"query": "status =="}])
    assert "json_assertions[1].query" in str(err.value)


def test_summary_texts():
    tracker = health.Tracker(success_threshold=3, failure_threshold=3)
    attempts = []
    for n in range(3):
        tracker.record(True, n)
        attempts.append({"ok": True, "reason": None})
    text = health.summarise(True, tracker, 2.1, {"p95_ms": 12.0}, attempts, "GET /health", False)
    assert text == "3/3 consecutive successes in 2.1 s, p95 12 ms"
    tracker = health.Tracker(success_threshold=3, failure_threshold=5)
    attempts = []
    for n in range(5):
        tracker.record(False, n, "answered 500 (body: boom)")
        attempts.append({"ok": False, "reason": "answered 500 (body: boom)"})
    text = health.summarise(False, tracker, 5.0, {}, attempts, "GET /health", False)
    assert text == "failed: GET /health: answered 500 (body: boom), 5 times in a row"


def test_summary_collapses_failures_whose_bodies_differ():
    tracker = health.Tracker(success_threshold=1, failure_threshold=3)
    attempts = []
    for n in range(3):
        reason = 'answered 500 (body: {"uptime_s": %d})' % n
        tracker.record(False, n, reason)
        attempts.append({"ok": False, "status": 500, "reason": reason})
    text = health.summarise(False, tracker, 3.0, {}, attempts, "GET /health", False)
    assert text == 'failed: GET /health: answered 500 (body: {"uptime_s": 2}), 3 times in a row'
