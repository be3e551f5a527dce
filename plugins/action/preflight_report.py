# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of conveyor.deploy.preflight_report: the checklist's fleet checks and its report, in one task."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.conveyor.deploy.plugins.action import approval as approval_action
from ansible_collections.conveyor.deploy.plugins.action import deploy_window as window_action
from ansible_collections.conveyor.deploy.plugins.filter.report import check_table
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _checklist, _holder, _rollout, _runinfo

display = Display()

ARGUMENT_SPEC = {
    "checks": {"type": "list", "elements": "str", "required": True},
    "window": {"type": "dict", "default": {}},
    "approval": {"type": "dict", "default": {}},
    "lb": {"type": "dict", "default": {}},
    "batches": {"type": "raw", "default": [1, "25%", "100%"]},
    "min_healthy_percent": {"type": "float", "default": 50},
    "fleet_size": {"type": "int"},
    "signature": {"type": "dict", "default": {}},
    "host_var": {"type": "str", "default": "__preflight_host"},
    "drift_var": {"type": "str", "default": "environment_changes"},
}
WINDOW_DEFAULTS = {"windows": {}, "environment": "this environment", "now": None, "clock_start": None,
                   "override_reason": "", "fail_when_closed": False}


class ActionModule(ActionBase):
    """Judge the window, the approval, the capacity and the signature, gather every host's rows, and report."""

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        task_vars = task_vars or {}
        checks = args["checks"]
        fleet = []
        unknown = _checklist.unknown_checks(checks)
        if unknown:
            fleet.append({"check": "checks", "passed": False, "summary": "preflight_checks names unknown checks: %s. "
                          "The checks are: %s." % (", ".join(unknown), ", ".join(_checklist.BUILTIN))})
        window, approval = {}, {}
        if "window" in checks:
            window = window_action.decide(dict(WINDOW_DEFAULTS, **args["window"]))
            fleet.append({"check": "window", "passed": window["allowed"], "summary": window["msg"]})
        if "approval" in checks:
            spec = approval_action.options_from(args["approval"], fail_on_invalid=False)
            approval = approval_action.decide(spec, approval_action.deployer_of(spec, task_vars),
                                              self._loader.load_from_file)
            fleet.append({"check": "approval", "passed": approval.get("valid", False),
                          "summary": approval.get("reason") or approval.get("msg") or "not evaluated"})
        hosts = list(task_vars.get("ansible_play_hosts_all") or [])
        hostvars = task_vars.get("hostvars") or {}
        rows = {}
        me = _holder.identity()
        verdicts = {}
        # The heartbeats the plan read on the load balancer, when the checklist runs after one.
        heartbeat = ((task_vars.get(_rollout.PLAN_VAR) or {}).get("run") or {}).get("heartbeat")

        def judge(lock):
            # One verdict per holder: proving a run dead scans this controller's processes.
            key = (lock.get("run_id"), str(lock.get("controller")))
            if key not in verdicts:
                verdicts[key] = _holder.dead_reason(lock, me, heartbeat=heartbeat)
            return verdicts[key]

        for host in hosts:
            found = hostvars[host].get(args["host_var"])
            rows[host] = [_checklist.lock_row(row, judge) if row.get("check") == "lock" else row
                          for row in _checklist.host_rows(found)]
            if "drift" in checks and rows[host][0]["passed"]:
                rows[host].append(_checklist.drift_row(hostvars[host].get(args["drift_var"])))
        if "lb_capacity" in checks:
            fleet.append(self.capacity(args, hosts, task_vars, self.repairs(rows, hostvars)))
        signature = args["signature"]
        if "signature" in checks:
            fleet.append(_checklist.signature_row(signature.get("required"), signature.get("key"),
                                                  signature.get("fetched"), signature.get("gpg"),
                                                  self.published_sha256(hosts, hostvars, args["host_var"]),
                                                  fingerprint=signature.get("fingerprint") or ""))
        found = _checklist.results(fleet, rows, hosts)
        _runinfo.say(display, "\n".join(check_table(found, "host / check", "host")))
        refusal = _checklist.refusal(found)
        change = {"change_id": (approval.get("approval") or {}).get("change_id") or args["approval"].get("change_id", ""),
                  "approver": (approval.get("approval") or {}).get("approver") or args["approval"].get("approver", ""),
                  "override_reason": args["window"].get("override_reason", "") if window.get("overridden") else ""}
        shown = {key: window[key] for key in ("allowed", "open", "overridden", "rule", "reason", "next_open",
                                              "closes_at", "now") if key in window}
        summary = {"passed": not refusal, "checks": found, "change": change, "window": shown}
        # The task succeeds so that Ansible keeps the published stats; the next task refuses the run.
        result.update(changed=False, passed=not refusal, checks=found, refusal=refusal,
                      msg=refusal or "the checklist passed (%d checks)" % len(found),
                      ansible_stats={"data": {"conveyor_preflight": summary}, "per_host": False, "aggregate": False})
        return result

    @staticmethod
    def repairs(rows, hostvars):
        """The load-balancer names of the hosts a dead run left locked: the rollout moves them first."""
        names = set()
        for host, found in rows.items():
            if any(row.get("check") == "lock" and row.get("passed") and row.get("lock") for row in found):
                names.add(_rollout.lb_server_of(hostvars, host, unknown=host))
        return names

    def capacity(self, args, hosts, task_vars, repairs=()):
        lb = args["lb"]
        fleet_size = args["fleet_size"] or len(hosts)
        try:
            plan = _rollout.capacity_plan(args["batches"], len(hosts), args["min_healthy_percent"], fleet_size)
        except _rollout.PlanError as exc:
            return {"check": "lb_capacity", "passed": False, "summary": str(exc)}
        answer = None
        if lb.get("enabled"):
            answer = self._execute_module(module_name="conveyor.deploy.haproxy_info",
                                          module_args={"socket": lb["socket"], "backend": lb["backend"]},
                                          task_vars=task_vars)
        hostvars = task_vars.get("hostvars") or {}
        return _checklist.capacity_row(bool(lb.get("enabled")), answer, (plan["sizes"] or [1])[0],
                                       plan["required_serving"], args["min_healthy_percent"], lb.get("backend"),
                                       repairs, names=_rollout.lb_servers(hostvars, hosts))

    @staticmethod
    def published_sha256(hosts, hostvars, host_var):
        for host in hosts:
            found = hostvars[host].get(host_var) or {}
            sha = (found.get("artifact") or {}).get("sha256")
            if sha:
                return sha
        return ""
