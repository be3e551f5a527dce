# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Analysis between batches: the live traffic of the new release's servers against the servers still on the old one.

The figures come from HAProxy's own per-server counters, read twice on the load balancer (before and after a
window; ``haproxy_server``'s ``observe``). This file turns two readings into figures and the figures into a
verdict: pure Python, reached by the unit tests.

- **Error ratio**: 5xx responses and connection errors over the requests of the window, for the new servers, and
  for the baseline (the servers still on the old release). It fails above ``max_error_ratio`` more than the
  baseline's own ratio, so an outage of a shared dependency is not blamed on the release.
- **Response time**: HAProxy keeps, per server, a moving average of its response times over about its last 1024
  requests. The window's own mean is recovered from the two readings and the number of requests in between
  (``window_mean``). It fails above ``max_latency_ms`` (when set), or above ``max_latency_ratio`` times the
  baseline's average when it is also ``min_latency_delta_ms`` slower (2 ms against 1 ms is no regression).
- **Synthetic probe** (optional, ``probe``): after the window, a few requests through the load balancer's URL, as a
  user would send them; it fails on more failed requests than ``max_failed``, or a p95 above ``max_p95_ms``.
- Fewer than ``min_requests`` requests on the new servers is **inconclusive**, never a pass: the policy
  ``inconclusive`` (``fail`` or ``warn``) decides. With no baseline left (the last batch), the comparisons are
  skipped and the absolute bounds still apply.
"""

from __future__ import annotations

import math
import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.conveyor.deploy.plugins.plugin_utils._rollout import PlanError

# The span of HAProxy's moving average of response times (TIME_STATS_SAMPLES in its source: 512, which its manual
# describes as "the 1024 last requests" since the sliding average weighs about that many).
SAMPLES = 512

# rolling_analysis.prometheus: a query's placeholders, replaced when it runs.
PLACEHOLDERS = ("$backend", "$servers", "$baseline", "$window")
DEFAULT_QUERY = ('sum(rate(haproxy_server_http_responses_total{proxy="$backend",server=~"$servers",code="5xx"}[$window]))'
                 ' / sum(rate(haproxy_server_http_responses_total{proxy="$backend",server=~"$servers"}[$window]))')
DEFAULTS = {
    "enabled": False,
    "prometheus": None,
    "probe": None,
    "seconds": 30.0,
    "min_requests": 50,
    "max_error_ratio": 0.02,
    "max_latency_ratio": 1.5,
    "min_latency_delta_ms": 50.0,
    "max_latency_ms": 0.0,
    "inconclusive": "fail",
}
NUMBERS = {"seconds": (1.0, 3600.0), "min_requests": (1, 1000000), "max_error_ratio": (0.0, 1.0),
           "max_latency_ratio": (1.0, 100.0), "min_latency_delta_ms": (0.0, 60000.0), "max_latency_ms": (0.0, 600000.0)}
CANARY_DEFAULTS = {"enabled": False, "weight": 10, "seconds": 60.0}


def _number(value, name, low, high, problems, integer=False):
    if isinstance(value, bool):
        problems.append("%s must be a number, not %r" % (name, value))
        return None
    try:
        number = int(value) if integer and float(value) == int(float(value)) else float(value)
    except (TypeError, ValueError):
        problems.append("%s must be a number, not %r" % (name, value))
        return None
    if not low <= number <= high:
        problems.append("%s must be between %s and %s, not %s" % (name, low, high, value))
        return None
    return number


def _flag(value, name, problems):
    """true/false, also as typed on a command line (-e rolling_canary=true); None after a problem."""
    try:
        return boolean(value, strict=True)
    except TypeError:
        problems.append("%s must be true or false, not %r" % (name, value))
        return None


def settings(raw, canary=None, production=False, watch=0):
    """The validated ``rolling_analysis`` and canary settings: ({analysis}, {canary}); PlanError naming each problem.

    ``raw``: the rolling_analysis mapping (unknown keys are refused: a typo must not switch a check off).
    ``canary``: {enabled, weight, seconds} from rolling_canary, rolling_canary_weight, rolling_canary_seconds.
    A canary turns the analysis on. ``inconclusive`` defaults to ``fail`` in production, ``warn`` elsewhere.
    ``watch``: rolling_watch_seconds, kept as ``watch_seconds`` (the same thresholds judge the watch).
    """
    problems = []
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        raise PlanError("rolling_analysis must be a mapping (e.g. {enabled: true, max_error_ratio: 0.02}), not %r"
                        % (raw,))
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        problems.append("rolling_analysis has no setting %s (it has %s)" % (
            ", ".join(map(str, unknown)), ", ".join(sorted(DEFAULTS))))
    out = dict(DEFAULTS, inconclusive="fail" if production else "warn")
    for key, value in raw.items():
        if key in NUMBERS:
            low, high = NUMBERS[key]
            found = _number(value, "rolling_analysis.%s" % key, low, high, problems, integer=key == "min_requests")
            if found is not None:
                out[key] = found
        elif key == "enabled":
            found = _flag(value, "rolling_analysis.enabled", problems)
            if found is not None:
                out[key] = found
        elif key == "prometheus":
            out[key] = prometheus_settings(value, problems)
        elif key == "probe":
            out[key] = probe_settings(value, problems)
        elif key == "inconclusive":
            if value not in ("fail", "warn"):
                problems.append("rolling_analysis.inconclusive must be fail or warn, not %r" % (value,))
            else:
                out[key] = value
    wanted = dict(CANARY_DEFAULTS, **dict((k, v) for k, v in (canary or {}).items() if v is not None))
    wanted["enabled"] = bool(_flag(wanted["enabled"], "rolling_canary", problems))
    weight = _number(wanted["weight"], "rolling_canary_weight", 1, 100, problems, integer=True)
    seconds = _number(wanted["seconds"], "rolling_canary_seconds", 1, 3600, problems)
    out["watch_seconds"] = _number(watch or 0, "rolling_watch_seconds", 0, 86400, problems) or 0.0
    if problems:
        raise PlanError("; ".join(problems))
    canary_out = {"enabled": wanted["enabled"], "weight": int(weight), "seconds": float(seconds)}
    if canary_out["enabled"]:
        out["enabled"] = True
    return out, canary_out


PROBE_DEFAULTS = {"url": "", "requests": 20, "max_failed": 0, "max_p95_ms": 0.0, "timeout": 5.0}
PROBE_NUMBERS = {"requests": (1, 1000), "max_failed": (0, 1000), "max_p95_ms": (0.0, 600000.0), "timeout": (0.1, 60.0)}


def probe_settings(raw, problems):
    """rolling_analysis.probe: {url, requests, max_failed, max_p95_ms, timeout}; None when not set."""
    if raw in (None, {}, ""):
        return None
    if not isinstance(raw, dict):
        problems.append("rolling_analysis.probe must be a mapping with a url (e.g. {url: 'http://lb.example.com/'}), "
                        "not %r" % (raw,))
        return None
    unknown = sorted(set(raw) - set(PROBE_DEFAULTS))
    if unknown:
        problems.append("rolling_analysis.probe has no setting %s (it has %s)" % (
            ", ".join(map(str, unknown)), ", ".join(sorted(PROBE_DEFAULTS))))
    out = dict(PROBE_DEFAULTS)
    out["url"] = str(raw.get("url") or "")
    if not re.match(r"^https?://[^\s/]+", out["url"]):
        problems.append("rolling_analysis.probe.url must be an http(s) URL through the load balancer, not %r" % out["url"])
    for key, (low, high) in PROBE_NUMBERS.items():
        if key in raw:
            found = _number(raw[key], "rolling_analysis.probe.%s" % key, low, high, problems,
                            integer=key in ("requests", "max_failed"))
            if found is not None:
                out[key] = found
    return out


def probe_results(config, outcomes):
    """The synthetic probe's results: failed requests against ``max_failed``, the p95 against ``max_p95_ms``.

    ``outcomes``: [(ok, latency_ms, reason)] of the requests sent (the HTTP calls are outside this file); none sent
    is inconclusive.
    """
    probe = config.get("probe")
    if not probe:
        return []
    if not outcomes:
        return [_result("probe_failed", None, probe["max_failed"], "inconclusive", "the probe sent no request")]
    failed = [reason for ok, dummy, reason in outcomes if not ok]
    reasons = sorted(set(failed))
    detail = "%d of %d requests to %s failed%s" % (len(failed), len(outcomes), probe["url"],
                                                   (": " + "; ".join(reasons[:3])) if reasons else "")
    out = [_result("probe_failed", len(failed), probe["max_failed"],
                   "fail" if len(failed) > probe["max_failed"] else "pass", detail)]
    if probe["max_p95_ms"]:
        latencies = sorted(latency for dummy, latency, dummy2 in outcomes)
        p95 = round(latencies[max(int(math.ceil(0.95 * len(latencies))), 1) - 1], 1)
        out.append(_result("probe_p95_ms", p95, probe["max_p95_ms"], "fail" if p95 > probe["max_p95_ms"] else "pass",
                           "p95 of %d requests to %s" % (len(outcomes), probe["url"])))
    return out


def prometheus_settings(raw, problems):
    """rolling_analysis.prometheus: {url, timeout, queries: [{name, query, max}]}; None when not set.

    Without queries, one: the new servers' 5xx ratio over the window (``DEFAULT_QUERY``), bounded by
    ``max_error_ratio``. A query may name ``$backend``, ``$servers`` (a regex of the new release's servers),
    ``$baseline`` (of the servers still on the old one) and ``$window`` (the window, e.g. ``30s``).
    """
    if raw in (None, {}, ""):
        return None
    if not isinstance(raw, dict):
        problems.append("rolling_analysis.prometheus must be a mapping with a url, not %r" % (raw,))
        return None
    unknown = sorted(set(raw) - {"url", "timeout", "queries"})
    if unknown:
        problems.append("rolling_analysis.prometheus has no setting %s (it has url, timeout, queries)"
                        % ", ".join(map(str, unknown)))
    url = str(raw.get("url") or "")
    if not re.match(r"^https?://[^\s/]+", url):
        problems.append("rolling_analysis.prometheus.url must be an http(s) URL of Prometheus, not %r" % url)
    timeout = _number(raw.get("timeout", 10), "rolling_analysis.prometheus.timeout", 1, 300, problems) or 10
    queries = []
    for index, query in enumerate(raw.get("queries") or [None], start=1):
        if query is None:
            queries.append({"name": "error_ratio", "query": DEFAULT_QUERY, "max": None})
            continue
        where = "rolling_analysis.prometheus.queries[%d]" % index
        if not isinstance(query, dict) or not str(query.get("query") or "").strip():
            problems.append("%s must be a mapping with a name, a query and a max" % where)
            continue
        name = str(query.get("name") or "query%d" % index)
        if not re.match(r"^[A-Za-z0-9_.:-]{1,64}$", name):
            problems.append("%s.name must be a word (letters, digits, _ . : -), not %r" % (where, name))
        bound = _number(query.get("max"), where + ".max", -1e12, 1e12, problems)
        queries.append({"name": name, "query": str(query["query"]), "max": bound})
    return {"url": url.rstrip("/"), "timeout": timeout, "queries": queries}


def server_regex(servers):
    """A PromQL regex that matches exactly these server names (none: a regex that matches nothing)."""
    return "|".join(re.sub(r"([.\\+*?\[^\]$(){}=!<>|:-])", r"\\\\\1", server) for server in servers) or "^$"


def promql(query, backend, new, baseline, seconds):
    """A configured query with its placeholders filled in."""
    values = {"$backend": backend, "$servers": server_regex(new), "$baseline": server_regex(baseline),
              "$window": "%ds" % max(int(round(seconds)), 1)}
    for name in PLACEHOLDERS:
        query = query.replace(name, values[name])
    return query


def prometheus_results(config, backend, new, baseline, seconds, fetch):
    """The results of the Prometheus queries: each query's value against its max; no data is inconclusive.

    ``fetch(url, query, timeout)`` returns (value or None, error or None): the HTTP call, outside this file.
    """
    provider = config.get("prometheus")
    if not provider:
        return []
    out = []
    for query in provider["queries"]:
        bound = query["max"] if query["max"] is not None else config["max_error_ratio"]
        text = promql(query["query"], backend, new, baseline, seconds)
        value, error = fetch(provider["url"], text, provider["timeout"])
        metric = "prometheus:%s" % query["name"]
        if error or value is None or math.isnan(value):  # NaN: 0/0, no requests
            detail = "Prometheus gave no value for %s (%s)" % (query["name"], error or "no data in the window")
            out.append(_result(metric, None, bound, "inconclusive", detail))
            continue
        out.append(_result(metric, round(value, 4), bound, "fail" if value > bound else "pass",
                           "PromQL %s = %s" % (text, round(value, 4))))
    return out


def with_results(analysis, extra):
    """The analysis with more results, and its verdict again."""
    results = list(analysis["results"]) + list(extra)
    verdicts = [result["verdict"] for result in results]
    verdict = "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts else "pass"
    return dict(analysis, results=results, verdict=verdict)


def window_mean(avg_before, avg_after, count_before, count_after):
    """The mean response time (ms) of the requests between two readings of HAProxy's moving average, or None.

    HAProxy adds each request's time ``v`` to a sum ``S`` as ``S - S/N + v`` (N = 512) and shows ``S`` divided by
    ``min(requests so far, N)``. After ``n`` requests of mean ``v``, ``S_after = S_before * r**n + v * N * (1 - r**n)``
    with ``r = 1 - 1/N``; solved for ``v``. The shown averages are whole milliseconds: the error is about N/n ms
    (about 7 ms for 75 requests).
    """
    n = count_after - count_before
    if n <= 0:
        return None
    decay = (1.0 - 1.0 / SAMPLES) ** n
    s_before = avg_before * min(max(count_before, 0), SAMPLES)
    s_after = avg_after * min(count_after, SAMPLES)
    return max((s_after - s_before * decay) / (SAMPLES * (1.0 - decay)), 0.0)


def counters(row):
    """The counters one reading keeps of a server (HAProxy's ``show stat`` columns)."""
    row = row or {}
    answers = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")
    requests = sum(int(row.get(key) or 0) for key in answers)
    return {"requests": requests, "errors": int(row.get("hrsp_5xx") or 0),
            "conn_errors": int(row.get("econ") or 0) + int(row.get("eresp") or 0), "rtime_ms": int(row.get("rtime") or 0)}


def group_figures(before, after, servers):
    """Requests, errors and response time of a group of servers over the window; None when none was read."""
    found = [server for server in servers if server in before and server in after]
    if not found:
        return None
    requests = errors = 0
    weighted, timed = 0.0, 0
    for server in found:
        first, last = counters(before[server]), counters(after[server])
        served = max(last["requests"] - first["requests"], 0)
        # 5xx answers are among the requests served; a connection or response error got no answer at all.
        unanswered = max(last["conn_errors"] - first["conn_errors"], 0)
        requests += served + unanswered
        errors += max(last["errors"] - first["errors"], 0) + unanswered
        mean = window_mean(first["rtime_ms"], last["rtime_ms"], first["requests"], last["requests"])
        if mean is not None:
            weighted += mean * served
            timed += served
    return {"servers": found, "requests": requests, "errors": errors,
            "error_ratio": (float(errors) / requests) if requests else None,
            "latency_ms": (weighted / timed) if timed else None}


def _result(metric, value, threshold, verdict, detail):
    return {"metric": metric, "value": value, "threshold": threshold, "verdict": verdict, "detail": detail}


def judge(before, after, new, baseline, config, seconds, reference=None):
    """The analysis of one window: {verdict: pass|fail|inconclusive, results: [...], new: {...}, baseline: {...}}.

    ``before``/``after``: {server: show-stat row} read around the window; ``new``: the servers on the new release;
    ``baseline``: those still on the old one. Each result names its metric, value, threshold and verdict.
    ``reference``: figures of the old release measured earlier in the run, compared with when no server is left on
    it (the watch after the last batch); its error ratio is not used, since errors then may have other causes.
    """
    mine = group_figures(before, after, new)
    base = group_figures(before, after, baseline) if baseline else None
    if base is None and reference and reference.get("latency_ms") is not None:
        base = {"servers": [], "requests": 0, "errors": 0, "error_ratio": None, "latency_ms": reference["latency_ms"],
                "reference": True}
    results = []
    if mine is None:
        results.append(_result("source", None, None, "inconclusive",
                               "HAProxy gave no counters for %s" % ", ".join(new)))
    elif mine["requests"] < config["min_requests"]:
        results.append(_result("requests", mine["requests"], config["min_requests"], "inconclusive",
                               "%d requests reached %s in %.0f s; the analysis needs at least %d"
                               % (mine["requests"], ", ".join(new), seconds, config["min_requests"])))
    else:
        results.append(error_result(mine, base, config))
        results.extend(latency_results(mine, base, config))
    verdicts = [result["verdict"] for result in results]
    verdict = "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts else "pass"
    return {"verdict": verdict, "seconds": seconds, "results": results, "new": mine, "baseline": base}


def error_result(mine, base, config):
    base_ratio = (base or {}).get("error_ratio") or 0.0
    threshold = base_ratio + config["max_error_ratio"]
    ratio = mine["error_ratio"] or 0.0
    detail = "%d of %d requests failed (%.2f%%) on the new release" % (mine["errors"], mine["requests"], 100 * ratio)
    if base is not None and base.get("error_ratio") is not None:
        detail += ", %.2f%% on the baseline" % (100 * base_ratio)
    elif base is None or base.get("reference"):
        detail += " (no server left on the old release to compare with)"
    return _result("error_ratio", round(ratio, 4), round(threshold, 4), "fail" if ratio > threshold else "pass", detail)


def latency_results(mine, base, config):
    out = []
    latency = mine["latency_ms"]
    if latency is None:
        return [_result("latency_ms", None, None, "inconclusive", "no response time for the new release")]
    if config["max_latency_ms"]:
        out.append(_result("latency_ms", round(latency, 1), config["max_latency_ms"],
                           "fail" if latency > config["max_latency_ms"] else "pass",
                           "mean response time %.0f ms on the new release" % latency))
    base_latency = (base or {}).get("latency_ms")
    if base is None or base_latency is None:
        return out
    bound = max(base_latency * config["max_latency_ratio"], base_latency + config["min_latency_delta_ms"])
    out.append(_result("latency_vs_baseline", round(latency, 1), round(bound, 1),
                       "fail" if latency > bound else "pass",
                       "mean response time %.0f ms on the new release, %.0f ms on the baseline%s" % (
                           latency, base_latency, " measured earlier in the run" if base.get("reference") else "")))
    return out


def reference_of(analyses):
    """The old release's figures from the run's first analysis that had a baseline, or None."""
    for analysis in analyses or []:
        base = (analysis or {}).get("baseline")
        if base and not base.get("reference") and base.get("latency_ms") is not None:
            return base
    return None


def line(analysis):
    """The analysis in one line: every metric against its threshold when it passed, else what failed and why."""
    if analysis["verdict"] != "pass":
        return failure_text(analysis)
    return "analysis pass: " + "; ".join("%s %s <= %s" % (result["metric"], result["value"], result["threshold"])
                                         for result in analysis["results"])


def failure_text(analysis):
    """One line naming what failed (metric, value, threshold), or why the analysis was inconclusive."""
    bad = [result for result in analysis["results"] if result["verdict"] == analysis["verdict"]]
    parts = []
    for result in bad:
        if result["threshold"] is None:
            parts.append(result["detail"])
        else:
            parts.append("%s %s > %s (%s)" % (result["metric"], result["value"], result["threshold"], result["detail"]))
    return "analysis %s: %s" % (analysis["verdict"], "; ".join(parts))


def stops(analysis, config):
    """Whether this analysis stops the rollout: a failure, or an inconclusive one under ``inconclusive: fail``."""
    return analysis["verdict"] == "fail" or (analysis["verdict"] == "inconclusive" and config["inconclusive"] == "fail")
