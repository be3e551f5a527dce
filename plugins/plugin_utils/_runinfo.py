# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the change log and notify callbacks both need to know about a run.

Who runs it (local user, controller, AWX job), which application, environment and
version it is about, what kind of run it is, and how to keep a secret out of what
they write.
"""

from __future__ import annotations

import binascii
import datetime
import getpass
import os
import socket

COLLECTION = "conveyor.deploy"
# The module that moves a host in one execution and times its own steps.
CUTOVER = COLLECTION + ".cutover"
# The rollout's action plugins that time their own steps (a host's prepare and finish), or drain
# and re-enable a batch.
ROLLOUT_HOST = COLLECTION + ".rollout_host"
ROLLOUT_BATCH = COLLECTION + ".rollout_batch"
TIMED_STEPS = (CUTOVER, ROLLOUT_HOST)
CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"

# The summaries the collection's roles publish with set_stats, and the kind of run each means.
STATS_KINDS = (("conveyor_rollback", "rollback"), ("conveyor_deploy", "deploy"), ("conveyor_verify", "verify"),
               ("conveyor_environment", "environment"), ("conveyor_maintenance", "maintenance"))

# Extra vars that name the change and its approval (the AWX survey fields, docs/governance.md).
# deploy_window_now is a test setting (refused in production): a run that judged its window at an injected time
# says so in the change log.
CHANGE_VARS = {"change_id": "change_id", "change_approver": "approver", "override_reason": "override_reason",
               "deploy_window_now": "window_now"}
AWX_VARS = {"job_id": ("awx_job_id", "tower_job_id"), "template": ("awx_job_template_name", "tower_job_template_name"),
            "launched_by": ("awx_user_name", "tower_user_name"), "workflow_job_id": ("awx_workflow_job_id",)}


# The run id of one ansible-playbook process, shared by the callbacks and the run object.
RUN_ID_ENV = "CONVEYOR_RUN_ID"


def new_run_id(moment=None, rand=os.urandom):
    """``<UTC second>-<8 hex>``: sortable, and unique since it is also the lock token."""
    moment = moment or datetime.datetime.now(datetime.timezone.utc)
    return "%s-%s" % (moment.strftime("%Y%m%dT%H%M%SZ"), binascii.hexlify(rand(4)).decode("ascii"))


def shared_run_id(environ=None, moment=None, rand=os.urandom):
    """The run id of this ansible-playbook process: the callbacks and the plan share it.

    The first caller (a callback, when the playbook starts) fixes it in the environment; the
    workers Ansible starts later inherit it, so the plan reads the same id.
    """
    environ = os.environ if environ is None else environ
    found = environ.get(RUN_ID_ENV)
    if not found:
        found = new_run_id(moment, rand)
        environ[RUN_ID_ENV] = found
    return found


def say(display, text):
    """Show an operator a line from an action plugin (progress, tables).

    Under a machine-readable stdout callback (json) the line goes to stderr, so that standard
    output stays one JSON document.
    """
    from ansible import constants as C  # pylint: disable=import-outside-toplevel
    callback = str(getattr(C, "DEFAULT_STDOUT_CALLBACK", "") or "")
    display.display(text, stderr=callback.rsplit(".", 1)[-1] in ("json", "jsonl"))


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def actor(extra_vars):
    """Who runs this: the local user and controller, and the AWX job when there is one."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    found = {"user": user, "controller": socket.gethostname()}
    awx = {}
    for key, names in AWX_VARS.items():
        for name in names:
            if extra_vars.get(name) not in (None, ""):
                awx[key] = str(extra_vars[name])
                break
    if awx:
        found["awx"] = awx
    return found


def change_from(extra_vars):
    return {key: str(extra_vars[name]) for name, key in CHANGE_VARS.items() if extra_vars.get(name) not in (None, "")}


def _plain(value):
    """A variable's value when it is a plain scalar, not a template or a vaulted string."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and "{{" not in value and "{%" not in value and not value.startswith("$ANSIBLE_VAULT"):
        return value
    return None


def play_variables(play):
    """(manager, extra_vars, variables): the play's variables as its first host sees them, read once.

    Best effort: without a variable manager or hosts, the extra vars alone.
    """
    manager = getattr(play, "get_variable_manager", lambda: None)()
    if manager is None:
        return None, {}, {}
    extra = dict(getattr(manager, "extra_vars", {}) or {})
    variables = dict(extra)
    try:
        inventory = getattr(manager, "_inventory", None)
        hosts = inventory.get_hosts(play.hosts) if inventory is not None else []
        if hosts:
            variables = manager.get_vars(play=play, host=hosts[0], include_hostvars=False)
    except Exception:  # pylint: disable=broad-except
        pass  # the record falls back on the roles' summaries
    return manager, extra, variables


# The support contacts an environment names (env_contacts), in the order a failure message lists them.
CONTACT_ROLES = (("on_call", "on call"), ("escalation", "escalation"), ("owner", "owner"))


def contacts_of(value):
    """``{role: who}`` of an env_contacts mapping: plain non-empty texts only (templates are not rendered here)."""
    if not isinstance(value, dict):
        return {}
    found = {}
    for role, who in value.items():
        text = _plain(who)
        if isinstance(role, str) and text and text.strip():
            found[role] = text.strip()
    return found


def contacts_line(contacts):
    """'Contacts: on call ..., escalation ..., owner ...' (other roles after, by name); '' without any."""
    known = [(label, contacts[role]) for role, label in CONTACT_ROLES if contacts.get(role)]
    others = [(role.replace("_", " "), contacts[role]) for role in sorted(contacts)
              if role not in dict(CONTACT_ROLES)]
    said = ["%s %s" % pair for pair in known + others]
    return "Contacts: %s." % ", ".join(said) if said else ""


def play_context(variables):
    """{application, environment, version, contacts, emergency} from a play's variables.

    Only plain values are taken: templates are not rendered here, and vaulted values never read.
    """
    found = {}
    for key, names in (("application", ("app_name",)), ("environment", ("env_name",)),
                       ("version", ("app_version", "rolling_version"))):
        for name in names:
            value = _plain(variables.get(name))
            if value:
                found[key] = value
                break
    contacts = contacts_of(variables.get("env_contacts"))
    if contacts:
        found["contacts"] = contacts
    reason = _plain(variables.get("emergency_reason"))
    flag = variables.get("emergency")
    if reason and (flag is True or str(_plain(flag)).lower() in ("true", "yes", "1", "on")):
        # -e emergency=true -e emergency_reason=...: the run is announced as an emergency.
        found["emergency"] = reason
    return found


def kind_of(playbook_path, custom_stats):
    """deploy, rollback, verify, environment... from the roles' summaries, else the playbook's name."""
    for key, kind in STATS_KINDS:
        if key in custom_stats:
            return kind
    name = os.path.splitext(os.path.basename(playbook_path or "run"))[0]
    return name or "run"


_RESOLVED = {}


class _LegacyResult(object):
    """A TaskResult (ansible-core 2.17 and 2.18) seen through the names of 2.19's CallbackTaskResult."""

    __slots__ = ("_wrapped",)

    def __init__(self, wrapped):
        self._wrapped = wrapped

    @property
    def host(self):
        return self._wrapped._host

    @property
    def task(self):
        return self._wrapped._task

    @property
    def result(self):
        return self._wrapped._result

    @property
    def task_name(self):
        return self._wrapped.task_name


def callback_result(result):
    """The task result a callback hook receives, with ``host``, ``task``, ``result`` and ``task_name``.

    ansible-core 2.19 hands callbacks a CallbackTaskResult with those names; 2.17 and 2.18 a TaskResult,
    which keeps them private.
    """
    return result if hasattr(result, "host") else _LegacyResult(result)


def action_of(task):
    """The task's action, fully qualified when Ansible can resolve it.

    A templated action is only resolved on the worker: the controller's copy of the task keeps the
    template, and asking it to resolve one would only warn.
    """
    action = getattr(task, "action", "") or ""
    if "{{" in action:
        return action
    # Resolving goes through the plugin loader (~0.2 ms) and a deploy starts ~600 host-tasks over
    # ~250 tasks: resolve each task once. Both callbacks ask; a task's action never changes.
    key = getattr(task, "_uuid", None)
    resolved = _RESOLVED.get(key) if key is not None else None
    if resolved is None:
        resolved = getattr(task, "resolved_action", None) or action
        if key is not None:
            _RESOLVED[key] = resolved
    return resolved


def run_summary(custom_stats):
    """(summary, {host: row}): the collection role summary a run published with set_stats, if any."""
    summary = next((custom_stats[key] for key, dummy_kind in STATS_KINDS if key in custom_stats), None) or {}
    hosts = summary.get("hosts")
    rows = {row.get("host"): row for row in hosts if isinstance(row, dict)} if isinstance(hosts, list) else {}
    return summary, rows


def is_collection_task(task):
    """Whether a task belongs to this collection: its action, or the role it comes from."""
    action = action_of(task)
    if action.startswith(COLLECTION + "."):
        return True
    role = getattr(task, "_role", None)
    return role is not None and str(role.get_name()).startswith(COLLECTION + ".")


def censor(result, task=None):
    """A result safe to keep: the whole of it hidden under no_log, loop items under their own no_log."""
    if (task is not None and getattr(task, "no_log", False) is True) or result.get("_ansible_no_log"):
        return {"censored": CENSORED, "changed": result.get("changed", False), "failed": result.get("failed", False)}
    clean = {key: value for key, value in result.items() if key != "invocation"}
    if isinstance(clean.get("results"), list):
        clean["results"] = [censor(item) if isinstance(item, dict) else item for item in clean["results"]]
    return clean


def failure_message(result, task=None):
    """The one line to keep of a failed result, censored."""
    clean = censor(result, task)
    if "censored" in clean:
        return clean["censored"]
    if clean.get("msg"):
        return str(clean["msg"])[:2000]
    for item in clean.get("results") or []:
        if isinstance(item, dict) and item.get("failed"):
            return item.get("censored") or str(item.get("msg", "a loop item failed"))[:2000]
    if clean.get("stderr"):
        return str(clean["stderr"])[-2000:]
    return "failed"
