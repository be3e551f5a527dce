# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of conveyor.deploy.rollout_host: a host's run-wide work in one task."""

from __future__ import annotations

import os
import time

from ansible.plugins.action import ActionBase

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _rollout

ARGUMENT_SPEC = {
    "step": {"type": "str", "choices": ["prepare", "resolve", "finish"], "required": True},
    "app_root": {"type": "str"},
    "lb_name": {"type": "str"},
    "lock_ttl": {"type": "int", "default": 3600},
    "force": {"type": "bool", "default": False},
    "probe": {"type": "dict", "default": {}},
    "stage": {"type": "dict", "default": {}},
    "rollback_to": {"type": "str", "default": ""},
    "prepared_var": {"type": "str", "default": "__rolling_prepare"},
}
MODULES = {name: "conveyor.deploy." + name for name in ("release_info", "health_check", "deploy_lock", "release")}


# The change log's phase of each module the steps run, by (module, state); any other is "finish".
PHASES = {("release_info", None): "inspect", ("health_check", None): "inspect", ("deploy_lock", None): "lock",
          ("release", None): "stage"}


class ActionModule(ActionBase):
    """Inspect, lock and stage (or resolve a rollback target and lock), or finish a host."""

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        self._vars = task_vars or {}
        self._diffs = []
        self._changed = False
        self._phases = []
        self._origin = time.monotonic()
        try:
            run = _rollout.run_from(self._vars, planned=args["step"] in ("prepare", "resolve"))
        except _rollout.PlanError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        host = self._vars.get("inventory_hostname")
        args["app_root"] = args["app_root"] or run["app_root"]
        out = getattr(self, args["step"])(run, args, host)
        out.setdefault("lb_name", args.get("lb_name") or host)
        result.update(out, changed=self._changed, phases=self._phases)
        if self._diffs:
            result["diff"] = self._diffs
        return result

    def call(self, name, **module_args):
        start = time.monotonic()
        answer = self._execute_module(module_name=MODULES[name], module_args=module_args, task_vars=self._vars)
        self.timed(PHASES.get((name, module_args.get("state")), "finish"), start, answer.get("failed"))
        if answer.get("changed"):
            self._changed = True
        if answer.get("diff"):
            self._diffs.extend(answer["diff"] if isinstance(answer["diff"], list) else [answer["diff"]])
        return answer

    def timed(self, name, start, failed=False):
        """One step, as the change log draws it: offsets from the task's start."""
        step = {"name": name, "start_s": round(start - self._origin, 3),
                "end_s": round(time.monotonic() - self._origin, 3), "failed": bool(failed)}
        if self._phases and self._phases[-1]["name"] == name and not self._phases[-1]["failed"]:
            self._phases[-1].update(end_s=step["end_s"], failed=step["failed"])
        else:
            self._phases.append(step)

    def lock(self, run, args, record):
        answer = self.call("deploy_lock", app_root=args["app_root"], run_id=run["run_id"], owner=run["actor"],
                           ttl=args["lock_ttl"], pid=os.getppid())
        if answer.get("failed"):
            record["error"] = "lock: %s" % answer.get("msg")
        else:
            record["locked"] = not self._task.check_mode
        return record

    def prepare(self, run, args, host):
        info = self.call("release_info", app_root=args["app_root"])
        if info.get("failed"):
            return {"error": "inspect: %s" % info.get("msg"), "work": False}
        current = info.get("current") or {}
        record = {"from": current, "back": current, "to": {"release_id": run["release_id"], "version": run["version"]},
                  "work": True}
        if (not args["force"] and current.get("version") == run["version"] and current.get("state") == "good"
                and args["probe"]):
            probe = self.call("health_check", success_threshold=1, failure_threshold=1, timeout=10, **args["probe"])
            if probe.get("passed"):
                return dict(record, to=current, work=False,
                            skip_reason="already runs %s and is healthy" % run["version"])
        self.lock(run, args, record)
        if record.get("error"):
            return record
        stage = dict(args["stage"], app_root=args["app_root"], release_id=run["release_id"], version=run["version"],
                     staged_by=run["actor"], run_id=run["run_id"])
        answer = self.call("release", **{key: value for key, value in stage.items() if value not in (None, "")})
        if answer.get("failed"):
            record["error"] = "stage: %s" % answer.get("msg")
        record["msg"] = answer.get("msg")
        if not record.get("error") and not self._task.check_mode:
            record.update(self.after_stage(run, args))
        return record

    def after_stage(self, run, args):
        """The after_stage extension point: its commands in the staged release's directory."""
        env = {"CONVEYOR_HOOK": "after_stage", "CONVEYOR_RUN_ID": run["run_id"], "CONVEYOR_VERSION": run["version"],
               "CONVEYOR_RELEASE_ID": run["release_id"], "CONVEYOR_APP_ROOT": args["app_root"]}
        for command in (run.get("hooks") or {}).get("after_stage") or []:
            start = time.monotonic()
            answer = self._execute_module(
                module_name="ansible.builtin.command", task_vars=self._vars,
                module_args={"argv": ["/usr/bin/env"] + ["%s=%s" % item for item in sorted(env.items())]
                             + ["/bin/sh", "-c", command],
                             "chdir": os.path.join(args["app_root"], "releases", run["release_id"])})
            self.timed("stage", start, answer.get("rc") != 0)
            if answer.get("rc") != 0 or answer.get("failed"):
                output = " ".join(str(answer.get("stderr") or answer.get("stdout") or answer.get("msg") or "").split())
                return {"error": "after_stage hook %r exited %s: %s" % (command, answer.get("rc"), output[:200])}
        return {}

    def resolve(self, run, args, host):
        target = {"target": args["rollback_to"]} if args["rollback_to"] else {"target_previous_good": True}
        info = self.call("release_info", app_root=args["app_root"], **target)
        if info.get("failed"):
            return {"error": info.get("msg"), "work": False}
        record = _rollout.rollback_move(info, args["rollback_to"])
        if record.get("work") and not record.get("error"):
            self.lock(run, args, record)
        return record

    def finish(self, run, args, host):
        hostvars = self._vars.get("hostvars") or {}
        rows = _rollout.records_of(run, hostvars)
        recovered = _rollout.records_of(run, hostvars, _rollout.RECOVER_VAR)
        mine = (rows.get(host) or {}).get("outcome")
        move = run["moves"].get(host) or {}
        done = []
        if not self._task.check_mode:
            if run["kind"] == "deploy":
                if (recovered.get(host) or {}).get("outcome") == "rolled_back":
                    done.append(self.call("release", app_root=args["app_root"], release_id=run["release_id"],
                                          state="failed", run_id=run["run_id"],
                                          reason="fleet rollback: the release failed on another host in run %s"
                                          % run["run_id"]))
                elif mine == "deployed" and not _rollout.deploy_failed(run, rows):
                    done.append(self.call("release", app_root=args["app_root"], release_id=run["release_id"],
                                          state="good", run_id=run["run_id"]))
                    done.append(self.call("release", app_root=args["app_root"], state="pruned",
                                          keep=run["policy"]["keep_releases"], run_id=run["run_id"]))
            elif mine == "rolled_back" and not run["policy"]["not_release_fault"] and move.get("back", {}).get("release_id"):
                done.append(self.call("release", app_root=args["app_root"], release_id=move["back"]["release_id"],
                                      state="failed", run_id=run["run_id"],
                                      reason="rolled back" + (": " + run["reason"] if run["reason"] else "")))
        if (self._vars.get(args["prepared_var"]) or {}).get("locked"):
            done.append(self.call("deploy_lock", app_root=args["app_root"], run_id=run["run_id"], state="absent"))
        problems = [answer.get("msg") for answer in done if answer.get("failed")]
        return {"outcome": mine or "", "msg": "; ".join(problems) or "finished", "problems": problems}
