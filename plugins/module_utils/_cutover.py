# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's cutover as a sequence of timed steps: switch, restart, gate, and the revert.

Private to the collection.  The sequence is written against a small ``Host`` interface
(activate, restart, gate, mark, stop, diagnose, hook) so the unit tests can drive every
branch with a fake host, and the cutover module supplies the real one.

Extension points: ``host.hook(point, release)`` runs the commands given for ``before_switch``
(a failure leaves the host untouched), ``after_switch`` and ``before_gate`` (a failure counts as
a failed gate: the host goes back); each is a timed phase ``hook:<point>``.
"""

from __future__ import annotations

import time

from ansible_collections.conveyor.deploy.plugins.module_utils._health import latency_summary, probe_until, summarise

MAX_ATTEMPTS_RETURNED = 20
# Outcomes of one host's cutover (the engine maps them to the run's vocabulary).
MOVED, REVERTED, FAILED = "moved", "reverted", "failed"
# The extension points a cutover runs, in order.
HOST_POINTS = ("before_switch", "after_switch", "before_gate")


class StepError(Exception):
    """A step that could not be carried out (not a failed gate)."""


class Timeline(object):
    """Phases with their offsets from the start of the cutover, as the change log records them."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.origin = clock()
        self.phases = []

    def run(self, name, func, *args):
        start = self.clock()
        failed = True
        try:
            value = func(*args)
            failed = value is False or (isinstance(value, dict) and value.get("passed") is False)
            return value
        finally:
            self.phases.append(dict(name=name, start_s=round(start - self.origin, 3),
                                    end_s=round(self.clock() - self.origin, 3), failed=failed))

    def seconds(self, name):
        return round(sum(p["end_s"] - p["start_s"] for p in self.phases if p["name"] == name), 3)


def gate(probe, settings, version, clock=time.monotonic, sleep=time.sleep):
    """The health gate on ``version``: ``probe(version)`` until decided (_health.probe_until).

    Returns a dict: passed, summary, attempts (the last few), latency and elapsed_s.
    """
    tracker, attempts, latencies, elapsed, timed_out = probe_until(
        lambda: probe(version), settings["success_threshold"], settings["failure_threshold"], 0,
        settings["start_period"], settings["interval"], settings["timeout"], clock=clock, sleep=sleep)
    latency = latency_summary(latencies)
    what = "%s on %s" % (settings.get("name") or "health", version)
    return dict(passed=tracker.passed, summary=summarise(tracker.passed, tracker, elapsed, latency, attempts, what,
                                                         timed_out),
                attempts=attempts[-MAX_ATTEMPTS_RETURNED:], latency=latency, elapsed_s=round(elapsed, 2))


def cutover(host, target, previous, check_mode=False):
    """Move one host to ``target`` and prove it serves; go back to ``previous`` when it does not.

    ``target`` and ``previous`` are ``{release_id, version}`` (``previous`` may be None: a
    first deployment).  Returns the outcome dict the module returns: outcome (moved,
    reverted, failed), reason, phases, gate, revert_gate, diagnostics, release, previous.
    """
    timeline = Timeline(host.clock)
    result = dict(outcome=MOVED, reason="", phases=timeline.phases, changed=False, diagnostics=None,
                  revert_gate=None, gate=None)
    if check_mode:
        result["hooks"] = [point for point in HOST_POINTS if _has_hook(host, point)]
    try:
        _hook(timeline, host, "before_switch", target, check_mode)
        switched = timeline.run("switch", host.activate, target["release_id"], False)
    except StepError as exc:
        # current was not touched and nothing restarted: the host still runs what it ran.
        reason = "switch: %s" % exc
        host.mark(target["release_id"], "failed", reason[:500])
        on_previous = bool(previous and previous.get("release_id"))
        result.update(outcome=REVERTED if on_previous else FAILED, reason=reason, changed=True,
                      msg="%s; the host stays on %s" % (reason, previous["release_id"] if on_previous else "nothing"),
                      timings=_timings(timeline))
        return result
    result["changed"] = True
    result["release"] = switched.get("release")
    result["previous"] = switched.get("previous")
    if check_mode:
        result["msg"] = switched["msg"] + "; would %srestart and gate it" % (
            "run the hooks %s, " % ", ".join(result["hooks"]) if result["hooks"] else "")
        result["diff"] = switched.get("diff")
        return result
    # Restart even when current already pointed there: a run that died between the switch and
    # the restart leaves the old code running behind the new link.
    try:
        _hook(timeline, host, "after_switch", target)
        timeline.run("restart", host.restart)
        _hook(timeline, host, "before_gate", target)
        result["gate"] = timeline.run("verify", host.gate, target["version"], target["release_id"])
    except StepError as exc:
        result["gate"] = dict(passed=False, summary="failed: %s" % exc, attempts=[])
    if result["gate"]["passed"]:
        result["msg"] = "%s; gate: %s" % (switched["msg"], result["gate"]["summary"])
        result["timings"] = _timings(timeline)
        return result

    # The new release does not serve: go back before the host rejoins the load balancer.
    result["changed"] = True
    reason = result["gate"]["summary"].replace("failed: ", "", 1)
    result["diagnostics"] = host.diagnose()
    if result["diagnostics"] and result["diagnostics"].get("summary"):
        reason += " [%s]" % result["diagnostics"]["summary"]
    host.mark(target["release_id"], "failed", reason[:500])
    if not previous or not previous.get("release_id"):
        host.stop()
        result.update(outcome=FAILED, reason=reason + "; no previous release to return to (first deployment on "
                                                      "this host): the service is stopped and the host stays out "
                                                      "of the load balancer until a fixed version is deployed (the "
                                                      "checklist counts it as not deployed)")
    else:
        try:
            timeline.run("revert", host.activate, previous["release_id"], True)
            timeline.run("revert", host.restart)
            result["revert_gate"] = timeline.run("revert", host.gate, previous["version"], previous["release_id"])
        except StepError as exc:
            result["revert_gate"] = dict(passed=False, summary="failed: %s" % exc)
        if result["revert_gate"]["passed"]:
            result.update(outcome=REVERTED, reason=reason)
        else:
            host.stop()
            result.update(outcome=FAILED, reason="%s; going back to %s failed too: %s; the service is stopped"
                          % (reason, previous["version"], result["revert_gate"]["summary"].replace("failed: ", "", 1)))
    result["msg"] = "%s: %s" % ("reverted to %s" % previous["release_id"] if result["outcome"] == REVERTED
                                else "host down", result["reason"])
    result["timings"] = _timings(timeline)
    return result


def _has_hook(host, point):
    return getattr(host, "hook", None) is not None and host.has_hook(point)


def _hook(timeline, host, point, release, check_mode=False):
    """Run an extension point's hook on the host; in check mode, none runs (the result lists them)."""
    if not check_mode and _has_hook(host, point):
        timeline.run("hook:" + point, host.hook, point, release)


def _timings(timeline):
    return dict((name, timeline.seconds(name)) for name in ("switch", "restart", "verify", "revert")
                if any(p["name"] == name for p in timeline.phases))
