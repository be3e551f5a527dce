# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of conveyor.deploy.rollout_report: the run's summary and verdict, on the controller."""

from __future__ import annotations

import datetime
import re
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.conveyor.deploy.plugins.module_utils import _proof
from ansible_collections.conveyor.deploy.plugins.module_utils._health import (
    latency_summary, probe_until, summarise,
)
from ansible_collections.conveyor.deploy.plugins.module_utils._probe import probe_http
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _rollout, _runinfo

display = Display()

ARGUMENT_SPEC = {}
STATS = {"deploy": "conveyor_deploy", "rollback": "conveyor_rollback"}


def smoke_test(url, version, requests, proof=None, probe=probe_http):
    """Every one of ``requests`` requests through the load balancer proves ``version``.

    ``proof`` is the plan's smoke_proof (_proof.lb_check); without one, each answer is the version alone.
    """
    params = {"url": url, "method": "GET", "headers": {}, "body": None, "request_timeout": 10,
              "validate_certs": True, "ca_path": None, "status_codes": [200], "body_regex": None}
    pattern, check = None, None
    if proof:
        def check(headers, text):
            return _proof.answer_problem(proof, version, headers, text)
    else:
        params["body_regex"] = "^%s\\s*$" % re.escape(version)
        pattern = re.compile(params["body_regex"])
    tracker, attempts, latencies, elapsed, timed_out = probe_until(
        lambda: probe(params, [], pattern, check), requests, 1, samples=requests, interval=0.05, timeout=30)
    passed = tracker.passed
    return {"passed": passed, "msg": summarise(passed, tracker, elapsed, latency_summary(latencies), attempts,
                                               "smoke " + url, timed_out)}


def report(run, hostvars, now, smoke=None):
    """(summary, failed, message) of a finished run, from the run object and the records on the hosts."""
    forward = _rollout.batch_records(run, hostvars)
    rows = _rollout.rows_of(forward)
    recovered = _rollout.records_of(run, hostvars, _rollout.RECOVER_VAR)
    closed = _rollout.closed_of(forward)
    paused = _rollout.paused_of(run, forward)
    if paused:
        # The run ends paused: its locks hold for rolling_pause_ttl from the pause.
        at = _rollout.parse_stamp(paused.get("at")) or now
        until = datetime.datetime.fromtimestamp(at + run["policy"]["pause_ttl"], datetime.timezone.utc)
        run = dict(run, paused=dict(paused, until=until.strftime("%Y-%m-%dT%H:%M:%SZ")))
    final = _rollout.final_rows(run, rows, recovered, run.get("paused"))
    errors = _rollout.batch_errors(run, hostvars) + _rollout.batch_errors(run, hostvars, _rollout.RECOVER_VAR)
    failed, message = _rollout.verdict(run, final, errors, closed, smoke)
    records = forward + _rollout.batch_records(run, hostvars, _rollout.RECOVER_VAR)
    before = [r["served_before"] for r in records if r.get("served_before") is not None]
    after = [r["served_after"] for r in records if r.get("served_after") is not None]
    served = (max(after) - min(before)) if before and after else None
    found = _rollout.summary(run, final, failed, now, served, smoke)
    analyses = [r["analysis"] for r in records if r.get("analysis") and r.get("direction") == "forward"]
    if analyses:
        # Every analysis of the run (batch, verdict, each metric's value and threshold): set_stats and the change log.
        found["analysis"] = sorted(analyses, key=lambda item: item.get("batch") or 0)
    watched = [r["watch"] for r in records if r.get("watch")]
    if watched:
        found["watch"] = watched[-1]
    return found, failed, message


class ActionModule(ActionBase):
    """Summarise the run, publish it, and run the rollback's smoke test; return the verdict."""

    TRANSFERS_FILES = False
    _requires_connection = False
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
        found, failed, message = report(run, hostvars, time.time())
        smoke = None
        if run["kind"] == "rollback" and run["policy"]["smoke_url"] and not self._task.check_mode and not failed:
            live = sorted(set(row["to"] for row in found["hosts"] if row["outcome"] in _rollout.DONE["rollback"]))
            if len(live) == 1:
                smoke = smoke_test(run["policy"]["smoke_url"], live[0], run["policy"]["smoke_requests"],
                                   run["policy"].get("smoke_proof"))
                found, failed, message = report(run, hostvars, time.time(), smoke)
        rolled_back = run["kind"] == "rollback" or bool(_rollout.records_of(run, hostvars, _rollout.RECOVER_VAR))
        # A paused run is not over: its end-of-run hooks run when promote.yml or abort.yml ends it.
        over = not self._task.check_mode and not found.get("paused")
        ending = _rollout.end_hooks(run, failed, rolled_back) if over else []
        if ending:
            problems = [problem for problem in (_rollout.run_controller_hooks(commands, point, run, env)
                                                for point, commands, env in ending) if problem]
            if problems:
                failed, message = True, " ".join([message] + ["%s." % problem for problem in problems]).strip()
                found["failed"] = True
        contacts = _runinfo.contacts_of(task_vars.get("env_contacts"))
        if failed and contacts:
            # The operator reading a failure learns whom to call (env_contacts).
            message = "%s %s" % (message, _runinfo.contacts_line(contacts))
        for line in _rollout.summary_lines(found):
            _runinfo.say(display, line)
        # The task itself succeeds, or Ansible would drop the stats; the play's next task fails the run.
        # The task files of rolling_hook_tasks that the finish play includes next (none in check mode).
        tasks = _rollout.end_task_hooks(run, failed, rolled_back) if over else []
        result.update(changed=False, summary=found, run_failed=bool(failed), verdict=message, task_hooks=tasks,
                      msg=message or _rollout.summary_lines(found)[0],
                      ansible_stats={"data": {STATS[run["kind"]]: found}, "per_host": False, "aggregate": False})
        return result
