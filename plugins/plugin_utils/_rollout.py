# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout engine's decisions, on the controller, with no Ansible objects.

A run (a deploy or a rollback) is one *run object* (``rolling_run``), built by
``new_run`` and completed by ``commit`` once every host has reported what it runs.
It fixes, for the whole run: the run id, the kind, the actor, the batches as host
lists, each host's move (from, to and back), the policy and the labels.  Nothing
rebuilds it later: the batch steps, the fleet recovery and the report read it,
together with the per-host *records* the steps leave (``prepare``, ``batch``,
``recover``), and decide here.

Every outcome a host can end with, the judgement of a batch, the progress line,
the hosts a fleet recovery moves back, the summary rows and the final verdict are
defined once in this file, and used by the roles, the change log and notify.
"""

from __future__ import annotations

import datetime
import os
import subprocess

from ansible_collections.conveyor.deploy.plugins.module_utils._haproxy import required_serving
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _runinfo

# Every outcome a host of a run ends with, and what it means.
OUTCOMES = {
    "deployed": "runs the new release, which passed its gate",
    "rolled_back": "went back to an earlier release (a rollback run, its own failed gate, or a fleet recovery)",
    "skipped": "already ran the target and was healthy: left untouched",
    "failed": "did not end on its target, or its gate failed with no release to go back to",
    "unreachable": "stopped answering during the run",
    "not_started": "the rollout stopped before this host's batch: left untouched",
    "refused": "refused before any host changed (inspection, lock or staging failed)",
    "waiting": "the run is paused before this host's batch: playbooks/promote.yml moves it, playbooks/abort.yml "
               "leaves it",
}
BAD = ("failed", "unreachable", "not_started", "refused")

# What a host that moved, or that went back after its own gate failed, is called in each kind of move.
LABELS = {
    "deploy": {"moved": "deployed", "reverted": "rolled_back"},
    "rollback": {"moved": "rolled_back", "reverted": "failed"},
    "recover": {"moved": "rolled_back", "reverted": "failed"},
}
# The outcomes with which a host counts as done in each kind of run.
DONE = {"deploy": ("deployed", "skipped"), "rollback": ("rolled_back", "skipped")}


# The engine's named extension points: where each runs, and what a failure does.
EXTENSION_POINTS = {
    "after_stage": "each host, after its release is staged; a failure aborts the run before any cutover",
    "before_switch": "each host, before current switches; a failure leaves the host untouched and stops the rollout",
    "after_switch": "each host, after the switch and before the restart; a failure counts as a failed gate",
    "before_gate": "each host, after the restart and before the health gate; a failure counts as a failed gate",
    "after_batch": "the controller, after each batch is re-enabled; a failure stops the rollout",
    "at_end": "the controller, once the run is over; a failure fails the run",
    "on_failure": "the controller, when the run failed",
    "on_rollback": "the controller, after a rollback or a deploy that rolled the fleet back",
}
HOST_POINTS = ("after_stage", "before_switch", "after_switch", "before_gate")
# A rollback goes back to what ran before: it runs none of the new release's per-host or per-batch hooks.
ROLLBACK_POINTS = ("at_end", "on_failure", "on_rollback")


def run_hooks(kind, hooks):
    """The hooks a run of ``kind`` runs: all of them for a deploy, the end-of-run points for a rollback."""
    hooks = dict(hooks or {})
    if kind == "rollback":
        return {point: commands for point, commands in hooks.items() if point in ROLLBACK_POINTS}
    return hooks


# The points an Ansible task file can hook (rolling_hook_tasks): after_batch on each host of the batch, the
# others on every host of the run once it is over; the playbooks include them (roles/rolling/tasks).
TASK_POINTS = ("after_batch", "at_end", "on_failure", "on_rollback")


def hook_task_files(hook_tasks, dirs, kind, isfile=os.path.isfile):
    """({point: absolute path} of rolling_hook_tasks, problems): a relative path is looked for in ``dirs`` in order
    (the inventory's directory, then the playbook's). A rollback keeps only its end-of-run points."""
    if not hook_tasks:
        return {}, []
    if not isinstance(hook_tasks, dict):
        return {}, ["rolling_hook_tasks must be a mapping of extension point to a task file"]
    found, problems = {}, []
    for point, path in hook_tasks.items():
        if point not in TASK_POINTS:
            problems.append("rolling_hook_tasks names %r, where no task file can run; the points are %s"
                            % (point, ", ".join(TASK_POINTS)))
            continue
        if not isinstance(path, str) or not path.strip():
            problems.append("rolling_hook_tasks.%s must be the path of a task file" % point)
            continue
        candidates = [path] if os.path.isabs(path) else [os.path.join(d, path) for d in dirs if d]
        hit = next((os.path.abspath(c) for c in candidates if isfile(c)), None)
        if hit is None:
            problems.append("rolling_hook_tasks.%s: no task file %s (looked in %s)"
                            % (point, path, ", ".join(candidates) or "no directory"))
        elif kind != "rollback" or point in ROLLBACK_POINTS:
            found[point] = hit
    return found, problems


def end_task_hooks(run, failed, rolled_back):
    """The task files to include once the run is over, in order: [{point, file}]."""
    files = run.get("hook_tasks") or {}
    planned = [("on_failure", failed), ("on_rollback", rolled_back), ("at_end", True)]
    return [{"point": point, "file": files[point]} for point, wanted in planned if wanted and files.get(point)]


def end_hooks(run, failed, rolled_back):
    """The controller hooks to run once the run is over, in order: [(point, commands, extra environment)]."""
    hooks = run.get("hooks") or {}
    outcome = {"CONVEYOR_OUTCOME": "failed" if failed else "succeeded"}
    planned = [("on_failure", failed), ("on_rollback", rolled_back), ("at_end", True)]
    return [(point, hooks[point], outcome) for point, wanted in planned if wanted and hooks.get(point)]


def hooks_preview(run):
    """What --check says of the run's hooks: each point that would run, where, and its commands (none runs)."""
    hooks, files = run.get("hooks") or {}, run.get("hook_tasks") or {}
    said = ["%s (%s): %s" % (point, EXTENSION_POINTS[point].split(",")[0], "; ".join(hooks[point]))
            for point in EXTENSION_POINTS if hooks.get(point)]
    said += ["%s (task file): %s" % (point, files[point]) for point in TASK_POINTS if files.get(point)]
    if not said:
        return ""
    return "Hooks this run would run (--check runs none): %s" % " | ".join(said)


def hook_problems(hooks):
    """What is wrong with rolling_hooks: unknown points, or values that are not lists of commands."""
    found = []
    if not isinstance(hooks, dict):
        return ["rolling_hooks must be a mapping of extension point to a list of commands"]
    for point, commands in hooks.items():
        if point not in EXTENSION_POINTS:
            found.append("rolling_hooks names an unknown extension point %r; the points are %s"
                         % (point, ", ".join(EXTENSION_POINTS)))
        elif not isinstance(commands, list) or not all(isinstance(c, str) and c.strip() for c in commands):
            found.append("rolling_hooks.%s must be a list of commands (strings)" % point)
    return found


def run_controller_hooks(commands, point, run, extra_env=None, runner=None, timeout=300):
    """Run a controller extension point's commands in order; return the first failure, or ''."""
    runner = runner or subprocess.run
    env = dict(os.environ, CONVEYOR_HOOK=point, CONVEYOR_RUN_ID=run["run_id"], CONVEYOR_KIND=run["kind"],
               CONVEYOR_VERSION=run.get("version") or "", **(extra_env or {}))
    for command in commands or []:
        try:
            done = runner(command, shell=True, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return "%s hook %r did not finish within %d s" % (point, command, timeout)
        if done.returncode != 0:
            output = " ".join((done.stderr or done.stdout or "no output").split())[:200]
            return "%s hook %r exited %d: %s" % (point, command, done.returncode, output)
    return ""


class PlanError(ValueError):
    """An input that cannot be planned: the message names the variable and the fix."""


# Where a task finds the run: the plan step's result while the hosts are prepared, the committed
# run object (registered as rolling_run) afterwards.
PLAN_VAR, RUN_VAR = "__rolling_plan", "rolling_run"


def lb_server_of(hostvars, host, unknown=None):
    """The HAProxy server name of a host: rolling_lb_server (or rollback_lb_server), else app_lb_server, else its
    inventory name. A value still a template here is not guessed at: ``unknown`` is returned (its own tasks
    template it)."""
    found = hostvars.get(host) or {}
    for name in ("rolling_lb_server", "rollback_lb_server", "app_lb_server"):
        value = found.get(name)
        if value not in (None, ""):
            return unknown if "{" in str(value) else str(value)
    return host


def lb_servers(hostvars, hosts):
    """{host: HAProxy server name} of the hosts whose name is known without templating it."""
    names = {host: lb_server_of(hostvars, host) for host in hosts}
    return {host: name for host, name in names.items() if name is not None}


def heartbeat_args(run):
    """The heartbeat option of the run's load-balancer calls: each one renews the run's locks."""
    return {"run_id": run["run_id"]}


def run_from(task_vars, planned=False):
    """The run object a task works on, or PlanError naming the entry point that must run first.

    ``planned``: the plan just made (preparing or resolving hosts, committing), not the committed run;
    a playbook that deploys twice still carries the previous run's rolling_run then.
    """
    run = (task_vars.get(PLAN_VAR) or {}).get("run") if planned else task_vars.get(RUN_VAR)
    if not isinstance(run, dict) or not run.get("run_id"):
        raise PlanError("%s is not set: run the prepare entry point of conveyor.deploy.rolling (or the "
                        "conveyor.deploy.rollback role) first" % (PLAN_VAR if planned else RUN_VAR))
    return run


# --------------------------------------------------------------------------- identity

def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def parse_stamp(text):
    """The POSIX time of a ``%Y-%m-%dT%H:%M:%SZ`` stamp, or None."""
    try:
        return datetime.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return None


def actor(extra_vars, user=None, controller=None):
    """One name for whoever runs this: the AWX user when AWX launched it, else the local user; @ the controller."""
    found = _runinfo.actor(extra_vars)
    name = (found.get("awx") or {}).get("launched_by") or user or found["user"]
    return "%s@%s" % (name, controller or found["controller"])


# --------------------------------------------------------------------------- batches

def _batch_size(item, total, name):
    """Size of one batch, the way Ansible's ``serial`` computes it, after strict validation."""
    text = str(item).strip()
    if isinstance(item, bool):
        raise PlanError("%s: %r is not a batch size; use a number of hosts or a percentage like '25%%'." % (name, item))
    if text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            raise PlanError("%s: %r is not a percentage; use a whole number followed by %%, like '25%%'." % (name, item))
        if not 0 < pct <= 100:
            raise PlanError("%s: %r is outside 1%%-100%%; use a percentage from 1%% to 100%%." % (name, item))
        return int(pct / 100.0 * total) or 1
    try:
        size = int(text)
    except ValueError:
        raise PlanError("%s: %r is not a batch size; use a number of hosts or a percentage like '25%%'." % (name, item))
    if size < 1:
        raise PlanError("%s: %r is not allowed; a batch needs at least 1 host (serial 0 would mean all at once)."
                        % (name, item))
    return size


def batch_sizes(batches, total, name="rolling_batches"):
    """The sizes of the batches ``serial: <batches>`` makes of ``total`` hosts (the last entry repeats)."""
    if not isinstance(batches, (list, tuple)):
        batches = [batches]
    if not batches:
        raise PlanError("%s is empty; give at least one batch size, e.g. [1, '25%%', '100%%']." % name)
    total = int(total)
    sizes = []
    left = total
    index = 0
    while left > 0:
        size = min(_batch_size(batches[min(index, len(batches) - 1)], total, name), left)
        sizes.append(size)
        left -= size
        index += 1
    if total == 0:
        for item in batches:
            _batch_size(item, 1, name)
    return sizes


def capacity_plan(batches, total, min_healthy_percent, fleet=None, name="rolling_batches"):
    """Check every batch against the minimum healthy capacity, assuming a healthy fleet.

    ``total`` hosts move in batches; ``fleet`` (default ``total``) is how many backends the
    load balancer has, so a run limited to some hosts counts the others as serving.
    Returns ``{sizes, required_serving, problems}``; problems name the batch.
    """
    sizes = batch_sizes(batches, total, name)
    fleet = max(int(fleet if fleet is not None else total), int(total))
    needed = required_serving(fleet, float(min_healthy_percent))
    problems = []
    for number, size in enumerate(sizes, start=1):
        if fleet - size < needed:
            problems.append("batch %d drains %d of %d hosts, leaving %d serving, below the minimum of %d (%s%%)"
                            % (number, size, fleet, fleet - size, needed, min_healthy_percent))
    return dict(sizes=sizes, required_serving=needed, problems=problems)


def split(hosts, sizes):
    """The hosts, in order, cut into consecutive lists of the given sizes."""
    out, start = [], 0
    for size in sizes:
        if start >= len(hosts):
            break
        out.append(list(hosts[start:start + size]))
        start += size
    return out


# --------------------------------------------------------------------------- the run object

def new_run(kind, hosts, policy, fleet, actor_name, run_id, version=None, release_id=None, lb=None,
            reason="", now=None):
    """The run object before the hosts report: identity, kind, policy, labels.

    ``policy``: batches, min_healthy_percent, failure_policy, bake_seconds.  Raises PlanError when
    the batches cannot keep the minimum healthy capacity.
    """
    if kind not in DONE:
        raise PlanError("kind is %r; it must be deploy or rollback" % kind)
    lb = dict(lb or {"enabled": False})
    plan = capacity_plan(policy["batches"], len(hosts), policy["min_healthy_percent"] if lb.get("enabled") else 0,
                         fleet, name="%s_batches" % ("rolling" if kind == "deploy" else "rollback"))
    if plan["problems"]:
        prefix = "rolling" if kind == "deploy" else "rollback"
        raise PlanError("%s_batches %s cannot keep %s_min_healthy_percent %s%% of %d backends serving: %s. Use smaller "
                        "batches (for example [1, \"25%%\"]) or lower %s_min_healthy_percent%s."
                        % (prefix, policy["batches"], prefix,
                           policy["min_healthy_percent"], max(int(fleet), len(hosts)), "; ".join(plan["problems"]),
                           prefix, "" if kind == "deploy" else ', or ["100%"] for an emergency all-at-once rollback'))
    moment = now or utcnow()
    return {
        "run_id": run_id,
        "kind": kind,
        "version": version,
        "release_id": release_id,
        "actor": actor_name,
        "reason": reason or "",
        "started_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "t_start": moment.timestamp(),
        "hosts": list(hosts),
        "lb": lb,
        "policy": dict(policy, required_serving=plan["required_serving"]),
        "labels": dict(LABELS[kind]),
        "moves": {},
        "work": [],
        "batches": [],
        "refused": {},
        "takeovers": [],
        "aborted": "",
        "t_committed": None,
    }


def _release(record):
    record = record or {}
    return {"release_id": record.get("release_id") or "", "version": record.get("version") or ""}


def commit(run, prepared, now=None, out_of_rotation=()):
    """Complete the run object from each host's ``prepare`` record; return the new object.

    ``prepared``: host -> the record the host's prepare step returned (``from``, ``to``, ``back``,
    ``work`` and, when it could not be prepared, ``error``), or None when it never answered.
    Any error aborts the run before a host changes; the hosts that move are cut into batches.
    Hosts whose lock was taken over from a dead run go first, those whose server is in
    ``out_of_rotation`` (the dead run left them drained) before the others.
    """
    run = dict(run)
    moves, refused, work = {}, {}, []
    for host in run["hosts"]:
        record = prepared.get(host)
        if not record or record.get("unreachable"):
            refused[host] = "unreachable: %s" % ((record or {}).get("msg") or "no answer")
            continue
        if record.get("error"):
            refused[host] = record["error"]
            continue
        moves[host] = {"from": _release(record.get("from")), "to": _release(record.get("to")),
                       "back": _release(record.get("back")), "lb_name": record.get("lb_name") or host,
                       "skip_reason": record.get("skip_reason") or ""}
        if record.get("work"):
            work.append(host)
    run["takeovers"] = takeovers(run["hosts"], prepared)
    # The hosts a dead run left locked go first: it may have left them out of rotation, and draining
    # those again costs no capacity.
    out = set(out_of_rotation)

    def order(host):
        if not prepared[host].get("took_over"):
            return 2
        return 0 if moves[host]["lb_name"] in out else 1

    work = sorted(work, key=order)
    if run["kind"] == "rollback" and not refused:
        targets = sorted(set(moves[host]["to"]["version"] for host in work))
        if len(targets) > 1:
            pairs = ", ".join("%s -> %s" % (host, moves[host]["to"]["version"]) for host in work)
            for host in work:
                refused[host] = "hosts disagree on the rollback target (%s); give -e rollback_to=<version>" % pairs
    run["moves"], run["refused"] = moves, refused
    run["work"] = [] if refused else work
    crossed = {}
    for host in run["work"]:
        for entry in prepared[host].get("past_migration") or []:
            crossed.setdefault(entry["release_id"], dict(entry, hosts=[]))["hosts"].append(host)
    if crossed:
        # The operator's override, recorded with the run (summary, change log) and on each host (activation reason).
        run["past_migration"] = {"reason": run.get("past_migration_reason") or "",
                                 "releases": [crossed[key] for key in sorted(crossed)]}
    sizes = batch_sizes(run["policy"]["batches"], len(run["work"])) if run["work"] else []
    run["batches"] = split(run["work"], sizes)
    if refused:
        run["aborted"] = "Aborted before any cutover, nothing live changed: %s" % "; ".join(
            "%s: %s" % (host, refused[host]) for host in run["hosts"] if host in refused)
    run["migration"] = migration_plan(run)
    run["t_committed"] = (now or utcnow()).timestamp()
    return run


# --------------------------------------------------------------------------- migrations

def migration_plan(run):
    """Where the run's migration runs: ``run["migration"]`` with ``host`` set, or None when none runs.

    Once per deploy that moves hosts, on the first of them in the migration group (``group_hosts``) or else on
    the first host of the first batch: after every host staged, before the first switch.
    """
    found = dict(run.get("migration") or {"configured": False})
    found["host"] = None
    if not found.get("configured") or run["kind"] != "deploy" or run.get("aborted") or not run["batches"]:
        return found
    group = [host for host in found.get("group_hosts") or [] if host in run["work"]]
    found["host"] = group[0] if group else run["batches"][0][0]
    return found


def migrated(run, host, answer):
    """The run after its migration on ``host`` (host_steps' answer): a failed one aborts it, nothing live changed.

    Every host that staged the release then marks it failed (finish_marks).
    """
    run = dict(run)
    outcome = dict(answer.get("migration") or {})
    outcome.pop("output", None)
    found = dict(run["migration"], **outcome)
    found.setdefault("outcome", "failed" if answer.get("failed") else "succeeded")
    if answer.get("failed"):
        found.update(outcome="failed", error=answer.get("msg") or "failed", staged_on=list(run["work"]))
        why = answer.get("msg") or "failed"
        run.update(work=[], batches=[], aborted="Aborted before any cutover, nothing live changed: the migration "
                   "failed on %s: %s. Release %s is marked failed." % (host, why, run["release_id"]))
    run["migration"] = found
    return run


def aborted_for_maintenance(run, why):
    """The run when the load balancer could not show the maintenance page its migration needs: nothing migrated,
    nothing live changed; the staged release is left for pruning (it never went live)."""
    run = dict(run)
    run["migration"] = dict(run.get("migration") or {}, outcome="not run", error="maintenance page: %s" % why)
    run.update(work=[], batches=[], aborted="Aborted before any cutover, nothing live changed: the load balancer "
               "could not show the maintenance page for the migration (%s); the migration did not run." % why)
    return run


def no_way_back(run):
    """Why this deploy must not roll the fleet back automatically ("" when it may): its migration cannot be undone."""
    found = run.get("migration") or {}
    if found.get("outcome") == "succeeded" and found.get("irreversible"):
        return "the migration of release %s cannot be undone (%s)" % (run["release_id"], found["irreversible"])
    return ""


def takeovers(hosts, prepared):
    """The runs whose locks this run took over: ``[{run_id, reason, owner, started_at, hosts}]``, in host order."""
    found = {}
    for host in hosts:
        taken = (prepared.get(host) or {}).get("took_over")
        if taken and taken.get("run_id"):
            entry = found.setdefault(taken["run_id"], {"run_id": taken["run_id"], "reason": taken.get("reason") or "",
                                                       "owner": taken.get("owner") or "", "started_at": "",
                                                       "hosts": []})
            entry["hosts"].append(host)
            started = taken.get("started_at") or ""
            if started and (not entry["started_at"] or started < entry["started_at"]):
                entry["started_at"] = started
    return list(found.values())


def announce(run):
    """The line printed once the run is planned."""
    said = "".join("Took over the deploy lock of run %s on %s (%s); %s through %s batch again. " % (
        entry["run_id"], ", ".join(entry["hosts"]), entry["reason"],
        "that host goes" if len(entry["hosts"]) == 1 else "those hosts go",
        "its" if len(entry["hosts"]) == 1 else "their") for entry in run.get("takeovers") or [])
    return said + _announce(run)


def _announce(run):
    if run["aborted"]:
        return run["aborted"]
    if not run["work"]:
        if run["kind"] == "deploy":
            return "Nothing to do: every host already runs %s and is healthy." % run["version"]
        return "Nothing to do: every host already runs its rollback target (%s)." % "; ".join(
            "%s %s" % (host, run["moves"][host]["skip_reason"] or run["moves"][host]["from"]["version"])
            for host in run["hosts"] if host in run["moves"])
    sizes = ", ".join(str(len(batch)) for batch in run["batches"])
    if run["kind"] == "deploy":
        out = set(run.get("out_of_rotation") or [])
        back = [host for host in run["work"] if (run["moves"].get(host) or {}).get("lb_name", host) in out]
        rejoin = " %s out of the load balancer's rotation when the run started: %s put back by %s batch." % (
            ", ".join(back), "it is" if len(back) == 1 else "they are", "its" if len(back) == 1 else "their") \
            if back else ""
        emergency = (" EMERGENCY (%s): no canary, analysis, watch, bake or window; the lock, the drain, the health "
                     "gate and the automatic revert stay." % run["emergency"]) if run.get("emergency") else ""
        point = run["policy"].get("pause_after") or 0
        pause = ""
        if point and point < len(run["batches"]):
            pause = " The run pauses after batch %d (rolling_pause_after); promote.yml or abort.yml continues it." % point
        elif point:
            pause = " rolling_pause_after is %d, but the run has %d batch(es): it does not pause." % (
                point, len(run["batches"]))
        return "Release %s (%s) staged on %d host(s); batches of %s host(s), at least %d serving throughout.%s%s%s" % (
            run["release_id"], run["version"], len(run["work"]), sizes, run["policy"]["required_serving"], rejoin,
            emergency, pause)
    targets = sorted(set(run["moves"][host]["to"]["version"] for host in run["work"]))
    return "Rolling back %d host(s) to %s in batches of %s host(s), at least %d serving throughout." % (
        len(run["work"]), ", ".join(targets), sizes, run["policy"]["required_serving"])


# --------------------------------------------------------------------------- batches at run time

def batch_index(run, hosts):
    """1-based number of the batch that holds these hosts (0 when none does)."""
    wanted = set(hosts)
    for number, batch in enumerate(run["batches"], start=1):
        if wanted & set(batch):
            return number
    return 0


def cutover_outcome(result, labels):
    """(outcome, reason, gate_s) of one host from its registered cutover result."""
    if not result:
        return "unreachable", "unreachable during the batch", None
    if result.get("unreachable"):
        return "unreachable", "unreachable during the batch: %s" % (result.get("msg") or "no answer"), None
    if result.get("skipped"):
        return "not_started", result.get("skip_reason") or "the batch did not move it", None
    gate = (result.get("timings") or {}).get("verify")
    outcome = result.get("outcome")
    if outcome == "moved" and not result.get("failed"):
        return labels["moved"], "", gate
    if outcome == "reverted":
        return labels["reverted"], result.get("reason") or result.get("msg") or "its gate failed", gate
    return "failed", result.get("reason") or result.get("msg") or "failed", gate


def judge_batch(run, hosts, moving, cutover_results, labels, drain=None, enable=None, closed=""):
    """The record of one batch: every host's outcome, whether the rollout stops, and why.

    ``moving``: the hosts drained and moved; ``cutover_results``: host -> registered cutover result;
    ``drain`` / ``enable``: the load balancer's answers; ``closed``: why the window closed, if it did.
    """
    record = {"hosts": {}, "stop": False, "error": ""}
    for host in hosts:
        if host not in moving:
            why = closed or ("drain: %s" % ((drain or {}).get("msg") or "failed") if drain is not None
                             and drain.get("failed") else "the batch did not move it")
            record["hosts"][host] = {"outcome": "not_started", "reason": why, "gate_s": None, "drain_s": None}
            continue
        outcome, reason, gate = cutover_outcome(cutover_results.get(host), labels)
        record["hosts"][host] = {"outcome": outcome, "reason": reason, "gate_s": gate,
                                 "drain_s": (drain or {}).get("waited_s")}
    if enable is not None and enable.get("failed"):
        record["error"] = "enable: %s" % (enable.get("msg") or "failed")
    bad = [host for host, row in record["hosts"].items() if row["outcome"] != labels["moved"]]
    record["stop"] = bool(bad or record["error"] or closed)
    if closed:
        record["closed"] = closed
    return record


# The variables under which the batch steps register their records: the run's batches, a fleet recovery's.
BATCH_VAR, RECOVER_VAR = "__rolling_batch", "__rolling_recover"
# What a record keeps when it rides along in a later record's ``earlier``: what the readers of records use.
RECORD_KEYS = ("index", "batches", "direction", "run_id", "hosts", "stop", "error", "closed", "next_drain",
               "served_before", "served_after", "analysis", "watch", "paused")


def slim(record):
    return dict((name, record[name]) for name in RECORD_KEYS if name in record)


def _record_on(hostvars, host, key, run_id):
    """The record ``host`` carries under ``key`` for this run, or None (one merge of its variables by Ansible)."""
    try:
        found = (hostvars.get(host) or {}).get(key)
    except KeyError:
        return None
    if not isinstance(found, dict) or found.get("run_id") not in (None, run_id):
        return None
    return found


def _identity(record):
    return (record.get("index"), record.get("direction"), tuple(sorted(record.get("hosts") or {})))


def record_carriers(run, hostvars, key=BATCH_VAR):
    """The hosts that may carry records under ``key``, in batch order: those of the run's batches, or of its fleet
    recovery (which follows from the run's own records)."""
    if key == RECOVER_VAR:
        return recovery_of(run, batch_records(run, hostvars))[0]
    return [host for batch in run["batches"] for host in batch]


def batch_records(run, hostvars, key=BATCH_VAR, carriers=None):
    """The distinct per-batch records of this run under ``key``, in batch order.

    The batch step registers a record on the hosts of its batch carrying every earlier record of the run under
    ``earlier``. So the hosts are read from the last one backwards, and the reading stops at the first host with
    such a record: in a run that went through, one host is read, not every host (each read costs Ansible a merge
    of that host's variables, and every host's finish reads the records). Records without ``earlier`` (an
    unexpected error, recorded on each host of its batch) are collected on the way. ``carriers``: the hosts to
    read (default record_carriers).
    """
    latest, seen = [], set()
    # A promoted or aborted run starts with the records of the batches it moved before its pause.
    stored = list((run.get("resumed") or {}).get("records") or []) if key == BATCH_VAR else []
    seen.update(_identity(record) for record in stored)
    hosts = record_carriers(run, hostvars, key) if carriers is None else carriers
    for host in reversed(hosts):
        record = _record_on(hostvars, host, key, run["run_id"])
        if record is None or _identity(record) in seen:
            continue
        seen.add(_identity(record))
        latest.append(dict((name, value) for name, value in record.items() if name != "earlier"))
        earlier = record.get("earlier")
        if isinstance(earlier, list):
            latest.extend(reversed([item for item in earlier if _identity(item) not in seen]))
            break
    return stored + list(reversed(latest))


def rows_of(records):
    """host -> row from a run's batch records (the first record naming a host wins)."""
    rows = {}
    for record in records:
        for name, row in (record.get("hosts") or {}).items():
            rows.setdefault(name, dict(row, batch=record.get("index")))
    return rows


def closed_of(records):
    return next((record["closed"] for record in records if record.get("closed")), "")


def records_of(run, hostvars, key=BATCH_VAR):
    """host -> row from the per-batch records the batch steps left on the hosts under ``key``."""
    return rows_of(batch_records(run, hostvars, key))


def batch_errors(run, hostvars, key=BATCH_VAR):
    found = []
    for record in batch_records(run, hostvars, key):
        if record.get("error") and record["error"] not in found:
            found.append(record["error"])
    return found


def progress(run, record, done_rows, now, label="Batch", batches=None):
    """One line after a batch: batch k of n, hosts moved so far, elapsed, an ETA, and a failure's reason.

    Returns (line, figures); the notify batch event carries the same figures.
    """
    batches = run["batches"] if batches is None else batches
    total = len(batches)
    index = record.get("index") or 0
    moving = [host for batch in batches for host in batch]
    moved_label = LABELS["recover"]["moved"] if label.startswith("Recovery") else run["labels"]["moved"]
    moved = sum(1 for host in moving if (done_rows.get(host) or {}).get("outcome") == moved_label)
    start = run.get("t_committed") or run["t_start"]
    elapsed = max(now - start, 0.0)
    done = index - (run.get("start_batch") or 0)
    eta = None if record.get("stop") or done < 1 or index >= total else elapsed / done * (total - index)
    parts = ["%s %d of %d: %s" % (label, index, total, ", ".join(
        "%s %s" % (host, row["outcome"]) for host, row in sorted(record["hosts"].items())))]
    parts.append("%d of %d host(s) moved" % (moved, len(moving)))
    parts.append("%.1f s elapsed" % elapsed)
    if record.get("stop"):
        reasons = [host + ": " + row["reason"] for host, row in sorted(record["hosts"].items())
                   if row["outcome"] != moved_label and row["reason"]]
        parts.append("STOPPED: " + ("; ".join(reasons) or record.get("error") or record.get("closed") or "failed"))
    elif record.get("paused"):
        parts.append("PAUSED")
    elif eta is not None:
        parts.append("ETA %.0f s" % eta)
    else:
        parts.append("done")
    figures = {"batch": index, "batches": total, "moved": moved, "hosts": len(moving), "elapsed_s": round(elapsed, 1),
               "eta_s": None if eta is None else round(eta, 1), "stopped": bool(record.get("stop"))}
    return "; ".join(parts), figures


# --------------------------------------------------------------------------- recovery and the end

def deploy_failed(run, rows):
    return bool(run["aborted"]) or any(rows.get(host, {}).get("outcome", "not_started") not in DONE[run["kind"]]
                                       for host in run["work"])


def finish_marks(run, host, outcome, rows, recovered):
    """What a host records when the run ends: ([marks], keep) for the host_steps module.

    After a deploy: the release is marked good and old ones pruned where it went live and the whole run reached its
    target; it is marked failed where a fleet recovery took the host back. After a rollback: the release the host left
    is marked failed, unless the rollback said the release was not at fault.
    """
    move = run["moves"].get(host) or {}
    if run["kind"] == "deploy":
        migration = run.get("migration") or {}
        if migration.get("outcome") == "failed" and host in (migration.get("staged_on") or []):
            return [{"release_id": run["release_id"], "state": "failed",
                     "reason": "its migration failed in run %s" % run["run_id"]}], 0
        if (recovered.get(host) or {}).get("outcome") == "rolled_back":
            abort = run.get("abort")
            why = ("aborted by %s%s" % (abort["by"], ": " + abort["reason"] if abort["reason"] else "") if abort
                   else "fleet rollback: the release failed on another host")
            return [{"release_id": run["release_id"], "state": "failed", "reason": "%s in run %s" % (why, run["run_id"])}], 0
        if outcome == "deployed" and not deploy_failed(run, rows):
            return [{"release_id": run["release_id"], "state": "good", "reason": None}], run["policy"]["keep_releases"]
        return [], 0
    back = (move.get("back") or {}).get("release_id")
    if outcome == "rolled_back" and not run["policy"]["not_release_fault"] and back:
        return [{"release_id": back, "state": "failed",
                 "reason": "rolled back" + (": " + run["reason"] if run["reason"] else "")}], 0
    return [], 0


def recovery_of(run, records):
    """recovery() of the run's forward batch records."""
    return recovery(run, rows_of(records), closed_of(records), paused_of(run, records))


def recovery(run, rows, closed="", paused=None):
    """The moves a fleet recovery makes (host -> {to, back}) and its batches, in the run's order.

    Only after a failed deploy with rolling_failure_policy rollback_fleet, not when the window
    closed, for the hosts that took the new release and have a release to go back to; and, whatever
    the policy, for the hosts of a batch whose analysis failed (a canary).
    """
    if run["kind"] != "deploy" or closed or paused or no_way_back(run):
        return [], []
    if run.get("abort"):
        # playbooks/abort.yml: every host the paused run moved goes back, whatever the failure policy.
        hosts = [host for host in run["work"] if rows.get(host, {}).get("outcome") == "deployed"
                 and run["moves"][host]["back"]["release_id"]]
        return hosts, split(hosts, batch_sizes(run["policy"]["batches"], len(hosts)) if hosts else [])
    # A batch whose analysis failed (a canary) goes back whatever the failure policy says, like a failed gate; after
    # a failed watch (the last batch's rows say so) the whole fleet does.
    analysed_out = [host for host in run["work"] if rows.get(host, {}).get("analysis_failed")]
    fleet = run["policy"]["failure_policy"] == "rollback_fleet" or any(
        (rows.get(host) or {}).get("watch_failed") for host in run["work"])
    watched_out = any((rows.get(host) or {}).get("watch_failed") for host in run["work"])
    if not analysed_out and not watched_out and not (fleet and deploy_failed(run, rows)):
        return [], []
    hosts = [host for host in run["work"] if rows.get(host, {}).get("outcome") == "deployed"
             and run["moves"][host]["back"]["release_id"] and (fleet or host in analysed_out)]
    sizes = batch_sizes(run["policy"]["batches"], len(hosts)) if hosts else []
    return hosts, split(hosts, sizes)


def final_rows(run, rows, recovered, paused=None):
    """The summary row of every host of the run: host, outcome, from, to, reason, gate_s, drain_s.

    ``paused``: the pause the run ended with (paused_of): the hosts of the batches after it are waiting.
    """
    out = []
    for host in run["hosts"]:
        move = run["moves"].get(host)
        if host in run["refused"]:
            row = {"outcome": "refused", "reason": run["refused"][host]}
        elif move is None:
            row = {"outcome": "unreachable", "reason": "no answer"}
        elif host not in run["work"]:
            row = {"outcome": "not_started" if run["aborted"] else "skipped",
                   "reason": move["skip_reason"] if not run["aborted"] else "the run was aborted"}
        else:
            row = dict(rows.get(host) or (
                {"outcome": "waiting", "reason": "the run is paused after batch %s" % paused["after_batch"]} if paused
                else {"outcome": "not_started", "reason": "the run was aborted before this host's batch"}
                if run.get("abort") else {"outcome": "not_started", "reason": "the rollout stopped before this host's batch"}))
            back = recovered.get(host)
            if back and back.get("outcome") == "not_started":
                # The fleet rollback could not move it (the load balancer went away, say): it still runs
                # what its own batch left it on, and the row says so.
                row = dict(row, reason="the fleet rollback could not move it back"
                           + (": " + back["reason"] if back.get("reason") else ""))
            elif back:
                why = ("aborted by %s" % run["abort"]["by"] if run.get("abort")
                       else "switched back: the analysis of its batch failed" if row.get("analysis_failed")
                       else "fleet rollback after a failed batch")
                row = dict(back, reason=why + (": " + back["reason"] if back.get("reason") else ""))
        outcome = row["outcome"]
        frm = (move or {}).get("from", {}).get("version") or ("none" if move else "unknown")
        if outcome in ("deployed",) or (outcome == "rolled_back" and run["kind"] == "rollback"):
            to = move["to"]["version"]
        else:
            to = frm
        out.append({"host": host, "outcome": outcome, "from": frm, "to": to, "reason": row.get("reason") or "",
                    "gate_s": row.get("gate_s"), "drain_s": row.get("drain_s")})
    return out


def verdict(run, rows, batch_errors_found=(), closed="", smoke=None):
    """(failed, message): the run's verdict; never OK for a run that did not reach its target.

    A paused run is not failed while its hosts either reached the target or wait for their batch. An abort
    (playbooks/abort.yml) succeeds when no host is left on the new release.
    """
    if run.get("abort"):
        return abort_verdict(run, rows, batch_errors_found)
    bad = [row for row in rows if row["outcome"] not in DONE[run["kind"]] + ("waiting",)]
    smoke_failed = smoke is not None and smoke.get("passed") is False
    failed = bool(run["aborted"] or bad or batch_errors_found or smoke_failed)
    if not failed:
        return False, ""
    if run["aborted"]:
        return True, run["aborted"]
    what = ("Deployment of %s (release %s)" % (run["version"], run["release_id"]) if run["kind"] == "deploy"
            else "Rollback %s" % run["run_id"])
    hosts = "; ".join("%s %s%s" % (row["host"], row["outcome"], " (%s)" % row["reason"] if row["reason"] else "")
                      for row in bad)
    parts = ["%s %s: %s." % (what, "stopped when the deployment window closed" if closed else "failed",
                             hosts or "every host moved")]
    parts.extend("%s." % error for error in batch_errors_found)
    if smoke_failed:
        parts.append("Smoke test through the load balancer: %s." % smoke.get("msg"))
    if run["kind"] == "deploy":
        recovered = [row for row in rows if row["outcome"] == "rolled_back"]
        if closed:
            parts.append("The hosts deployed before it closed stay on %s; rerun in the next window to finish."
                         % run["version"])
        elif (any(row["reason"].startswith("switched back: the analysis") for row in recovered)
              and not any(row["reason"].startswith("fleet rollback") for row in recovered)):
            parts.append("The hosts whose analysis failed were switched back to their previous release%s." % (
                "; hosts of earlier batches stay on %s (rolling_failure_policy is halt)" % run["version"]
                if run["policy"]["failure_policy"] == "halt" and any(row["outcome"] == "deployed" for row in rows)
                else ""))
        elif run["policy"]["failure_policy"] == "halt":
            parts.append("rolling_failure_policy is halt: hosts of earlier batches stay on %s." % run["version"])
        elif no_way_back(run) and any(row["outcome"] == "deployed" for row in rows):
            parts.append("No fleet rollback: %s. Hosts of earlier batches stay on %s; fix forward, or roll back "
                         "with -e rollback_past_migration_reason=... (recorded)." % (no_way_back(run), run["version"]))
        elif any(row["reason"].startswith("the fleet rollback could not") for row in rows):
            stuck = [row["host"] for row in rows if row["reason"].startswith("the fleet rollback could not")]
            parts.append("The fleet rollback did not finish: %s still run%s %s." % (
                ", ".join(stuck), "s" if len(stuck) == 1 else "", run["version"]))
        elif any(row["reason"].startswith("fleet rollback") for row in recovered):
            parts.append("The fleet was rolled back to its previous release.")
        elif not any(row["outcome"] == "deployed" for row in rows):
            parts.append("No host runs %s; nothing needed a fleet rollback." % run["version"])
    return True, " ".join(parts)


def abort_verdict(run, rows, batch_errors_found=()):
    """(failed, message) of an abort: it failed when a host still runs the new release, or is in doubt."""
    stuck = [row for row in rows if row["outcome"] not in ("rolled_back", "not_started", "skipped", "refused")]
    if not stuck and not batch_errors_found:
        return False, ""

    def why(row):
        if row["outcome"] == "deployed" and not ((run["moves"].get(row["host"]) or {}).get("back") or {}).get("release_id"):
            # Its first release: there is nothing to switch back to.
            return "it has no earlier release to go back to: stop its service or deploy another release"
        return row["reason"]

    named = "; ".join("%s %s%s" % (row["host"], row["outcome"], " (%s)" % why(row) if why(row) else "") for row in stuck)
    parts = ["Abort of run %s (release %s) did not finish: %s." % (
        run["run_id"], run["release_id"], named or "every host went back")]
    parts.extend("%s." % error for error in batch_errors_found)
    if no_way_back(run):
        parts.append("No host was switched back: %s; fix forward, or roll back with -e rollback_past_migration_reason="
                     "... (recorded)." % no_way_back(run))
    return True, " ".join(parts)


def summary(run, rows, failed, now, lb_served=None, smoke=None):
    """The summary published with set_stats (conveyor_deploy / conveyor_rollback) and read by the callbacks."""
    committed = run.get("t_committed") or run["t_start"]
    found = {
        "run_id": run["run_id"], "kind": run["kind"], "release_id": run["release_id"] or run["run_id"],
        "version": run["version"], "started_at": run["started_at"],
        "finished_at": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "actor": run["actor"], "failed": bool(failed), "failure_policy": run["policy"]["failure_policy"],
        "reason": run["reason"],
        "phases_s": {"prepare": round(committed - run["t_start"], 1), "rollout": round(now - committed, 1)},
        "requests_served": lb_served, "hosts": rows,
    }
    if run.get("takeovers"):
        found["takeovers"] = run["takeovers"]
    if run.get("emergency"):
        found["emergency"] = run["emergency"]
    for key in ("paused", "resumed", "abort"):
        # The pause the run ended with, the pause a promote or abort continued from, and the abort.
        if run.get(key):
            found[key] = dict((name, value) for name, value in run[key].items() if name not in ("records", "restore"))
    migration = run.get("migration") or {}
    if migration.get("host"):
        found["migration"] = {key: migration.get(key) for key in ("host", "outcome", "rc", "duration_s", "irreversible",
                                                                  "error", "maintenance")
                              if migration.get(key) not in (None, "")}
    if run.get("past_migration"):
        found["past_migration"] = run["past_migration"]
    if smoke is not None:
        found["smoke"] = smoke.get("msg") or "not run"
    return found


def summary_lines(found):
    state = "FAILED" if found["failed"] else "PAUSED" if found.get("paused") else "ABORTED" if found.get("abort") else "OK"
    head = "%s%s %s (%s): %s; prepare %s s, rollout %s s" % (
        "EMERGENCY " if found.get("emergency") else "", "Release" if found["kind"] == "deploy" else "Rollback",
        found["release_id"], found["version"] or "-", state, found["phases_s"]["prepare"], found["phases_s"]["rollout"])
    if found.get("requests_served") is not None:
        head += ", %s requests served meanwhile" % found["requests_served"]
    if "smoke" in found:
        head += "; smoke test: %s" % found["smoke"]
    lines = [head]
    if found.get("paused"):
        lines.append(pause_line(found["paused"], found["run_id"]))
    if found.get("resumed"):
        lines.append("%s by %s; the run paused after batch %s at %s%s" % (
            "Aborted" if found.get("abort") else "Promoted", found["resumed"]["by"], found["resumed"]["after_batch"],
            found["resumed"]["paused_at"] or "?",
            ": " + found["abort"]["reason"] if (found.get("abort") or {}).get("reason") else ""))
    for row in found["hosts"]:
        lines.append("%-12s %-10s -> %-10s %-12s%s%s" % (
            row["host"], row["from"], row["to"], row["outcome"],
            (" gate %ss" % row["gate_s"]) if row.get("gate_s") is not None else "",
            (" (%s)" % row["reason"]) if row["reason"] else ""))
    return lines


# --------------------------------------------------------------------------- pause, promote, abort

def pause_after(value, canary_enabled, name="rolling_pause_after"):
    """The batch after which a deploy pauses (rolling_pause_after): 0 (never), 1 for ``canary``, or the number."""
    if value in (None, "", 0, False):
        return 0
    if str(value).strip().lower() == "canary":
        if not canary_enabled:
            raise PlanError("%s is canary, but rolling_canary is off: turn the canary on, or give the number of the "
                            "batch to pause after (e.g. 1)" % name)
        return 1
    if isinstance(value, bool) or not str(value).strip().isdigit() or int(str(value).strip()) < 1:
        raise PlanError("%s is %r: give canary, or the number of the batch after which the run pauses (1 for the "
                        "first batch)" % (name, value))
    return int(str(value).strip())


def pausing(run, index, batches, direction="forward"):
    """Whether the deploy pauses after batch ``index`` of ``batches`` (none after its last batch)."""
    point = run["policy"].get("pause_after") or 0
    return (run["kind"] == "deploy" and direction == "forward" and not run.get("resumed") and point == index
            and index < batches)


def paused_of(run, records):
    """The pause this run ended with (its last forward batch record's ``paused``), or None."""
    if run.get("resumed") or run["kind"] != "deploy":
        return None
    forward = [record for record in records if record.get("direction", "forward") == "forward"]
    return (forward[-1].get("paused") or None) if forward else None


def pause_line(paused, run_id):
    return ("PAUSED after batch %s of %s%s, lock held until %s. Continue: playbooks/promote.yml -e run_id=%s; "
            "switch back: playbooks/abort.yml -e run_id=%s" % (
                paused["after_batch"], paused["batches"], " with the canary at %s%% weight" % paused["canary_weight"]
                if paused.get("canary_weight") else "", paused.get("until") or "?", run_id, run_id))


def pause_state(run, records, paused):
    """What a paused run leaves on each host it locked, for promote and abort (host_steps' ``pause.state``)."""
    keep = dict((key, value) for key, value in run.items() if key not in ("heartbeat",))
    return {"run": keep, "records": [slim(record) for record in records], "release_id": run["release_id"],
            "version": run["version"], "after_batch": paused["after_batch"], "batches": paused["batches"], "at": paused.get("at"),
            "canary": bool(paused.get("canary_weight"))}


def resume(run_id, answers, mode, actor_name, reason="", now=None):
    """The run object that promotes (``mode`` promote) or aborts a paused run, from each host's resume answer.

    ``answers``: host -> what the host reported (``paused``, ``state``, ``error``), None when it did not answer.
    ``run_id``: the run asked for ("" for whichever is paused). Raises PlanError naming what is wrong.
    """
    problems = ["%s: %s" % (host, (answer or {}).get("error") or "no answer")
                for host, answer in sorted(answers.items()) if not answer or answer.get("error")]
    if problems:
        raise PlanError("Could not take back the paused run on every host: %s." % "; ".join(problems))
    paused = dict((host, answer) for host, answer in answers.items() if answer.get("paused"))
    if not paused:
        raise PlanError("No paused run%s holds %s: nothing to %s. The checklist and playbooks/verify.yml show "
                        "what holds each host's lock." % (" " + run_id if run_id else "", ", ".join(sorted(answers)),
                                                          mode))
    ids = sorted(set(answer["paused"]["run_id"] for answer in paused.values()))
    if len(ids) > 1:
        held = ["%s on %s" % (i, ", ".join(sorted(h for h, a in paused.items() if a["paused"]["run_id"] == i)))
                for i in ids]
        raise PlanError("These hosts are held by different paused runs (%s): give -e run_id=<one of them>."
                        % "; ".join(held))
    state = next(iter(paused.values()))["state"] or {}
    found = dict(state.get("run") or {})
    if not found.get("run_id") or found["run_id"] != ids[0]:
        raise PlanError("The state paused run %s left is not readable: abort it with playbooks/abort.yml, or deploy "
                        "again once its lock expires." % ids[0])
    absent = [host for host in found["work"] if host not in answers]
    if absent:
        raise PlanError("Paused run %s moves %s, but %s %s not in this play (a --limit, or another inventory?): its "
                        "pause cannot be continued from part of its hosts. Run it on all of them; nothing was changed."
                        % (ids[0], ", ".join(found["work"]), ", ".join(absent), "is" if len(absent) == 1 else "are"))
    missing = [host for host in found["work"] if host not in paused]
    if missing:
        raise PlanError("Paused run %s locked %s, but %s no longer report%s it paused (%s): its pause cannot be "
                        "continued. Check those hosts with playbooks/verify.yml, then deploy again." % (
                            ids[0], ", ".join(found["work"]), ", ".join(missing), "s" if len(missing) == 1 else "",
                            "; ".join("%s: %s" % (host, answers[host].get("msg") or "no paused lock") for host in missing)))
    moment = now or utcnow()
    records = [dict((key, value) for key, value in record.items() if key != "paused")
               for record in state.get("records") or []]
    last = (state.get("records") or [{}])[-1].get("paused") or {}
    after = int(state.get("after_batch") or last.get("after_batch") or 0)
    found["resumed"] = {"mode": mode, "by": actor_name, "at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "paused_at": last.get("at") or "", "after_batch": after, "records": records,
                        "restore": dict(last.get("restore") or {})}
    found["start_batch"] = after if mode == "promote" else len(found["batches"])
    if mode == "abort":
        found["abort"] = {"by": actor_name, "reason": reason or "", "at": found["resumed"]["at"]}
    found["t_start"] = found["t_committed"] = moment.timestamp()
    return found


def resumed_line(run):
    resumed = run["resumed"]
    if run.get("abort"):
        return "Aborting paused run %s (release %s, paused after batch %s): switching back the hosts it moved%s." % (
            run["run_id"], run["release_id"], resumed["after_batch"],
            " (%s)" % run["abort"]["reason"] if run["abort"]["reason"] else "")
    left = run["batches"][run["start_batch"]:]
    return "Promoting paused run %s (release %s): batches %d to %d of %d, %d host(s), at least %d serving throughout." % (
        run["run_id"], run["release_id"], run["start_batch"] + 1, len(run["batches"]), len(run["batches"]),
        sum(len(batch) for batch in left), run["policy"]["required_serving"])


# --------------------------------------------------------------------------- rollback targets

def rollback_move(info, rollback_to, repair=False):
    """What one host does in a rollback, from its release_info result: a record for ``commit``.

    Without rollback_to the target is the previous good release, except when the live release
    was put there by a rollback run: then the host has been rolled back already and a rerun
    (a retry of that run) leaves it alone; going further back needs rollback_to.

    With ``repair`` (this run took over the lock of a run that died on the host), a host that
    would be left alone goes through its batch on its live release instead: the dead run may
    have left it drained, or switched and not restarted.
    """
    record = _rollback_move(info, rollback_to)
    if repair and not record["work"] and not record.get("error") and record["to"]:
        record.update(work=True, repair=True)
        record.pop("skip_reason", None)
    return record


def past_migrations(record, crosses, reason):
    """Refuse a rollback that goes back past a migration that cannot be undone, unless ``reason`` says why.

    ``crosses``: the host's ``target_crosses``. With a reason the record carries them (``past_migration``), and
    the run records the override; without one the host refuses, naming the release and the way out.
    """
    if not crosses or not record.get("work") or record.get("error"):
        return record
    if reason.strip():
        return dict(record, past_migration=[dict(entry) for entry in crosses])
    named = "; ".join("release %s (%s): %s" % (entry["release_id"], entry.get("version"), entry.get("why"))
                      for entry in crosses)
    return dict(record, work=False, error="going back to %s would go back past a database migration that cannot be "
                "undone, %s. Fix forward, or give -e rollback_past_migration_reason=\"...\" to roll back anyway "
                "(the reason is recorded)" % ((record.get("to") or {}).get("version"), named))


def _rollback_move(info, rollback_to):
    current = info.get("current") or {}
    record = {"from": current, "back": current, "to": {}, "work": False}
    if rollback_to:
        if rollback_to in (current.get("version"), current.get("release_id")):
            record["to"] = current
            record["skip_reason"] = "already runs %s" % rollback_to
            return record
    elif (current.get("activated_reason") or "").startswith("rollback"):
        record["to"] = current
        record["skip_reason"] = "already rolled back to %s by run %s; to go further back, give -e rollback_to=<version>" % (
            current.get("version"), current.get("activated_run") or "(unknown)")
        return record
    target = info.get("target")
    if not target:
        record["error"] = info.get("target_problem") or "no rollback target"
        return record
    record["to"] = target
    record["work"] = True
    return record
