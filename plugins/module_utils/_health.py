# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe evaluation for the health_check module: thresholds, latency, JSON assertions.

Kept free of network code so the unit tests can drive the decisions directly.
"""

from __future__ import annotations

import json
import math
import time

try:
    import jmespath
    HAS_JMESPATH = True
except ImportError:  # pragma: no cover - reported by the module
    jmespath = None
    HAS_JMESPATH = False


def percentile(values, pct):
    """Nearest-rank percentile of ``values`` (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(math.ceil(pct / 100.0 * len(ordered))))
    return ordered[rank - 1]


def latency_summary(latencies_ms):
    if not latencies_ms:
        return dict(count=0, p50_ms=None, p95_ms=None, max_ms=None)
    return dict(count=len(latencies_ms), p50_ms=round(percentile(latencies_ms, 50), 1),
                p95_ms=round(percentile(latencies_ms, 95), 1), max_ms=round(max(latencies_ms), 1))


def compile_assertions(assertions):
    """Compile ``[{query, equals?}]``; raise ValueError naming the bad expression."""
    compiled = []
    for index, item in enumerate(assertions or []):
        query = item.get("query")
        if not query:
            raise ValueError("json_assertions[%d] has no query" % index)
        try:
            expression = jmespath.compile(query)
        except Exception as exc:  # jmespath raises several ParseError flavours
            raise ValueError("json_assertions[%d].query %r is not a valid JMESPath expression: %s"
                             % (index, query, exc))
        compiled.append((query, expression, "equals" in item and item.get("equals") is not None, item.get("equals")))
    return compiled


def check_json(body, compiled):
    """Return None when every assertion holds, else the first failure's reason."""
    if not compiled:
        return None
    try:
        document = json.loads(body)
    except ValueError as exc:
        return "body is not valid JSON (%s)" % exc
    for query, expression, has_expected, expected in compiled:
        value = expression.search(document)
        if has_expected:
            if not _equal(value, expected):
                return "JSON %s is %s, expected %s" % (query, json.dumps(value), json.dumps(expected))
        elif not value:
            return "JSON assertion %s is %s" % (query, json.dumps(value))
    return None


def _equal(value, expected):
    if value == expected:
        return True
    # Inventories often carry versions as strings and JSON as numbers, or the reverse.
    return value is not None and str(value) == str(expected)


class Tracker(object):
    """Counts consecutive outcomes and says when the probe is decided.

    ``success_threshold`` consecutive successes (and at least ``samples``
    attempts) pass; ``failure_threshold`` consecutive failures fail early,
    except failures during ``start_period`` seconds, which do not count.
    """

    def __init__(self, success_threshold, failure_threshold, samples=0, start_period=0.0):
        self.success_threshold = success_threshold
        self.failure_threshold = failure_threshold
        self.samples = samples
        self.start_period = start_period
        self.successes = 0
        self.failures = 0
        self.attempts = 0
        self.last_failure = None

    def record(self, ok, elapsed, reason=None):
        self.attempts += 1
        if ok:
            self.successes += 1
            self.failures = 0
        else:
            self.successes = 0
            self.last_failure = reason
            if elapsed >= self.start_period:
                self.failures += 1

    @property
    def passed(self):
        return self.successes >= self.success_threshold and self.attempts >= self.samples

    @property
    def failed(self):
        return self.failure_threshold > 0 and self.failures >= self.failure_threshold


# While a service is still starting (start period, no success yet) the probe comes this often,
# so the gate sees its first answer within a tenth of a second; successes stay ``interval`` apart.
START_POLL = 0.1


def next_wait(tracker, elapsed, interval):
    """Seconds to wait before the next probe: ``interval``, or START_POLL while the service starts."""
    if tracker.successes == 0 and elapsed < tracker.start_period:
        return min(interval, START_POLL)
    return interval


def probe_until(probe, success_threshold, failure_threshold, samples=0, start_period=0.0, interval=1.0, timeout=60.0,
                clock=time.monotonic, sleep=time.sleep):
    """Call ``probe()`` until the Tracker decides or ``timeout`` seconds pass.

    ``probe()`` returns ``(ok, status, latency_ms, reason)``.  Returns ``(tracker, attempts,
    latencies, elapsed, timed_out)``; each attempt is ``{n, at_s, ok, status, latency_ms, reason}``.
    A failed probe during ``start_period`` is retried after START_POLL seconds (not ``interval``).
    """
    tracker = Tracker(success_threshold, failure_threshold, samples, start_period)
    attempts, latencies = [], []
    start = clock()
    timed_out = False
    while True:
        at = clock() - start
        ok, status, latency, reason = probe()
        latencies.append(latency)
        tracker.record(ok, clock() - start, reason)
        attempts.append(dict(n=tracker.attempts, at_s=round(at, 2), ok=ok, status=status,
                             latency_ms=round(latency, 1), reason=reason))
        if tracker.passed or tracker.failed:
            break
        wait = next_wait(tracker, clock() - start, interval)
        if clock() - start + wait >= timeout:
            timed_out = True
            break
        if wait:
            sleep(wait)
    return tracker, attempts, latencies, clock() - start, timed_out


def summarise(passed, tracker, elapsed, latency, attempts, what, timed_out):
    """One sentence a person can read."""
    if passed:
        text = "%d/%d consecutive successes in %.1f s" % (tracker.successes, tracker.success_threshold, elapsed)
        if latency.get("p95_ms") is not None:
            text += ", p95 %s ms" % _fmt(latency["p95_ms"])
        return text
    reason = tracker.last_failure or "no successful attempt"
    if tracker.failed:
        same = [a for a in attempts if not a["ok"]][-tracker.failures:]
        # Bodies differ between attempts (uptimes, request ids): compare the cause without them.
        causes = set((a.get("status"), (a.get("reason") or "").split(" (body:")[0]) for a in same)
        if same and len(causes) == 1:
            return "failed: %s: %s, %d times in a row" % (what, reason, tracker.failures)
        return "failed: %s: %d consecutive failures, last: %s" % (what, tracker.failures, reason)
    if timed_out:
        return "failed: %s: no %d consecutive successes within %.0f s (last failure: %s)" % (
            what, tracker.success_threshold, elapsed, reason)
    return "failed: %s: %s" % (what, reason)


def _fmt(value):
    return ("%d" % value) if float(value).is_integer() else ("%.1f" % value)
