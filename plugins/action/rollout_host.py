# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of conveyor.deploy.rollout_host: a host's run-wide work in one task."""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _holder, _rollout

ARGUMENT_SPEC = {
    "step": {"type": "str", "choices": ["prepare", "resolve", "finish", "resume", "adopt"], "required": True},
    "app_root": {"type": "str"},
    "lb_name": {"type": "str"},
    "lock_ttl": {"type": "int", "default": 3600},
    "force": {"type": "bool", "default": False},
    "probe": {"type": "dict", "default": {}},
    "stage": {"type": "dict", "default": {}},
    "artifact_username": {"type": "str", "default": ""},
    "artifact_password": {"type": "str", "default": "", "no_log": True},
    "rollback_to": {"type": "str", "default": ""},
    "prepared_var": {"type": "str", "default": "__rolling_prepare"},
    # How the after_stage hooks run: {user, env_files} (host_steps' hook_user, hook_env_files).
    "hooks": {"type": "dict", "default": {}},
    "censor": {"type": "list", "elements": "str", "default": [], "no_log": True},
    # resume: the paused run wanted ("" for whichever holds the host).
    "run_id": {"type": "str", "default": ""},
}
HOST_STEPS = "conveyor.deploy.host_steps"
# Seconds an older run waits, on a host, for the lock of a run started with it (that one gives up).
YOUNGER_RUN_WAIT = 60
# The change log's phase of each step of the host_steps module.
PHASES = {"inspect": "inspect", "probe": "inspect", "lock": "lock", "stage": "stage", "after_stage": "stage"}


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
            host = self._vars.get("inventory_hostname")
            if args["step"] == "resume":
                result.update(self.resume(args, host), changed=self._changed, phases=self._phases)
                return result
            if args["step"] == "adopt":
                result.update(self.adopt(_rollout.run_from(self._vars), args, host), changed=self._changed,
                              phases=self._phases)
                return result
            run = _rollout.run_from(self._vars, planned=args["step"] in ("prepare", "resolve"))
            args["app_root"] = args["app_root"] or run["app_root"]
            out = getattr(self, args["step"])(run, args, host)
        except _rollout.PlanError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        out.setdefault("lb_name", args.get("lb_name") or host)
        result.update(out, changed=self._changed, phases=self._phases)
        if self._diffs:
            result["diff"] = self._diffs
        return result

    def call(self, **module_args):
        """One host_steps execution; its own step timings are placed on the task's clock."""
        start = time.monotonic()
        answer = self._execute_module(module_name=HOST_STEPS, module_args=module_args, task_vars=self._vars)
        offset = start - self._origin
        for step in answer.get("steps") or []:
            self.timed(PHASES.get(step["name"], "finish"), self._origin + offset + step["start_s"], step["failed"],
                       end=self._origin + offset + step["end_s"])
        if answer.get("changed"):
            self._changed = True
        if answer.get("diff"):
            self._diffs.extend(answer["diff"] if isinstance(answer["diff"], list) else [answer["diff"]])
        return answer

    def timed(self, name, start, failed=False, end=None):
        """One step, as the change log draws it: offsets from the task's start."""
        step = {"name": name, "start_s": round(start - self._origin, 3),
                "end_s": round((end or time.monotonic()) - self._origin, 3), "failed": bool(failed)}
        if self._phases and self._phases[-1]["name"] == name and not self._phases[-1]["failed"]:
            self._phases[-1].update(end_s=step["end_s"], failed=step["failed"])
        else:
            self._phases.append(step)

    @staticmethod
    def lock_options(run, args):
        """The lock of this run, naming the ansible-playbook process the plan ran under.

        Raises PlanError in a worker that outlived that process (its playbook was killed): such a worker
        must not take a lock that would look alive for ever.
        """
        me = run.get("controller") or _holder.identity()
        if _holder.orphaned(me):
            raise _rollout.PlanError("the ansible-playbook process %s of run %s is gone: not taking a lock"
                                     % (me.get("pid"), run["run_id"]))
        # A run started at the same time gives up at once on this run's locks and releases its own while it
        # aborts, which takes a few seconds: wait that long for it.
        options = {"owner": run["actor"], "ttl": args["lock_ttl"], "pid": me["pid"], "controller": me,
                   "wait_younger": YOUNGER_RUN_WAIT}
        if run.get("changelog_anchor"):
            options["changelog_anchor"] = run["changelog_anchor"]
        renewed = (run.get("lock") or {}).get("renewed")
        if renewed:
            # The run's load-balancer calls renew the lock (its heartbeats): a short time to live is safe.
            options.update(renewed=renewed, bound=int((run.get("lock") or {}).get("bound_s") or 0))
        return options

    def call_locking(self, run, **steps):
        """One host_steps execution; again, taking the lock over, when it failed on the lock of a dead run.

        Only the controller can prove a run dead (its process on this controller is gone, or its heartbeats
        on the load balancer stopped: ``run["heartbeat"]``, read when the run was planned), so the module
        cannot decide it; the second execution costs a round-trip only on a host that needs repair.
        """
        answer = self.call(**steps)
        held = answer.get("lock_held") if answer.get("failed_step") == "lock" else None
        why = _holder.dead_reason(held, steps["lock"]["controller"], heartbeat=run.get("heartbeat")) if held else None
        if why:
            steps["lock"] = dict(steps["lock"], takeover=held.get("run_id"), reason=why)
            answer = self.call(**steps)
        return answer

    @staticmethod
    def repaired(record, answer):
        """Note a taken-over lock in the host's record: the host goes through its batch whatever it runs."""
        taken = answer.get("took_over")
        if taken:
            lock = taken.get("lock") or {}
            record["took_over"] = {"run_id": taken.get("run_id"), "reason": taken.get("reason"),
                                   "owner": lock.get("owner") or "", "started_at": lock.get("started_at") or ""}
        return record

    def prepare(self, run, args, host):
        """Inspect, (probe,) lock, stage and run the after_stage hooks: one module execution."""
        refused = (run.get("gates") or {}).get("refused")
        if refused:
            # Production's window and approval, judged by the plan: whatever the checklist ran, no host changes.
            raise _rollout.PlanError("This production deploy is refused by its gates, which the rollout enforces "
                                     "whatever the checklist ran: %s" % refused)
        stage = dict(args["stage"], release_id=run["release_id"], version=run["version"], staged_by=run["actor"],
                     run_id=run["run_id"])
        steps = {"app_root": args["app_root"], "run_id": run["run_id"], "lock": self.lock_options(run, args),
                 "stage": dict((key, value) for key, value in stage.items() if value not in (None, "")),
                 "after_stage": (run.get("hooks") or {}).get("after_stage") or []}
        if steps["after_stage"]:
            hooks = args["hooks"]
            steps.update(hook_user=hooks.get("user") or "root", hook_env_files=hooks.get("env_files") or [],
                         censor=args["censor"],
                         hook_env={"CONVEYOR_HOST": host, "CONVEYOR_KIND": run["kind"]})
        if args["artifact_username"]:
            # Top-level options of host_steps, which marks the password no_log (stage is a free-form dict).
            steps.update(artifact_username=args["artifact_username"], artifact_password=args["artifact_password"])
        rejoin = (args.get("lb_name") or host) in (run.get("out_of_rotation") or [])
        if not args["force"] and not rejoin and (args["probe"] or {}).get("url"):
            # A host out of the load balancer's rotation is not skipped: its batch puts it back.
            steps["skip_if_live"] = dict(args["probe"], version=run["version"])
        answer = self.call_locking(run, **steps)
        current = answer.get("current") or {}
        record = {"from": current, "back": current, "to": {"release_id": run["release_id"], "version": run["version"]},
                  "work": True}
        if answer.get("skipped"):
            return dict(record, to=current, work=False, skip_reason=answer["skipped"])
        if answer.get("locked"):
            record["locked"] = True
        self.repaired(record, answer)
        if answer.get("failed"):
            # The module's message names the step that failed (inspect, lock, stage, or the after_stage hook).
            record["error"] = answer.get("msg") or "failed"
            if answer.get("failed_step") in (None, "inspect"):
                record["work"] = False
        record["msg"] = answer.get("msg")
        return record

    def resolve(self, run, args, host):
        """Resolve the host's rollback target and lock it when it moves: one module execution."""
        target = {"target": args["rollback_to"]} if args["rollback_to"] else {"target_previous_good": True}
        answer = self.call_locking(run, app_root=args["app_root"], run_id=run["run_id"], lock=self.lock_options(run, args),
                                   **target)
        if answer.get("failed") and answer.get("failed_step") in (None, "inspect"):
            return {"error": answer.get("msg") or "failed", "work": False}
        record = self.repaired(_rollout.rollback_move(answer, args["rollback_to"], repair=bool(answer.get("took_over"))),
                               answer)
        record = _rollout.past_migrations(record, answer.get("target_crosses"), run.get("past_migration_reason") or "")
        if answer.get("locked"):
            # Taken whenever the target differs from the live release; finish releases it even if the host stays.
            record["locked"] = True
        if answer.get("failed") and record.get("work") and not record.get("error"):
            record["error"] = answer.get("msg") or "failed"
        return record

    def resume(self, args, host):
        """promote.yml, abort.yml: read what the paused run left on this host (one module execution, nothing changed).
        The record (``paused``, ``state``, ``error``) is what the plan's resume step reads; ``adopt`` then takes the
        locks, once every host was checked (a refusal leaves the pause as it was)."""
        if not args["app_root"]:
            raise _rollout.PlanError("app_root is not set: give the application's directory (rolling_app_root)")
        answer = self.call(app_root=args["app_root"], run_id=args["run_id"], lock={"resume": "peek", "ttl": 1})
        record = {"paused": answer.get("paused"), "state": answer.get("state"), "msg": answer.get("msg")}
        if answer.get("failed"):
            record["error"] = answer.get("msg") or "failed"
        return record

    def adopt(self, run, args, host):
        """Hand the paused run's lock on this host to this process (renewed by its heartbeats): one module execution,
        none on a host the run does not move. A host that cannot is left out of the run (the task fails there)."""
        if host not in run["work"]:
            return {"locked": False, "msg": "not a host the paused run moves"}
        # The run's own lock, as prepare takes it (this process, renewed by the run's heartbeats), handed over.
        lock = dict(self.lock_options(run, args), resume="take")
        answer = self.call(app_root=run["app_root"], run_id=run["run_id"], lock=lock)
        if answer.get("failed") or not answer.get("locked") and not self._task.check_mode:
            return {"failed": True, "locked": False, "msg": "could not take back the lock of paused run %s: %s" % (
                run["run_id"], answer.get("msg") or "failed")}
        return {"locked": not self._task.check_mode, "msg": answer.get("msg")}

    def finish(self, run, args, host):
        """Mark, prune and release the lock (or keep it, paused): one module execution, or none when there is
        nothing to do."""
        hostvars = self._vars.get("hostvars") or {}
        records = _rollout.batch_records(run, hostvars)
        rows = _rollout.rows_of(records)
        recovered = _rollout.records_of(run, hostvars, _rollout.RECOVER_VAR)
        mine = (rows.get(host) or {}).get("outcome")
        locked = bool((self._vars.get(args["prepared_var"]) or {}).get("locked"))
        paused = _rollout.paused_of(run, records)
        if paused:
            # The run keeps its locks until promote.yml or abort.yml; nothing is marked or pruned yet.
            if not locked:
                return {"outcome": mine or "waiting", "msg": "paused; this host holds no lock of the run", "problems": []}
            answer = self.call(app_root=args["app_root"], run_id=run["run_id"], pause={
                "ttl": run["policy"]["pause_ttl"], "state": _rollout.pause_state(run, records, paused)})
            problems = [answer.get("msg") or "failed"] if answer.get("failed") else []
            return {"outcome": mine or "waiting", "msg": "; ".join(problems) or answer.get("msg"), "problems": problems}
        steps = {"marks": [], "prune": 0, "unlock": locked}
        if not self._task.check_mode:
            steps["marks"], steps["prune"] = _rollout.finish_marks(run, host, mine, rows, recovered)
        if not (steps["marks"] or steps["prune"] or steps["unlock"]):
            return {"outcome": mine or "", "msg": "nothing to finish", "problems": []}
        answer = self.call(app_root=args["app_root"], run_id=run["run_id"], **steps)
        problems = list(answer.get("problems") or [])
        if answer.get("failed"):
            problems.append(answer.get("msg") or "failed")
        return {"outcome": mine or "", "msg": "; ".join(problems) or "finished", "problems": problems}
