"""The analysis between batches: HAProxy's counters read twice, turned into figures and a verdict."""
import pytest

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _analysis
from ansible_collections.conveyor.deploy.plugins.plugin_utils._rollout import PlanError

CONFIG = _analysis.settings({}, production=True)[0]


def row(ok, errors=0, rtime=0, econ=0):
    return {"hrsp_2xx": ok, "hrsp_5xx": errors, "rtime": rtime, "econ": econ}


def window(new_ok, new_errors, base_ok=1000, base_errors=0, new_rtime=(2, 2), base_rtime=2, start=5000):
    """Two readings: the new server app01 and the baseline app02, app03 (same traffic each)."""
    before = {"app01": row(start, 0, new_rtime[0]), "app02": row(start, 0, base_rtime), "app03": row(start, 0, base_rtime)}
    after = {"app01": row(start + new_ok, new_errors, new_rtime[1]),
             "app02": row(start + base_ok, base_errors, base_rtime), "app03": row(start + base_ok, base_errors, base_rtime)}
    return before, after


def test_defaults_catch_a_five_percent_error_rate_and_pass_a_clean_release():
    before, after = window(95, 5)
    found = _analysis.judge(before, after, ["app01"], ["app02", "app03"], CONFIG, 30)
    assert found["verdict"] == "fail"
    error = found["results"][0]
    assert error["metric"] == "error_ratio" and error["value"] == 0.05 and error["threshold"] == 0.02
    assert "error_ratio 0.05 > 0.02 (5 of 100 requests failed (5.00%)" in _analysis.failure_text(found)
    before, after = window(100, 0)
    passed = _analysis.judge(before, after, ["app01"], ["app02", "app03"], CONFIG, 30)
    assert passed["verdict"] == "pass"
    assert _analysis.line(passed).startswith("analysis pass: error_ratio 0.0 <= 0.02; latency_vs_baseline")
    assert _analysis.line(found).startswith("analysis fail: error_ratio 0.05 > 0.02")


def test_errors_the_baseline_shares_are_not_blamed_on_the_release():
    before, after = window(95, 5, base_ok=950, base_errors=50)
    found = _analysis.judge(before, after, ["app01"], ["app02", "app03"], CONFIG, 30)
    assert found["verdict"] == "pass", found
    assert found["results"][0]["threshold"] == pytest.approx(0.07)


def test_connection_errors_count_as_failures():
    before = {"app01": row(100), "app02": row(100)}
    after = {"app01": dict(row(190), econ=10), "app02": row(200)}
    found = _analysis.judge(before, after, ["app01"], ["app02"], CONFIG, 30)
    assert found["verdict"] == "fail" and found["new"]["errors"] == 10 and found["new"]["requests"] == 100


def test_too_few_requests_is_inconclusive_and_the_policy_decides():
    before, after = window(20, 0)
    found = _analysis.judge(before, after, ["app01"], ["app02", "app03"], CONFIG, 10)
    assert found["verdict"] == "inconclusive"
    assert "20 requests reached app01 in 10 s; the analysis needs at least 50" in _analysis.failure_text(found)
    assert _analysis.stops(found, CONFIG)
    assert not _analysis.stops(found, _analysis.settings({}, production=False)[0])
    missing = _analysis.judge({}, {}, ["app01"], ["app02"], CONFIG, 10)
    assert missing["verdict"] == "inconclusive" and "no counters for app01" in _analysis.failure_text(missing)


def test_the_window_mean_is_recovered_from_haproxys_moving_average():
    # A server with a long history at 2 ms that then answers 100 requests at 302 ms.
    samples = _analysis.SAMPLES
    total = 2.0 * samples
    for dummy in range(100):
        total = total - total / samples + 302
    after = int(total / samples)
    assert _analysis.window_mean(2, after, 50000, 50100) == pytest.approx(302, abs=15)
    # Fewer requests than the average's span: a plain mean of all of them.
    assert 30 < _analysis.window_mean(10, 20, 100, 200) < 40
    assert _analysis.window_mean(5, 5, 100, 100) is None


def test_a_slow_release_fails_against_the_baseline_but_two_ms_against_one_is_no_regression():
    samples = _analysis.SAMPLES
    total = 2.0 * samples
    for dummy in range(100):
        total = total - total / samples + 302
    before, after = window(100, 0, new_rtime=(2, int(total / samples)))
    found = _analysis.judge(before, after, ["app01"], ["app02", "app03"], CONFIG, 30)
    assert found["verdict"] == "fail"
    assert [r["metric"] for r in found["results"] if r["verdict"] == "fail"] == ["latency_vs_baseline"]
    before, after = window(100, 0, new_rtime=(1, 1), base_rtime=1)
    after["app01"]["rtime"] = 2
    assert _analysis.judge(before, after, ["app01"], ["app02", "app03"], CONFIG, 30)["verdict"] == "pass"


def test_without_a_baseline_only_the_absolute_bounds_apply():
    before, after = window(100, 0, new_rtime=(2, 400))
    config = dict(CONFIG, max_latency_ms=250)
    found = _analysis.judge(before, after, ["app01"], [], config, 30)
    assert [r["metric"] for r in found["results"]] == ["error_ratio", "latency_ms"]
    assert found["verdict"] == "fail" and found["baseline"] is None
    assert _analysis.judge(before, after, ["app01"], [], CONFIG, 30)["verdict"] == "pass"


@pytest.mark.parametrize("raw, canary, text", [
    ({"max_eror_ratio": 0.1}, None, "rolling_analysis has no setting max_eror_ratio"),
    ({"max_error_ratio": "lots"}, None, "rolling_analysis.max_error_ratio must be a number"),
    ({"max_error_ratio": 2}, None, "between 0.0 and 1.0"),
    ({"inconclusive": "ignore"}, None, "must be fail or warn"),
    ({"enabled": "maybe"}, None, "rolling_analysis.enabled must be true or false"),
    ({}, {"enabled": True, "weight": 0}, "rolling_canary_weight must be between 1 and 100"),
    ({}, {"enabled": "sure"}, "rolling_canary must be true or false"),
    ("on", None, "rolling_analysis must be a mapping"),
])
def test_settings_refuse_each_bad_value_by_name(raw, canary, text):
    with pytest.raises(PlanError, match=text.replace("(", r"\(").replace(".", r"\.")):
        _analysis.settings(raw, canary)


def test_a_canary_turns_the_analysis_on_and_command_line_strings_are_understood():
    analysis, canary = _analysis.settings({"min_requests": "30"}, {"enabled": "true", "weight": "25", "seconds": "15"})
    assert analysis["enabled"] and analysis["min_requests"] == 30 and analysis["inconclusive"] == "warn"
    assert canary == {"enabled": True, "weight": 25, "seconds": 15.0}
    assert not _analysis.settings(None)[0]["enabled"]


def test_the_watch_compares_with_the_old_release_measured_earlier_and_an_absolute_error_bound():
    before, after = window(95, 5, new_rtime=(2, 2))
    found = _analysis.judge(before, after, ["app01"], [], CONFIG, 20)
    assert found["verdict"] == "fail" and "no server left on the old release" in found["results"][0]["detail"]
    samples = _analysis.SAMPLES
    total = 2.0 * samples
    for dummy in range(100):
        total = total - total / samples + 302
    before, after = window(100, 0, new_rtime=(2, int(total / samples)))
    assert _analysis.judge(before, after, ["app01"], [], CONFIG, 20)["verdict"] == "pass"
    reference = _analysis.reference_of([None, {"baseline": None}, {"baseline": {"latency_ms": 2.0, "error_ratio": 0.0}}])
    slow = _analysis.judge(before, after, ["app01"], [], CONFIG, 20, reference)
    assert slow["verdict"] == "fail"
    assert "on the baseline measured earlier in the run" in _analysis.failure_text(slow)


def test_watch_seconds_are_checked_with_the_other_settings():
    assert _analysis.settings({}, watch="30")[0]["watch_seconds"] == 30.0
    with pytest.raises(PlanError, match="rolling_watch_seconds must be between 0 and 86400"):
        _analysis.settings({}, watch=-1)


def test_prometheus_queries_fill_their_placeholders_and_judge_each_value():
    config = _analysis.settings({"prometheus": {"url": "http://prom:9090/", "queries": [
        {"name": "p95", "query": 'histogram_quantile(0.95, x{server=~"$servers"}[$window]) / y{server=~"$baseline"}',
         "max": 1.5}, None]}})[0]
    asked = []

    def fetch(url, query, timeout):
        asked.append((url, query, timeout))
        return (2.0, None) if "histogram" in query else (float("nan"), None)

    found = _analysis.prometheus_results(config, "shop", ["app01", "web-2.x"], ["app03"], 29.6, fetch)
    assert asked[0] == ("http://prom:9090",
                        'histogram_quantile(0.95, x{server=~"app01|web\\\\-2\\\\.x"}[30s]) / y{server=~"app03"}', 10)
    assert 'proxy="shop",server=~"app01|web' in asked[1][1]
    verdicts = [(r["metric"], r["verdict"]) for r in found]
    assert verdicts == [("prometheus:p95", "fail"), ("prometheus:error_ratio", "inconclusive")]
    assert found[1]["threshold"] == 0.02 and "no data in the window" in found[1]["detail"]
    base = {"verdict": "pass", "results": [{"metric": "error_ratio", "verdict": "pass"}]}
    assert _analysis.with_results(base, found)["verdict"] == "fail"
    unreachable = _analysis.prometheus_results(config, "shop", ["app01"], [], 10, lambda *a: (None, "URLError: refused"))
    assert {r["verdict"] for r in unreachable} == {"inconclusive"} and "URLError: refused" in unreachable[0]["detail"]


@pytest.mark.parametrize("prometheus, text", [
    ({"url": "prom:9090"}, "rolling_analysis.prometheus.url must be an http(s) URL"),
    ({"url": "http://p", "queries": [{"name": "x y", "query": "up", "max": 1}]}, "must be a word"),
    ({"url": "http://p", "queries": [{"name": "x"}]}, "must be a mapping with a name, a query and a max"),
    ({"url": "http://p", "query": "up"}, "rolling_analysis.prometheus has no setting query"),
    ("http://p", "rolling_analysis.prometheus must be a mapping"),
])
def test_prometheus_settings_are_refused_by_name(prometheus, text):
    with pytest.raises(PlanError) as caught:
        _analysis.settings({"prometheus": prometheus})
    assert text in str(caught.value)


def test_the_synthetic_probe_is_checked_and_judged_by_failed_requests_and_p95():
    config = _analysis.settings({"probe": {"url": "http://lb.example.com/", "requests": 10, "max_p95_ms": 200}})[0]
    assert config["probe"]["max_failed"] == 0 and config["probe"]["requests"] == 10
    good = [(True, 20.0 + i, "") for i in range(10)]
    results = _analysis.probe_results(config, good)
    assert [(r["metric"], r["verdict"]) for r in results] == [("probe_failed", "pass"), ("probe_p95_ms", "pass")]
    slow = good[:9] + [(False, 900.0, "answered 500")]
    found = dict((r["metric"], r) for r in _analysis.probe_results(config, slow))
    assert found["probe_failed"]["verdict"] == "fail" and found["probe_failed"]["value"] == 1
    assert "1 of 10 requests to http://lb.example.com/ failed: answered 500" in found["probe_failed"]["detail"]
    assert found["probe_p95_ms"]["value"] == 900.0 and found["probe_p95_ms"]["verdict"] == "fail"
    assert _analysis.probe_results(config, [])[0]["verdict"] == "inconclusive"
    assert _analysis.probe_results(_analysis.settings({})[0], good) == []
    with pytest.raises(PlanError) as err:
        _analysis.settings({"probe": {"url": "lb/", "request": 3, "max_failed": -1}})
    said = str(err.value)
    assert "probe.url must be an http(s) URL" in said and "probe has no setting request" in said
    assert "rolling_analysis.probe.max_failed" in said
