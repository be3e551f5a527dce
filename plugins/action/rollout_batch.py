# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of conveyor.deploy.rollout_batch: one load-balancer call per batch, and the batch's judgement."""

from __future__ import annotations

import json
import math
import time

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.six.moves.urllib.parse import urlencode
from ansible.module_utils.urls import open_url
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.conveyor.deploy.plugins.action.deploy_window import decide as window_decision
from ansible_collections.conveyor.deploy.plugins.module_utils._probe import probe_http
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _analysis, _rollout, _runinfo

display = Display()

ARGUMENT_SPEC = {
    "step": {"type": "str", "choices": ["drain", "done"], "required": True},
    "direction": {"type": "str", "choices": ["forward", "recover"], "default": "forward"},
    "drain_var": {"type": "str", "default": "__rolling_drain"},
    "cutover_var": {"type": "str", "default": "__rolling_cutover"},
    "record_var": {"type": "str", "default": _rollout.BATCH_VAR},
}
HAPROXY_SERVER = "conveyor.deploy.haproxy_server"


def window_problem(run, direction):
    """Why no new batch of a deploy may start (the window closed), or ''."""
    policy = run["policy"]
    if run["kind"] != "deploy" or direction != "forward" or not policy["windows"] or policy["override_reason"]:
        return ""
    found = window_decision({"windows": policy["windows"], "environment": policy["environment"],
                             "now": policy["window_now"] or None,
                             "clock_start": run["t_start"] if policy["window_now"] else None,
                             "override_reason": "", "fail_when_closed": False})
    if found["allowed"]:
        return ""
    return ("The deployment window closed (%s: %s). The batches already deployed stay; no new batch starts. "
            "Next window: %s." % (found["rule"], found["reason"], found.get("next_open") or "none"))


def earlier_hosts(batches, index):
    """The hosts of the batches before batch ``index`` (1-based): where this run's earlier records are."""
    return [host for batch in batches[:max(index - 1, 0)] for host in batch]


def drained_ahead(run, hostvars, args, index, batches=None):
    """The drain of batch ``index`` that the previous batch's done step made, or None."""
    carriers = earlier_hosts(batches, index) if batches is not None else None
    for record in _rollout.batch_records(run, hostvars, args["record_var"], carriers):
        ahead = record.get("next_drain")
        if (record.get("index") == index - 1 and record.get("direction") == args["direction"]
                and isinstance(ahead, dict) and ahead.get("index") == index):
            return dict(ahead, changed=False)
    return None


def prometheus_query(url, query, timeout):
    """(value, error) of one instant PromQL query (the largest value when it returns several series)."""
    try:
        with open_url("%s/api/v1/query?%s" % (url, urlencode({"query": query})), timeout=timeout,
                      follow_redirects="safe") as response:
            answer = json.loads(response.read().decode("utf-8"))
    except Exception as exc:  # pylint: disable=broad-except
        # Any failure to ask (refused, timeout, TLS, HTTP 400 for a bad query, not JSON) is an inconclusive result.
        return None, "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
    if answer.get("status") != "success":
        return None, "Prometheus answered %s: %s" % (answer.get("status"), answer.get("error") or "")
    values = []
    for series in (answer.get("data") or {}).get("result") or []:
        try:
            values.append(float(series["value"][1]))
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    values = [value for value in values if not math.isnan(value)]
    return (max(values), None) if values else (None, None)


def probe_requests(config):
    """[(ok, latency_ms, reason)] of rolling_analysis.probe's requests through the load balancer, one after another."""
    probe = config.get("probe")
    if not probe:
        return []
    params = {"url": probe["url"], "method": "GET", "headers": {}, "body": None, "request_timeout": probe["timeout"],
              "validate_certs": True, "ca_path": None, "status_codes": [200], "body_regex": None}
    outcomes = []
    for dummy in range(int(probe["requests"])):
        ok, status, latency, reason = probe_http(params, [], None)
        # The body varies from answer to answer: the reason without it.
        outcomes.append((ok, latency, (reason or "").split(" (body:")[0]))
    return outcomes


def served(answer):
    return sum(int(server.get("served") or 0) for server in (answer or {}).get("servers") or [])


class ActionModule(ActionBase):
    """Drain a batch, or re-enable it and judge it, on the load-balancer host the task is delegated to."""

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        task_vars = task_vars or {}
        try:
            run = _rollout.run_from(task_vars)
        except _rollout.PlanError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        hostvars = task_vars.get("hostvars") or {}
        batches = self.batches(run, hostvars, args["direction"])
        play_batch = list(task_vars.get("ansible_play_batch") or [])
        planned = next((batch for batch in batches if set(batch) & set(play_batch)), play_batch)
        index = batches.index(planned) + 1 if planned in batches else 0
        if args["step"] == "drain":
            result.update(self.drain_step(run, args, task_vars, hostvars, planned, play_batch, index, batches))
            # The notify callback tells an operator's abort (playbooks/abort.yml) from an automatic rollback.
            result["abort"] = bool(run.get("abort"))
        else:
            result.update(self.done(run, args, task_vars, hostvars, planned, play_batch, index, batches))
        return result

    def drain_step(self, run, args, task_vars, hostvars, planned, play_batch, index, batches):
        """This batch's drain: the one the previous batch's done step made, or a new one."""
        ahead = drained_ahead(run, hostvars, args, index, batches)
        if ahead is None:
            # The first batch of a promote gives a paused canary its full weight back in its drain call.
            resumed = run.get("resumed") or {}
            weights = resumed.get("restore") if args["direction"] == "forward" and index == run.get("start_batch", -1) + 1 \
                else None
            return self.drain(run, args, task_vars, planned, play_batch, index, len(batches), weights=weights)
        # Hosts drained ahead that left the play since (unreachable) rejoin at once.
        gone = [host for host in ahead["moving"] if host not in play_batch]
        if gone and run["lb"].get("enabled"):
            self.lb_call(run, [run["moves"][host]["lb_name"] for host in gone], "enabled", task_vars,
                         wait_timeout=run["policy"]["up_timeout"])
        return dict(ahead, moving=[host for host in ahead["moving"] if host in play_batch])

    @staticmethod
    def batches(run, hostvars, direction):
        if direction == "forward":
            return run["batches"]
        return _rollout.recovery_of(run, _rollout.batch_records(run, hostvars))[1]

    def lb_call(self, run, servers, state, task_vars, **extra):
        """One haproxy_server execution on the load balancer; a failed answer when it does not answer.

        An unreachable load balancer is judged like any failed drain or re-enable (the batch stops, and
        the finish play still releases the locks); as an unreachable result it would take every host of
        the batch out of the play, and out of the failure policy and the finish play with it.
        """
        lb = run["lb"]
        # Every call renews this run's locks (module_utils/_heartbeat.py).
        args = dict(socket=lb["socket"], backend=lb["backend"], servers=servers, state=state,
                    heartbeat=_rollout.heartbeat_args(run), **extra)
        try:
            return self._execute_module(module_name=HAPROXY_SERVER, module_args=args, task_vars=task_vars)
        except AnsibleConnectionFailure as exc:
            return {"failed": True, "unreachable_lb": True,
                    "msg": "the load balancer %s did not answer (%s): no other host is switched"
                           % (lb.get("host"), str(exc).splitlines()[0][:200])}

    def drain(self, run, args, task_vars, planned, play_batch, index, total, weights=None):
        moving = [host for host in planned if host in play_batch]
        out = {"changed": False, "index": index, "batches": total, "hosts": planned, "moving": moving,
               "closed": "", "drain": None, "served_before": None, "lb_window": [time.time(), None]}
        out = self._drain(run, args, task_vars, out, index, total, weights or {})
        out["lb_window"][1] = time.time()
        return out

    def _drain(self, run, args, task_vars, out, index, total, weights):
        moving = out["moving"]
        closed = window_problem(run, args["direction"])
        if closed:
            _runinfo.say(display, "Batch %d of %d not started: %s" % (index, total, closed))
            if weights and run["lb"].get("enabled"):
                # The canary passed before the window closed: it keeps serving, with its full weight.
                self.lb_call(run, list(weights), "enabled", task_vars, wait_timeout=run["policy"]["up_timeout"],
                             weights=weights)
            return dict(out, moving=[], closed=closed, msg=closed)
        if run["lb"].get("enabled") and moving:
            answer = self.lb_call(run, [run["moves"][host]["lb_name"] for host in moving], "drained", task_vars,
                                  min_healthy_percent=run["policy"]["min_healthy_percent"],
                                  wait_timeout=run["policy"]["drain_timeout"], weights=weights)
            keep = {key: answer.get(key) for key in ("msg", "waited_s", "failed", "changed")}
            out.update(drain=keep, changed=bool(answer.get("changed")), served_before=served(answer),
                       diff=answer.get("diff"))
            if answer.get("failed"):
                return dict(out, moving=[], msg="drain: %s" % answer.get("msg"))
        return dict(out, msg="batch %d of %d: %s" % (index, total, ", ".join(moving) or "nothing to move"))

    def done(self, run, args, task_vars, hostvars, planned, play_batch, index, batches):
        started = time.time()
        drain = task_vars.get(args["drain_var"]) or {}
        moving = list(drain.get("moving") or [])
        labels = _rollout.LABELS["recover"] if args["direction"] == "recover" else run["labels"]
        results = {}
        for host in moving:
            if host in play_batch:
                results[host] = hostvars[host].get(args["cutover_var"])
        # The drain step kept the load balancer's answer (msg, failed, waited_s).
        drain_view = drain.get("drain") or {}
        record = _rollout.judge_batch(run, planned, moving, results, labels, drain_view, None,
                                      closed=drain.get("closed") or "")
        out = {"changed": False}
        window, restore = self.window_of(run, args, index, record, self._task.check_mode), {}
        if run["lb"].get("enabled") and moving:
            back = [run["moves"][host]["lb_name"] for host in moving
                    if host in play_batch and record["hosts"][host]["outcome"] not in ("failed", "unreachable")]
            if back:
                # Full weight, unless this is the canary: a canary an interrupted run left light gets it back.
                weights = dict((server, 100) for server in back)
                if window and index == 1 and run["policy"]["canary"]["enabled"]:
                    weights = dict((server, run["policy"]["canary"]["weight"]) for server in back)
                    restore = dict((server, 100) for server in back)
                    _runinfo.say(display, "Canary: %s rejoin%s at %d%% of %s weight for %.0f s, then the analysis"
                                 % (", ".join(back), "s" if len(back) == 1 else "", run["policy"]["canary"]["weight"],
                                    "its" if len(back) == 1 else "their", window))
                elif window:
                    _runinfo.say(display, "Analysing the live traffic for %.0f s" % window)
                answer = self.lb_call(run, back, "enabled", task_vars, wait_timeout=run["policy"]["up_timeout"],
                                      mark_up=back if run["policy"]["mark_up"] else [], weights=weights,
                                      observe=window if not record["stop"] else 0)
                enable = {key: answer.get(key) for key in ("msg", "failed")}
                out.update(changed=bool(answer.get("changed")), diff=answer.get("diff"), served_after=served(answer))
                if enable.get("failed"):
                    record = _rollout.judge_batch(run, planned, moving, results, labels, drain_view, enable,
                                                  closed=drain.get("closed") or "")
                    if restore:
                        # Whatever happens next, the canary does not stay light.
                        self.lb_call(run, list(restore), "drained", task_vars, weights=restore,
                                     wait_timeout=run["policy"]["drain_timeout"])
                elif answer.get("observed"):
                    earlier = _rollout.batch_records(run, hostvars, args["record_var"], earlier_hosts(batches, index))
                    restore = self.analyse(run, task_vars, record, (index, batches, earlier), back, answer["observed"],
                                           restore)
        if (index == len(batches) and not record["stop"] and args["direction"] == "forward" and run["kind"] == "deploy"
                and (run["policy"].get("analysis") or {}).get("watch_seconds") and run["lb"].get("enabled")
                and not self._task.check_mode):
            self.watch(run, task_vars, hostvars, args, record, (index, batches))
        hooks = (run.get("hooks") or {}).get("after_batch")
        if hooks and args["direction"] == "forward" and not self._task.check_mode:
            problem = _rollout.run_controller_hooks(hooks, "after_batch", run, {
                "CONVEYOR_BATCH": str(index), "CONVEYOR_BATCHES": str(len(batches)),
                "CONVEYOR_HOSTS": ",".join(planned)})
            if problem:
                record.update(error=problem, stop=True)
        if not record["stop"] and _rollout.pausing(run, index, len(batches), args["direction"]):
            # rolling_pause_after: the run ends here, its lock held and a canary left at its weight, until
            # playbooks/promote.yml or playbooks/abort.yml continues it.
            record["paused"] = {"after_batch": index, "batches": len(batches), "restore": restore,
                                "canary_weight": run["policy"]["canary"]["weight"] if restore else None,
                                "at": _rollout.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")}
            restore = {}
        # Every earlier record of the run rides along, so that a reader finds them all on one host.
        earlier = [_rollout.slim(found) for found in
                   _rollout.batch_records(run, hostvars, args["record_var"], earlier_hosts(batches, index))]
        record.update(index=index, batches=len(batches), direction=args["direction"], run_id=run["run_id"],
                      served_before=drain.get("served_before"), served_after=out.get("served_after"), earlier=earlier)
        rows = dict(_rollout.rows_of(earlier))
        rows.update(record["hosts"])
        line, figures = _rollout.progress(run, record, rows, time.time(),
                                          "Recovery batch" if args["direction"] == "recover" else "Batch", batches)
        _runinfo.say(display, line)
        out.update(record, msg=line, figures=figures, lb_window=[started, time.time()])
        if not record["stop"] and not record.get("paused") and index < len(batches):
            if (args["direction"] == "forward" and run["policy"]["bake_seconds"] > 0 and not self._task.check_mode
                    and not window):
                _runinfo.say(display, "Baking %s s before the next batch" % run["policy"]["bake_seconds"])
                time.sleep(run["policy"]["bake_seconds"])
            # The next batch leaves the load balancer now, in this task: its own drain step finds it done (a canary
            # that passed gets its full weight back in the same call).
            following = batches[index]
            out["next_drain"] = self.drain(run, args, task_vars, following, following, index + 1, len(batches),
                                           weights=restore)
            out["changed"] = out["changed"] or out["next_drain"]["changed"]
        elif restore and not record["stop"]:
            answer = self.lb_call(run, list(restore), "enabled", task_vars, wait_timeout=run["policy"]["up_timeout"],
                                  weights=restore)
            if answer.get("failed"):
                record.update(stop=True, error="restoring the canary's weight: %s" % answer.get("msg"))
                out.update(stop=True, error=record["error"])
        return out

    def watch(self, run, task_vars, hostvars, args, record, where):
        """After the last batch: the analysis goes on for rolling_watch_seconds over every server on the new release;
        a breach stops the run and the whole fleet goes back (whatever the failure policy)."""
        index, batches = where
        config = run["policy"]["analysis"]
        earlier = _rollout.batch_records(run, hostvars, args["record_var"], earlier_hosts(batches, index))
        rows = dict(_rollout.rows_of(earlier))
        rows.update(record["hosts"])
        on_new = [host for host in run["hosts"] if (rows.get(host) or {}).get("outcome") == "deployed"
                  or (host in run["moves"] and host not in run["work"] and not run["aborted"])]
        seconds = float(config["watch_seconds"])
        _runinfo.say(display, "Watching the live traffic of %s for %.0f s after the last batch"
                     % (", ".join(on_new), seconds))
        answer = self.lb_call(run, [], "enabled", task_vars, observe=seconds)
        if answer.get("failed") or not answer.get("observed"):
            found = {"verdict": "inconclusive", "seconds": seconds, "new": None, "baseline": None,
                     "results": [{"metric": "source", "value": None, "threshold": None, "verdict": "inconclusive",
                                  "detail": "the load balancer did not answer: %s" % answer.get("msg")}]}
        else:
            reference = _analysis.reference_of([r.get("analysis") for r in earlier] + [record.get("analysis")])
            servers = [run["moves"][host]["lb_name"] for host in on_new]
            found = _analysis.judge(answer["observed"].get("before") or {}, answer["observed"].get("after") or {},
                                    servers, [], config, seconds, reference)
            found = _analysis.with_results(found, _analysis.prometheus_results(
                config, run["lb"]["backend"], servers, [], seconds, prometheus_query)
                + _analysis.probe_results(config, probe_requests(config)))
        found.update(batch=index, watch=True)
        record["watch"] = found
        text = _analysis.line(found)
        _runinfo.say(display, "Watch after the last batch: %s" % text)
        if _analysis.stops(found, config):
            record.update(stop=True, error="watch after the last batch: %s" % text)
            for row in record["hosts"].values():
                row["watch_failed"] = True

    @staticmethod
    def window_of(run, args, index, record, check_mode=False):
        """Seconds of live traffic to analyse after this batch rejoins (0: no analysis, as in check mode)."""
        policy = run["policy"]
        analysis = policy.get("analysis") or {}
        if (args["direction"] != "forward" or run["kind"] != "deploy" or not analysis.get("enabled")
                or not run["lb"].get("enabled") or record["stop"] or check_mode):
            return 0
        if index == 1 and (policy.get("canary") or {}).get("enabled"):
            return float(policy["canary"]["seconds"])
        return max(float(analysis["seconds"]), float(policy["bake_seconds"] or 0))

    def analyse(self, run, task_vars, record, where, back, observed, restore):
        """Judge the window the enable call observed; drain the batch again when it fails. Returns the weights
        still to restore. ``where``: (this batch's index, the batches, the earlier batches' records)."""
        index, batches, earlier = where
        config = run["policy"]["analysis"]
        rows = dict(_rollout.rows_of(earlier))
        moved = [host for batch in batches[:index] for host in batch]
        new = sorted(set(back) | set(run["moves"][host]["lb_name"] for host in moved
                                     if (rows.get(host) or {}).get("outcome") == "deployed"))
        if index == 1 and run["policy"]["canary"]["enabled"]:
            new = list(back)
        baseline = [run["moves"][host]["lb_name"] for batch in batches[index:] for host in batch]
        seconds = float(observed.get("seconds") or 0)
        analysis = _analysis.judge(observed.get("before") or {}, observed.get("after") or {}, new, baseline, config,
                                   seconds)
        analysis = _analysis.with_results(analysis, _analysis.prometheus_results(
            config, run["lb"]["backend"], new, baseline, seconds, prometheus_query)
            + _analysis.probe_results(config, probe_requests(config)))
        analysis.update(batch=index, canary=bool(restore))
        record["analysis"] = analysis
        text = _analysis.line(analysis)
        _runinfo.say(display, "Batch %d of %d: %s" % (index, len(batches), text))
        if not _analysis.stops(analysis, config):
            return restore
        # Out of rotation at once, with its full weight back: the fleet recovery switches it back.
        answer = self.lb_call(run, back, "drained", task_vars, wait_timeout=run["policy"]["drain_timeout"],
                              weights=dict((server, 100) for server in back))
        error = text + (" (and draining it again failed: %s)" % answer.get("msg") if answer.get("failed") else "")
        record.update(stop=True, error=error)
        for host, row in record["hosts"].items():
            if run["moves"][host]["lb_name"] in back:
                row["analysis_failed"] = True
        return {}
