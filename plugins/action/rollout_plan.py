# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of conveyor.deploy.rollout_plan: build the run object once, on the controller."""

from __future__ import annotations


from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.conveyor.deploy.plugins.action import approval as approval_action
from ansible_collections.conveyor.deploy.plugins.action.deploy_window import decide as window_decision
from ansible_collections.conveyor.deploy.plugins.module_utils import _proof
from ansible_collections.conveyor.deploy.plugins.plugin_utils import (
    _analysis, _changelog, _governance, _holder, _inputs, _rollout, _runinfo,
)

display = Display()

APPROVAL_OPTIONS = ("change_id", "approver", "expires_at", "source", "path", "url", "url_token", "ca_path",
                    "timeout")
ARGUMENT_SPEC = {
    "step": {"type": "str", "choices": ["plan", "commit", "migrate", "resume"], "default": "plan"},
    "kind": {"type": "str", "choices": ["deploy", "rollback"], "default": "deploy"},
    "version": {"type": "str"},
    "release_id": {"type": "str"},
    "reason": {"type": "str", "default": ""},
    "batches": {"type": "raw", "default": [1, "25%", "100%"]},
    "min_healthy_percent": {"type": "float", "default": 50},
    "failure_policy": {"type": "str", "choices": ["rollback_fleet", "halt"], "default": "rollback_fleet"},
    "bake_seconds": {"type": "float", "default": 0},
    "fleet_size": {"type": "int"},
    "app_root": {"type": "str", "default": ""},
    "lb": {"type": "dict", "default": {}},
    "drain_timeout": {"type": "float", "default": 60},
    "up_timeout": {"type": "float", "default": 60},
    "mark_up": {"type": "bool", "default": True},
    "windows": {"type": "raw", "default": {}},
    "window_now": {"type": "str", "default": ""},
    "override_reason": {"type": "str", "default": ""},
    "environment": {"type": "str", "default": "this environment"},
    "keep_releases": {"type": "int", "default": 5},
    "smoke_url": {"type": "str", "default": ""},
    "smoke_requests": {"type": "int", "default": 10},
    "smoke": {"type": "dict", "default": {}},
    "not_release_fault": {"type": "bool", "default": False},
    "hooks": {"type": "dict", "default": {}},
    # rolling_hook_tasks, and where a relative task file is looked for (the inventory's, the playbook's directory).
    "hook_tasks": {"type": "raw", "default": {}},
    "hook_task_dirs": {"type": "list", "elements": "str", "default": []},
    "inputs": {"type": "dict", "default": {}},
    # Where production's approval is read from: the approval module's options (the rollout judges it itself).
    "approval": {"type": "dict", "default": {}, "options": {
        name: dict(spec) for name, spec in approval_action.ARGUMENT_SPEC.items() if name in APPROVAL_OPTIONS}},
    "prepared": {"type": "str", "default": "__rolling_prepare"},
    # The deploy's migration: whether one is configured and the hosts of its group (the plan); how to run it
    # (the migrate step, delegated to the host the commit chose).
    "migrate": {"type": "dict", "default": {}, "options": {
        "command": {"type": "str", "default": ""},
        "group_hosts": {"type": "list", "elements": "str", "default": []},
        "user": {"type": "str", "default": "root"},
        "env_files": {"type": "list", "elements": "str", "default": []},
        "timeout": {"type": "int", "default": 600},
        "censor": {"type": "list", "elements": "str", "default": [], "no_log": True},
        "maintenance": {"type": "str", "default": ""},
        "maintenance_error": {"type": "str", "default": ""},
    }},
    "past_migration_reason": {"type": "str", "default": ""},
    # rolling_analysis, and the canary (rolling_canary, rolling_canary_weight, rolling_canary_seconds).
    "analysis": {"type": "raw", "default": {}},
    "canary": {"type": "dict", "default": {}},
    "watch_seconds": {"type": "raw", "default": 0},
    # rolling_emergency and its reason: no canary, analysis, watch, bake or window (the reason overrides it).
    "emergency": {"type": "dict", "default": {}, "options": {
        "enabled": {"type": "bool", "default": False},
        "reason": {"type": "str", "default": ""},
    }},
    # rolling_pause_after (canary, or a batch number) and how long the paused run keeps its locks (rolling_pause_ttl).
    "pause_after": {"type": "raw", "default": ""},
    "pause_ttl": {"type": "int", "default": 86400},
    # The resume step (promote.yml, abort.yml): what to do with the paused run, which one ("" for whichever holds
    # the hosts), and the hosts' answers (rollout_host step resume, registered under ``prepared``).
    "resume": {"type": "str", "choices": ["promote", "abort"], "default": "promote"},
    "run_id": {"type": "str", "default": ""},
}


def input_problems(args, hosts=()):
    """Every problem with the run's inputs, each naming the variable and the fix (plugin_utils/_inputs.py)."""
    found = []
    inputs = args["inputs"]
    kind = args["kind"]
    prefix = "rolling" if kind == "deploy" else "rollback"
    if kind == "deploy":
        found += _inputs.version_problems(args.get("version"), inputs.get("version_type") or "")
    found += _inputs.app_root_problems(args["app_root"])
    if args.get("windows"):
        found += _governance.spec_problems(args["windows"])
    if kind == "deploy" and inputs.get("is_production") and args.get("window_now"):
        found.append("deploy_window_now is %s, but this is production: its window is judged by the controller's "
                     "clock. Remove -e deploy_window_now (in an emergency, give -e override_reason=... with an "
                     "approval)" % args["window_now"])
    if kind == "deploy" and (args.get("approval") or {}).get("url"):
        found += _inputs.approval_url_problems(args["approval"]["url"])
    if args["keep_releases"] < 1:
        found.append("rolling_keep_releases is %d: keep at least 1 release" % args["keep_releases"])
    if args["lb"].get("enabled") and not inputs.get("lb_host_known", True):
        found.append("%s_lb_host '%s' is not in the inventory: add it to the lb group" % (prefix, args["lb"].get("host")))
    if kind == "deploy":
        found += analysis_problems(args)
        emergency = args.get("emergency") or {}
        if emergency.get("enabled") and not (emergency.get("reason") or "").strip():
            found.append('rolling_emergency is on without a reason: give -e emergency_reason="..." (it is recorded in '
                         'the change log and announced)')
        found += _inputs.text_problems({"emergency_reason": emergency.get("reason")})
        try:
            _rollout.pause_after(args.get("pause_after"), bool((args.get("canary") or {}).get("enabled")))
        except _rollout.PlanError as exc:
            found.append(str(exc))
        if args["pause_ttl"] < 60:
            found.append("rolling_pause_ttl is %d: give the seconds a paused run keeps its locks (at least 60; "
                         "the default 86400 is a day)" % args["pause_ttl"])
        found += _inputs.maintenance_problems(inputs.get("migrate_maintenance") or "",
                                              (args.get("migrate") or {}).get("command") or "",
                                              bool(args["lb"].get("enabled")))
    if args["lb"].get("enabled"):
        found += _inputs.lb_name_problems(args["lb"].get("backend"), inputs.get("lb_servers") or {}, prefix)
    found += _inputs.batch_problems(args["batches"], args["min_healthy_percent"], prefix + "_batches")
    if kind == "deploy":
        found += _inputs.artifact_problems(inputs.get("artifact_url"), inputs.get("artifact_sha256"),
                                           inputs.get("is_production"), inputs.get("allow_unverified"))
        found += _inputs.shared_path_problems(inputs.get("shared_paths") or [])
        if "health" in inputs:
            found += _inputs.health_problems(inputs["health"])
    elif args.get("smoke"):
        found += _inputs.proof_problems(args["smoke"])
    if kind == "rollback" and inputs.get("is_production") and not (args.get("reason") or "").strip():
        found.append('This is production: give -e rollback_reason="..." (it is recorded with the rollback)')
    found += _inputs.text_problems({"change_id": inputs.get("change_id"), prefix + "_reason": args.get("reason"),
                                    "rollback_past_migration_reason": args.get("past_migration_reason")})
    if "lock_ttl" in inputs and hosts and not [p for p in found if "_batches" in p]:
        found += [problem.replace("rolling_", prefix + "_", 1) for problem in _inputs.lock_problems(
            inputs["lock_ttl"], batch_count(args, hosts), args["drain_timeout"],
            (inputs.get("health") or {}).get("timeout", 0), bake_bound(args), args["up_timeout"],
            renewed=bool(args["lb"].get("enabled")))]
    found += _rollout.hook_task_files(args.get("hook_tasks"), args.get("hook_task_dirs") or [], kind)[1]
    return found + _rollout.hook_problems(args.get("hooks") or {})


def analysis_problems(args):
    """What is wrong with rolling_analysis and the canary settings (none for a rollback)."""
    try:
        analysis, canary = _analysis.settings(args.get("analysis"), args.get("canary"),
                                              bool(args["inputs"].get("is_production")), args.get("watch_seconds"))
    except _rollout.PlanError as exc:
        return [str(exc)]
    if (analysis["enabled"] or analysis["watch_seconds"]) and not args["lb"].get("enabled"):
        what = ("rolling_canary" if canary["enabled"] else "rolling_analysis.enabled" if analysis["enabled"]
                else "rolling_watch_seconds")
        return ["%s is on, but the app has no load balancer to read the traffic from (no lb group, or app_lb_enabled "
                "is false): turn it off, or add the load balancer" % what]
    return []


def bake_bound(args):
    """The longest a batch waits after its re-enable: the bake, or the analysis window when that is longer."""
    try:
        analysis, canary = _analysis.settings(args.get("analysis"), args.get("canary"), watch=args.get("watch_seconds"))
    except _rollout.PlanError:
        return args["bake_seconds"]
    if args["kind"] != "deploy":
        return args["bake_seconds"]
    window = max(analysis["seconds"], canary["seconds"] if canary["enabled"] else 0) if analysis["enabled"] else 0
    return max(args["bake_seconds"], window + analysis["watch_seconds"])


def batch_count(args, hosts):
    try:
        return len(_rollout.batch_sizes(args["batches"], len(hosts), "batches"))
    except _rollout.PlanError:
        return 0


def lock_policy(args, hosts):
    """How the run's locks live: renewed by its heartbeats on the load balancer when there is one.

    ``bound_s`` is the latest a renewed lock expires for a reader that cannot see the heartbeats: the whole
    rollout by its timeouts, plus one time to live for the checklist and the staging.
    """
    lb = args.get("lb") or {}
    if not lb.get("enabled"):
        return {"renewed": None, "bound_s": 0}
    inputs = args["inputs"]
    try:
        ttl = int(inputs.get("lock_ttl") or 0)
    except (TypeError, ValueError):
        ttl = 0
    whole = _inputs.rollout_bounds(batch_count(args, hosts), args["drain_timeout"],
                                   (inputs.get("health") or {}).get("timeout", 0), bake_bound(args),
                                   args["up_timeout"])[1]
    return {"renewed": {"host": lb.get("host"), "backend": lb.get("backend")}, "bound_s": whole + ttl}


def production_gates(args, deployer, load_file):
    """The window and the approval of a production deploy, judged by the rollout itself.

    The checklist reports them too, but --skip-tags or a shorter preflight_checks list can leave it
    out; these verdicts go into the run object, and every host refuses to prepare while ``refused``
    says why. Not for rollbacks (they need a reason in production) nor outside production.
    """
    if args["kind"] != "deploy" or not args["inputs"].get("is_production"):
        return {"enforced": False, "refused": ""}
    environment = args["environment"]
    window = window_decision({"windows": args["windows"] or {}, "environment": environment, "now": None,
                              "clock_start": None, "override_reason": args["override_reason"],
                              "fail_when_closed": False})
    options = approval_action.options_from(args.get("approval"), environment=environment, required=True, now=None,
                                           fail_on_invalid=False, deployer=deployer)
    verdict = approval_action.decide(options, deployer, load_file)
    refused = [text for ok, text in ((window["allowed"], window["msg"]), (verdict["valid"], verdict["msg"])) if not ok]
    return {"enforced": True,
            "window": {key: window.get(key) for key in ("allowed", "overridden", "rule", "reason")},
            "approval": {"valid": verdict["valid"], "reason": verdict["reason"],
                         "change_id": (verdict.get("approval") or {}).get("change_id") or "",
                         "approver": (verdict.get("approval") or {}).get("approver") or ""},
            "refused": "; ".join(refused)}


def plan(args, hosts, extra_vars, run_id=None, now=None):
    """The run object of validated arguments (no Ansible objects: unit-testable)."""
    kind = args["kind"]
    run_id = run_id or _runinfo.shared_run_id()
    release_id = args.get("release_id") or None
    if kind == "deploy" and not release_id:
        release_id = "%s-%s" % (run_id.split("-")[0], args["version"])
    problems = input_problems(args, hosts)
    if problems:
        raise _rollout.PlanError("Invalid %s inputs: %s." % (kind, "; ".join(problems)))
    lb = dict(args.get("lb") or {})
    lb["enabled"] = bool(lb.get("enabled"))
    policy = {key: args[key] for key in ("batches", "min_healthy_percent", "failure_policy", "bake_seconds",
                                         "drain_timeout", "up_timeout", "mark_up", "windows", "window_now",
                                         "override_reason", "environment", "keep_releases", "smoke_url",
                                         "smoke_requests", "not_release_fault")}
    run = _rollout.new_run(kind, hosts, policy, args.get("fleet_size") or len(hosts),
                           _rollout.actor(extra_vars), run_id, version=args.get("version"),
                           release_id=release_id, lb=lb, reason=args.get("reason"), now=now)
    run["policy"]["analysis"], run["policy"]["canary"] = _analysis.settings(
        args.get("analysis") if kind == "deploy" else {}, args.get("canary") if kind == "deploy" else {},
        bool(args["inputs"].get("is_production")), args.get("watch_seconds") if kind == "deploy" else 0)
    emergency = args.get("emergency") or {}
    run["emergency"] = (emergency.get("reason") or "").strip() if kind == "deploy" and emergency.get("enabled") else ""
    run["policy"]["pause_after"] = 0 if kind != "deploy" or run["emergency"] else _rollout.pause_after(
        args.get("pause_after"), run["policy"]["canary"]["enabled"])
    run["policy"]["pause_ttl"] = args["pause_ttl"]
    if run["emergency"]:
        # The emergency path: the lock, the drain, the gate and the automatic revert stay; nothing waits.
        run["policy"]["analysis"].update(enabled=False, watch_seconds=0.0)
        run["policy"]["canary"]["enabled"] = False
        run["policy"]["bake_seconds"] = 0
    run["policy"]["smoke_proof"] = {}
    smoke = args.get("smoke") or {}
    if not run["policy"]["smoke_url"] and smoke.get("lb_url"):
        run["policy"]["smoke_url"], run["policy"]["smoke_proof"] = _proof.lb_check(
            smoke, str(smoke["lb_url"]), str(smoke.get("health_path") or "/health"))
    run["app_root"] = args["app_root"]
    # The ansible-playbook process that holds this run (the plan runs in one of its workers): what the locks
    # record, and how a worker left running after that process was killed knows not to take one.
    run["controller"] = _holder.identity()
    run["hooks"] = _rollout.run_hooks(kind, args.get("hooks"))
    run["hook_tasks"] = _rollout.hook_task_files(args.get("hook_tasks"), args.get("hook_task_dirs") or [], kind)[0]
    run["gates"] = {"enforced": False, "refused": ""}
    run["lock"] = lock_policy(args, hosts)
    migrate = args.get("migrate") or {}
    run["migration"] = {"configured": kind == "deploy" and bool((migrate.get("command") or "").strip()),
                        "group_hosts": [host for host in migrate.get("group_hosts") or [] if host in hosts]}
    run["past_migration_reason"] = args.get("past_migration_reason") or ""
    # The other runs' heartbeats, read on the load balancer by the action (ActionModule.heartbeat).
    run["heartbeat"] = None
    # The load balancer's servers out of rotation when the run was planned (ActionModule.taken_out).
    run["out_of_rotation"] = []
    # The change log's head as this run found it (when the changelog callback is on): each host it locks keeps it.
    run["changelog_anchor"] = _changelog.published_head()
    return run


class ActionModule(ActionBase):
    """Plan the run, or complete the plan from what every host reported."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        task_vars = task_vars or {}
        try:
            if args["step"] == "migrate":
                run = self.migrate(_rollout.run_from(task_vars), args, task_vars)
            elif args["step"] == "resume":
                run = self.resume(args, task_vars)
            elif args["step"] == "plan":
                hosts = list(task_vars.get("ansible_play_hosts_all") or [])
                hostvars = task_vars.get("hostvars") or {}
                args["inputs"] = dict(args["inputs"], lb_servers=_rollout.lb_servers(hostvars, hosts))
                # The process's run id, unless an earlier run of this playbook (one that deploys twice) took it.
                earlier = (task_vars.get(_rollout.RUN_VAR) or {}).get("run_id")
                run_id = _runinfo.shared_run_id()
                run = plan(args, hosts, self._extra_vars(task_vars),
                           run_id=_runinfo.new_run_id() if run_id == earlier else run_id)
                run["gates"] = production_gates(args, approval_action.deployer_of({}, task_vars),
                                                self._loader.load_from_file)
                if run["lb"]["enabled"]:
                    run["heartbeat"] = self.heartbeat(run, task_vars)
                    if run["kind"] == "deploy":
                        run["out_of_rotation"] = self.taken_out(run, task_vars)
            else:
                run = _rollout.run_from(task_vars, planned=True)
                hostvars = task_vars.get("hostvars") or {}
                prepared = {}
                for host in run["hosts"]:
                    try:
                        prepared[host] = hostvars[host].get(args["prepared"])
                    except KeyError:
                        prepared[host] = None
                committed = _rollout.commit(run, prepared)
                if committed["takeovers"] and committed["lb"].get("enabled"):
                    committed = _rollout.commit(run, prepared, out_of_rotation=self.out_of_rotation(run, task_vars))
                run = committed
                _runinfo.say(display, _rollout.announce(run))
                if self._task.check_mode and _rollout.hooks_preview(run):
                    _runinfo.say(display, _rollout.hooks_preview(run))
        except _rollout.PlanError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result
        if args["step"] == "plan":
            result.update(changed=False, run=run, msg="run %s planned" % run["run_id"])
        elif args["step"] == "resume":
            # Registered as rolling_run: the paused run's object, continued by this process.
            result.update(run, changed=False, msg=_rollout.resumed_line(run))
        elif args["step"] == "migrate":
            # Registered as rolling_run again: the run object, with the migration's outcome.
            result.update(run, changed=(run.get("migration") or {}).get("outcome") == "succeeded",
                          msg=(run.get("migration") or {}).get("said") or "no migration")
        else:
            # Registered as rolling_run: the result is the run object.
            result.update(run, changed=False, msg=_rollout.announce(run))
        return result

    def resume(self, args, task_vars):
        """The paused run's object, continued (promote) or switched back (abort) by this process; on the load balancer
        when there is one (the task is delegated to it), where the run beats again."""
        hostvars = task_vars.get("hostvars") or {}
        answers = {}
        # Every host of the play was read (rollout_host step=resume), none changed yet.
        for host in task_vars.get("ansible_play_hosts_all") or []:
            try:
                answers[host] = hostvars[host].get(args["prepared"])
            except KeyError:
                answers[host] = None
        run = _rollout.resume(args["run_id"], answers, args["resume"], _rollout.actor(self._extra_vars(task_vars)),
                              args["reason"])
        run["controller"] = _holder.identity()
        if run["lb"].get("enabled") and not self._task.check_mode:
            run["heartbeat"] = self.heartbeat(run, task_vars)
        _runinfo.say(display, _rollout.resumed_line(run))
        return run

    def migrate(self, run, args, task_vars):
        """Run the migration once, on the host the commit chose (the task is delegated to it)."""
        found = run.get("migration") or {}
        if not found.get("host") or found.get("outcome"):
            return run
        migrate = args["migrate"]
        if migrate["maintenance_error"]:
            # The page the operator asked for could not go up: the migration does not run without it.
            run = _rollout.aborted_for_maintenance(run, migrate["maintenance_error"])
            _runinfo.say(display, run["aborted"])
            return run
        if not migrate["command"].strip():
            raise _rollout.PlanError("the run planned a migration, but the migrate step got no command")
        options = {"release_id": run["release_id"], "command": migrate["command"], "user": migrate["user"],
                   "env_files": migrate["env_files"], "timeout": migrate["timeout"],
                   "previous_version": (run["moves"][found["host"]].get("from") or {}).get("version") or ""}
        try:
            answer = self._execute_module(module_name="conveyor.deploy.host_steps", module_args={
                "app_root": run["app_root"], "run_id": run["run_id"], "migrate": options, "censor": migrate["censor"]},
                task_vars=task_vars)
        except AnsibleConnectionFailure as exc:
            answer = {"failed": True, "msg": "%s did not answer: %s" % (found["host"], str(exc).splitlines()[0][:200])}
        run = _rollout.migrated(run, found["host"], answer)
        if migrate["maintenance"]:
            # The load balancer showed this page while it ran (roles/rolling/tasks/prepare.yml).
            run["migration"]["maintenance"] = migrate["maintenance"]
        if self._task.check_mode:
            said = "would run the migration of %s on %s" % (run["release_id"], found["host"])
        elif run["migration"]["outcome"] == "succeeded":
            said = "Migration of %s ran on %s in %s s%s" % (
                run["release_id"], found["host"], run["migration"].get("duration_s"),
                "; it cannot be undone: no automatic fleet rollback past it" if run["migration"].get("irreversible")
                else "")
        else:
            said = run["aborted"]
        run["migration"]["said"] = said
        _runinfo.say(display, said)
        return run

    def heartbeat(self, run, task_vars):
        """Record this run's first heartbeat and read the others' (the task is delegated to the load balancer).

        A lock whose run has been silent for longer than its time to live is taken over on that evidence
        (_holder.silent_reason), so a load balancer that cannot be read refuses the run here, naming it.
        """
        lb = run["lb"]
        args = {"backend": lb["backend"], "run_id": run["run_id"]}
        try:
            answer = self._execute_module(module_name="conveyor.deploy.run_heartbeat", module_args=args,
                                          task_vars=task_vars)
        except AnsibleConnectionFailure as exc:
            answer = {"failed": True, "msg": str(exc).splitlines()[0][:200]}
        if answer.get("failed"):
            prefix = "rolling" if run["kind"] == "deploy" else "rollback"
            raise _rollout.PlanError("The load balancer %s did not answer when the run was planned (%s): the run "
                                     "records its heartbeats there. Fix its connection, or set %s_lb_enabled: false "
                                     "to run without it." % (lb.get("host"), answer.get("msg") or "no answer", prefix))
        return {"host": lb.get("host"), "read_at": answer.get("now"), "beats": answer.get("beats") or {}}

    def taken_out(self, run, task_vars):
        """The backend's servers drained or in maintenance (the task is delegated to the load balancer).

        A host on the version that a failed or interrupted run left out of rotation goes through its batch again,
        which puts it back; one the backend cannot be read for is not guessed at (the drain reports it)."""
        answer = self._execute_module(module_name="conveyor.deploy.haproxy_info",
                                      module_args={"socket": run["lb"]["socket"], "backend": run["lb"]["backend"]},
                                      task_vars=task_vars)
        return sorted(server["name"] for server in answer.get("servers") or [] if server.get("admin") != "ready")

    def out_of_rotation(self, run, task_vars):
        """The backend's servers that serve no traffic now (the task is delegated to the load balancer)."""
        answer = self._execute_module(module_name="conveyor.deploy.haproxy_info",
                                      module_args={"socket": run["lb"]["socket"], "backend": run["lb"]["backend"]},
                                      task_vars=task_vars)
        if answer.get("failed"):
            raise _rollout.PlanError("Could not read backend %s before repairing what a dead run left: %s"
                                     % (run["lb"]["backend"], answer.get("msg") or "no answer"))
        return {server["name"] for server in answer.get("servers") or [] if not server.get("serving")}

    @staticmethod
    def _extra_vars(task_vars):
        return {name: task_vars.get(name) for name in ("awx_user_name", "tower_user_name") if task_vars.get(name)}
