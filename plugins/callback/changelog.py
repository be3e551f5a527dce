# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: changelog
type: notification
short_description: Keep a tamper-evident change log of every deployment, rollback and verification
version_added: "0.1.0"
description:
  - Writes one record per run of the collection's playbooks (deploy, rollback, verify, environment, drift) to a
    JSON Lines file. A record answers who (local user, controller, AWX job, template and launcher), what (application,
    environment, release, version from and to on each host), when (start, end, and each host's phases, namely inspect, lock,
    stage, drain, switch, restart, verify, enable, revert, finish), why (change id, approver, override reason) and with
    what outcome on each host (deployed, skipped, rolled_back, failed, unreachable...), with each failure's task and
    censored message and the pre-deployment checklist's results.
  - Each record carries the sha256 of the record before it and of itself, so an edited, removed or reordered record
    is found by C(tools/conveyor-changelog verify).
  - Against truncation, emptying or resealing, each run leaves anchors (the log's last C(seq) and C(record_sha256)
    as the run found it) where the log's owner cannot rewrite them - the history of every host the run locks, and
    every C(conveyor.deploy.notify) payload (C(changelog_head)); C(playbooks/changelog_verify.yml) checks the log
    against the hosts' anchors and names any that disagrees.
  - Runs that use none of the collection's roles or modules are not recorded.
  - Honours C(no_log) (task-level, per result and per loop item) and drops module invocations; extra vars are never
    copied, except the change fields and AWX job fields named above.
  - A notification callback, so it runs beside AWX's or ansible-runner's own stdout callback. Enable it with
    C(callbacks_enabled = conveyor.deploy.changelog) in ansible.cfg or E(ANSIBLE_CALLBACKS_ENABLED).
author:
  - conveyor.deploy developers (@conveyor-deploy)
requirements:
  - enabled in C(callbacks_enabled)
options:
  path:
    description:
      - The change log file. Its directory is created when missing. Point it at durable storage (AWX deletes a job's
        pod after the run).
    type: path
    default: ~/.ansible/conveyor/changelog.jsonl
    env:
      - name: CONVEYOR_CHANGELOG_PATH
    ini:
      - section: conveyor_changelog
        key: path
  required:
    description:
      - When true, a change log that cannot be written stops the run before any host changes (use it for
        production). When false, the run goes on with a warning.
    type: bool
    default: false
    env:
      - name: CONVEYOR_CHANGELOG_REQUIRED
    ini:
      - section: conveyor_changelog
        key: required
  report_dir:
    description:
      - When set, also write each run's HTML report (a per-host timeline of phases) there, as C(<run id>.html) and
        C(latest.html).
    type: path
    env:
      - name: CONVEYOR_CHANGELOG_REPORT_DIR
    ini:
      - section: conveyor_changelog
        key: report_dir
"""

EXAMPLES = r"""
# ansible.cfg
# [defaults]
# callbacks_enabled = conveyor.deploy.changelog
# [conveyor_changelog]
# path = /var/lib/conveyor/changelog.jsonl
# required = true
# report_dir = /var/lib/conveyor/reports

# Then, to check the chain and read the history:
#   python3 tools/conveyor-changelog verify /var/lib/conveyor/changelog.jsonl
#   python3 tools/conveyor-changelog history /var/lib/conveyor/changelog.jsonl > CHANGELOG.md
"""

import datetime
import os
import signal
import sys

from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _changelog, _rollout, _runinfo

# Which phase of a host's run a task belongs to: (action, state), with None for "any state".
# The release module's default state is staged.
_PHASES = {
    ("release_info", None): "inspect",
    ("deploy_lock", "present"): "lock", ("deploy_lock", "absent"): "finish",
    ("release", "staged"): "stage", ("release", "active"): "switch",
    ("release", "good"): "finish", ("release", "failed"): "finish", ("release", "pruned"): "finish",
    ("release", "absent"): "finish",
    ("haproxy_server", "drained"): "drain", ("haproxy_server", "enabled"): "enable",
    ("health_check", None): "verify",
    ("ansible.builtin.systemd_service", None): "restart", ("ansible.builtin.systemd", None): "restart",
    ("ansible.builtin.service", None): "restart",
}
_DEFAULT_STATES = {"release": "staged", "deploy_lock": "present"}
_ROLE_PHASES = {"preflight": "checklist", "environment": "configure"}


def phase_of(task, module_args=None):
    """The phase a task belongs to, or None for bookkeeping tasks.

    module_args are the arguments the module ran with (the result's invocation), which
    tell a templated state; the task's own arguments serve before the result is known.
    """
    action = _runinfo.action_of(task)
    prefix = _runinfo.COLLECTION + "."
    short = action[len(prefix):] if action.startswith(prefix) else action
    args = module_args if module_args else (task.args or {})
    state = args.get("state") or _DEFAULT_STATES.get(short)
    phase = _PHASES.get((short, state)) or _PHASES.get((short, None))
    if phase is None and getattr(task, "_role", None) is not None:
        phase = _ROLE_PHASES.get(str(task._role.get_name()).rsplit(".", 1)[-1])
    return phase


def needs_result(task):
    """Whether a task's phase depends on its result: one of ours with a templated state."""
    state = (task.args or {}).get("state")
    return _runinfo.action_of(task) in _STATEFUL and (state is None or "{{" in str(state))


_STATEFUL = tuple(_runinfo.COLLECTION + "." + name for name in ("release", "deploy_lock", "haproxy_server"))


class RunRecorder(object):
    """Gathers one run's record from the callback's events; knows nothing of Ansible's objects."""

    def __init__(self, playbook, check_mode=False, now=_runinfo.utcnow):
        self.now = now
        self.started = now()
        self.playbook = playbook
        self.check_mode = check_mode
        self.run_id = _runinfo.shared_run_id()
        self.extra_vars = {}
        self.context = {}
        self.relevant = False
        self.configured = False
        self.hosts = {}
        self.failures = []
        self._open = {}

    def _host(self, name):
        return self.hosts.setdefault(name, {"phases": []})

    def task_started(self, host):
        self._open[host] = self.now()

    def task_done(self, host, phase, failed=False, extra_hosts=(), window=None):
        """A finished task: its phase for ``host`` and ``extra_hosts``, over the task's time or ``window``
        (start and end, epoch seconds), when the task timed its own load-balancer call."""
        started = self._open.pop(host, None) or self.now()
        ended = self.now()
        if window and len(window) == 2 and all(isinstance(edge, (int, float)) for edge in window):
            started, ended = (datetime.datetime.fromtimestamp(edge, datetime.timezone.utc) for edge in window)
        for name in [host] + [other for other in extra_hosts if other != host]:
            entry = self._host(name)
            if phase is None:
                continue
            phases = entry["phases"]
            # Switching and restarting again after a failure in the same batch is the revert.
            if phase in ("switch", "restart") and any(p["failed"] for p in phases[-4:]):
                phase_name = "revert"
            else:
                phase_name = phase
            if phases and phases[-1]["name"] == phase_name and not phases[-1]["failed"]:
                phases[-1]["end"] = _runinfo.stamp(ended)
                phases[-1]["failed"] = bool(failed)
            else:
                phases.append({"name": phase_name, "start": _runinfo.stamp(started), "end": _runinfo.stamp(ended),
                               "failed": bool(failed)})

    def task_steps(self, host, steps, failed=False):
        """A task that timed its own steps (the cutover module): each step becomes a phase of the host."""
        started = self._open.pop(host, None) or self.now()
        if not steps:
            self._open[host] = started
            return self.task_done(host, "switch", failed=failed)
        phases = self._host(host)["phases"]
        for step in steps:
            begin = started + datetime.timedelta(seconds=float(step.get("start_s") or 0))
            end = started + datetime.timedelta(seconds=float(step.get("end_s") or 0))
            if phases and phases[-1]["name"] == step.get("name") and not phases[-1]["failed"]:
                phases[-1]["end"] = _runinfo.stamp(end)
                phases[-1]["failed"] = bool(step.get("failed"))
            else:
                phases.append({"name": str(step.get("name")), "start": _runinfo.stamp(begin),
                               "end": _runinfo.stamp(end), "failed": bool(step.get("failed"))})

    def failure(self, host, task_name, message):
        self.failures.append({"host": host, "task": task_name, "msg": message})
        self._host(host)

    def record(self, stats_summary, custom, interrupted=None):
        """The record for the change log, from the events and the roles' set_stats summaries.

        ``interrupted`` names the signal that is ending the run before its end: the run and every host
        that did not end otherwise are then recorded as interrupted.
        """
        finished = self.now()
        summary, rows = _runinfo.run_summary(custom)
        preflight = custom.get("conveyor_preflight") or {}
        hosts = {}
        for name in sorted(set(self.hosts) | set(stats_summary) | set(rows)):
            entry = dict(self.hosts.get(name, {"phases": []}))
            row = rows.get(name, {})
            counts = stats_summary.get(name, {})
            if row.get("outcome"):
                outcome = row["outcome"]
            elif preflight.get("passed") is False and not summary:
                outcome = "refused"
            elif counts.get("unreachable"):
                outcome = "unreachable"
            elif counts.get("failures"):
                outcome = "failed"
            elif interrupted:
                outcome = "interrupted"
            elif self.check_mode:
                outcome = "previewed"
            else:
                outcome = "changed" if counts.get("changed") else "ok"
            entry["outcome"] = outcome
            for key, names in (("from", ("from", "before")), ("to", ("to", "after"))):
                for field in names:
                    if row.get(field) not in (None, ""):
                        entry[key] = str(row[field])
                        break
            running = (summary.get("versions") or {}).get(name) if isinstance(summary.get("versions"), dict) else None
            if running:
                entry["version"] = str(running)
            if row.get("reason"):
                entry["reason"] = row["reason"]
            if entry["phases"]:
                entry["started_at"] = entry["phases"][0]["start"]
                entry["finished_at"] = entry["phases"][-1]["end"]
            hosts[name] = entry
        # An abort leaves the hosts after the pause not_started, as it should.
        bad = [name for name, entry in hosts.items() if entry["outcome"] in _rollout.BAD and not summary.get("abort")]
        failed = bool(summary.get("failed")) or bool(bad) or any(
            counts.get("failures") or counts.get("unreachable") for counts in stats_summary.values())
        change = dict(_runinfo.change_from(self.extra_vars))
        change.update({key: value for key, value in (preflight.get("change") or {}).items() if value})
        record = {
            "run_id": self.run_id,
            "kind": _runinfo.kind_of(self.playbook, custom),
            "playbook": os.path.basename(self.playbook or ""),
            "application": self.context.get("application"),
            "environment": self.context.get("environment") or summary.get("environment"),
            "release_id": summary.get("release_id") or summary.get("run_id"),
            "version": summary.get("version") or self.context.get("version"),
            "check_mode": self.check_mode,
            "actor": _runinfo.actor(self.extra_vars),
            "change": change,
            "started_at": _runinfo.stamp(self.started),
            "finished_at": _runinfo.stamp(finished),
            "duration_s": round((finished - self.started).total_seconds(), 3),
            "outcome": "interrupted" if interrupted else "failed" if failed else "paused" if summary.get("paused")
            else "aborted" if summary.get("abort") else "succeeded",
            "rolled_back": any(entry["outcome"] == "rolled_back" for entry in hosts.values()),
            "hosts": hosts,
            "failures": self.failures,
        }
        if interrupted:
            record["interrupted_by"] = interrupted
        if summary.get("takeovers"):
            record["took_over"] = [entry.get("run_id") for entry in summary["takeovers"]]
        if summary.get("reason"):
            record["reason"] = summary["reason"]
        if summary.get("phases_s"):
            record["phases_s"] = summary["phases_s"]
        # The migration (where, outcome, duration, whether it can be undone), a rollback's override past one, and
        # the analyses between batches (each metric's value, threshold and verdict).
        # A pause (rolling_pause_after), and the pause a promote or abort continued (that run's id and batch).
        for key in ("migration", "past_migration", "analysis", "watch", "emergency", "paused", "resumed", "abort"):
            if summary.get(key):
                record[key] = summary[key]
        if record["kind"] == "maintenance" and summary:
            # playbooks/maintenance.yml: the state it set, the message and what the backend showed before.
            keys = ("state", "backend", "message", "before", "retry_after", "changed")
            record["maintenance"] = {key: summary.get(key) for key in keys}
        if preflight.get("checks"):
            record["checklist"] = preflight["checks"]
        if preflight.get("window"):
            record["window"] = preflight["window"]
        return record


def dead_run_records(summary, found_by, environment=None, application=None):
    """A record for each run whose locks this run took over (it died before it could record itself)."""
    records = []
    for entry in summary.get("takeovers") or []:
        if not entry.get("run_id"):
            continue
        user, dummy, controller = (entry.get("owner") or "?@?").rpartition("@")
        records.append({
            "run_id": entry["run_id"], "kind": summary.get("kind") or "deploy", "application": application,
            "actor": {"user": user or "?", "controller": controller or "?"},
            "started_at": entry.get("started_at") or None,
            "environment": environment or summary.get("environment"), "outcome": "interrupted",
            "interrupted_by": "its controller process died (found by run %s)" % found_by,
            "found_by": found_by, "reason": entry.get("reason") or "",
            "hosts": {host: {"outcome": "interrupted", "phases": []} for host in entry.get("hosts") or []},
            "failures": [],
        })
    return records


class CallbackModule(CallbackBase):
    """Record each run of the collection's playbooks in a hash-chained change log."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "conveyor.deploy.changelog"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self.sink = None
        self.recorder = None
        self.report_dir = None
        self._main_pid = os.getpid()
        self._signals = {}
        self._finished = False

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self.sink = _changelog.ChangeLogFile(self.get_option("path"))
        self.report_dir = self.get_option("report_dir")

    def v2_playbook_on_start(self, playbook):
        self.recorder = RunRecorder(getattr(playbook, "_file_name", ""),
                                    check_mode=bool(context.CLIARGS.get("check", False)))
        self._watch_signals()
        problem = self.sink.problem()
        if problem is None:
            # The head as this run finds it: the rollout leaves it in each host's history, notify in each payload.
            _changelog.publish_head(_changelog.head(self.sink.path))
            return
        if self.get_option("required"):
            self._display.error("conveyor.deploy.changelog: the change log is required and %s. Nothing was changed. "
                                "Fix the path or its permissions, or set CONVEYOR_CHANGELOG_PATH." % problem)
            # A callback cannot fail a task; ending the process before the first play is how
            # "required" keeps an unrecorded run from changing anything.
            raise SystemExit(1)
        self._display.warning("conveyor.deploy.changelog: %s; this run will not be recorded "
                              "(set [conveyor_changelog] path, or required = true to refuse such runs)." % problem)

    def v2_playbook_on_play_start(self, play):
        if not self.recorder.configured:
            self.recorder.configured = True
            dummy_manager, self.recorder.extra_vars, variables = _runinfo.play_variables(play)
            self.recorder.context = _runinfo.play_context(variables)

    def v2_runner_on_start(self, host, task):
        if _runinfo.is_collection_task(task):
            self.recorder.relevant = True
        self.recorder.task_started(host.get_name())

    def _done(self, result, failed=False):
        task = result.task
        if _runinfo.is_collection_task(task):
            self.recorder.relevant = True
        # result.result is a converted copy made on each access by each callback: read it only for
        # the few tasks whose phase depends on what ran (a templated state, the servers drained).
        module_args = None
        if needs_result(task):
            module_args = (result.result.get("invocation") or {}).get("module_args")
        action = _runinfo.action_of(task)
        if action in _runinfo.TIMED_STEPS:
            return self.recorder.task_steps(result.host.get_name(), result.result.get("phases") or [], failed=failed)
        extra_hosts, window = (), None
        if action == _runinfo.ROLLOUT_BATCH:
            # Once per batch, for every host of the batch; the drain may have been made by the previous
            # batch's task, whose window it carries.
            phase = "drain" if (task.args or {}).get("step") == "drain" else "enable"
            found = result.result
            extra_hosts = tuple(found.get("moving") or found.get("hosts") or ())
            window = found.get("lb_window")
        else:
            phase = phase_of(task, module_args)
        if phase in ("drain", "enable") and not extra_hosts:
            extra_hosts = tuple(result.result.get("changed_servers") or ())
        self.recorder.task_done(result.host.get_name(), phase, failed=failed, extra_hosts=extra_hosts, window=window)

    def v2_runner_on_ok(self, result):
        result = _runinfo.callback_result(result)
        self._done(result)

    def v2_runner_on_skipped(self, result):
        result = _runinfo.callback_result(result)
        self.recorder.task_done(result.host.get_name(), None)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        result = _runinfo.callback_result(result)
        self._done(result, failed=not ignore_errors)
        if not ignore_errors:
            self.recorder.failure(result.host.get_name(), result.task_name,
                                  _runinfo.failure_message(result.result, result.task))

    def v2_runner_on_unreachable(self, result):
        result = _runinfo.callback_result(result)
        self._done(result, failed=True)
        self.recorder.failure(result.host.get_name(), result.task_name,
                              "unreachable: " + _runinfo.failure_message(result.result, result.task))

    def _watch_signals(self):
        """Record the run as interrupted when SIGINT or SIGTERM (Ctrl-C, a cancelled job) ends it.

        Ansible's own handlers (which stop the workers and end the process) are installed before
        the playbook starts; each is called after the record is written. A SIGKILL cannot be caught:
        the next run that takes over the dead run's locks records it (dead_run_records).
        """
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._signals[signum] = signal.signal(signum, self._on_signal)
            except (ValueError, OSError):
                # Not the main thread (an embedding that runs the playbook in a thread): leave it.
                continue

    def _on_signal(self, signum, frame):
        previous = self._signals.get(signum, signal.SIG_DFL)
        if os.getpid() == self._main_pid and not self._finished and self.recorder is not None \
                and self.recorder.relevant:
            self._finished = True
            try:
                # Plain writes to stderr: the display may be in use by the code the signal interrupted.
                self._write(self.recorder.record({}, {}, interrupted=signal.Signals(signum).name), say=_stderr)
            except Exception as exc:  # pylint: disable=broad-except
                # Never keep a signal from ending the run.
                _stderr("conveyor.deploy.changelog: could not record the interruption: %s" % exc)
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            os.kill(os.getpid(), signum)

    def v2_playbook_on_stats(self, stats):
        if self._finished:
            # Recorded as interrupted already.
            return
        self._finished = True
        if self.recorder is None or not self.recorder.relevant:
            return
        counts = {host: stats.summarize(host) for host in stats.processed}
        custom = (getattr(stats, "custom", {}) or {}).get("_run", {})
        record = self.recorder.record(counts, custom)
        if self.sink.problem() is not None:
            return
        summary = _runinfo.run_summary(custom)[0]
        dead = dead_run_records(summary, record["run_id"], record.get("environment"), record.get("application"))
        try:
            known = self.sink.recorded(entry["run_id"] for entry in dead)
            for entry in dead:
                if entry["run_id"] not in known:
                    self._write(entry, report=False)
        except (OSError, _changelog.ChainError) as exc:
            self._display.warning("conveyor.deploy.changelog: could not record the interrupted run: %s" % exc)
        self._write(record)

    def _write(self, record, report=True, say=None):
        """Append a record; say where it went (or that it could not be written), on stderr."""
        # On stderr: a JSON stdout callback's output stays one JSON document.
        say = say or (lambda text: self._display.display(text, stderr=True))
        try:
            sealed = self.sink.append(record)
        except (OSError, _changelog.ChainError) as exc:
            say("[WARNING]: conveyor.deploy.changelog: could not write the record: %s" % exc)
            return
        _changelog.publish_head({"seq": sealed["seq"], "sha256": sealed["record_sha256"]})
        message = "conveyor.deploy.changelog: %s %s recorded as record %d in %s (sha256 %s)" % (
            sealed["kind"], sealed["outcome"], sealed["seq"], self.sink.path, sealed["record_sha256"][:16])
        if self.report_dir and report:
            try:
                message += "; report %s" % write_report(self.report_dir, sealed)
            except OSError as exc:
                message += "; could not write the report: %s" % exc
        say(message)


def _stderr(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def write_report(directory, record):
    """Write a run's HTML report as <run id>.html and latest.html; return the first path."""
    directory = os.path.abspath(os.path.expanduser(directory))
    os.makedirs(directory, exist_ok=True)
    page = _changelog.render_report(record)
    path = os.path.join(directory, "%s.html" % record["run_id"])
    for target in (path, os.path.join(directory, "latest.html")):
        with open(target + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(page)
        os.replace(target + ".tmp", target)
    return path
