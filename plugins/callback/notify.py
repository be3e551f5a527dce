# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: notify
type: notification
short_description: Tell the people who must know about a deployment as it happens, through webhooks
version_added: "0.1.0"
description:
  - Posts to a generic JSON webhook and to a Slack-compatible incoming webhook when a run of the collection's playbooks
    starts (a deploy, a manual rollback, a verification), when each rolling batch is done, when a host fails, when an
    automatic fleet rollback starts, and when the run ends.
  - Posting happens on a background thread with a timeout and a bounded retry, so an unreachable endpoint costs the
    run at most O(drain_timeout) seconds at the end, and a warning; it never fails the run.
  - The webhook URLs and the token are secrets. They are never written to the output, to warnings or to the payloads.
    They come from the options below or, when those are unset, from the inventory variables C(conveyor_notify_url),
    C(conveyor_notify_slack_url) and C(conveyor_notify_token), which may be vaulted.
  - Runs that use none of the collection's roles or modules send nothing.
  - Every event has a severity - C(info) (started, batch done, a run that succeeded or paused), C(warning) (a manual
    rollback or an abort that succeeded, and every event of an emergency deploy, which names its reason) or
    C(critical) (a host failed,
    an automatic rollback, a failed run). Who gets what is configuration - the inventory variable
    C(conveyor_notify_routes) gives each endpoint (C(generic), C(slack)) the C(events) and C(severities) it takes,
    for example failures to the on-call hook and everything to a channel.
  - The C(ended) event's C(outcome) is C(succeeded), C(failed), C(paused) (C(rolling_pause_after); its text says how
    to promote or abort the run) or C(aborted) (C(playbooks/abort.yml)).
  - The support contacts the inventory names in C(env_contacts) (C(on_call), C(escalation), C(owner), any other role)
    are named in every critical notification, in its text and as C(contacts) in the generic payload.
  - Enable it with C(callbacks_enabled = conveyor.deploy.notify) in ansible.cfg or E(ANSIBLE_CALLBACKS_ENABLED).
author:
  - conveyor.deploy developers (@conveyor-deploy)
requirements:
  - enabled in C(callbacks_enabled)
options:
  url:
    description: The generic webhook. It receives a JSON object (its fields are in the collection's docs/changelog.md, section Notifications).
    type: str
    env:
      - name: CONVEYOR_NOTIFY_URL
    ini:
      - section: conveyor_notify
        key: url
  slack_url:
    description: A Slack-compatible incoming webhook. It receives a JSON object with a C(text) field.
    type: str
    env:
      - name: CONVEYOR_NOTIFY_SLACK_URL
    ini:
      - section: conveyor_notify
        key: slack_url
  token:
    description: Sent to the generic webhook as a bearer token in the C(Authorization) header.
    type: str
    env:
      - name: CONVEYOR_NOTIFY_TOKEN
    ini:
      - section: conveyor_notify
        key: token
  events:
    description: Which events to send.
    type: list
    elements: str
    default: [started, batch_done, host_failed, auto_rollback, ended]
    env:
      - name: CONVEYOR_NOTIFY_EVENTS
    ini:
      - section: conveyor_notify
        key: events
  timeout:
    description: Seconds to wait for one POST.
    type: float
    default: 3
    env:
      - name: CONVEYOR_NOTIFY_TIMEOUT
    ini:
      - section: conveyor_notify
        key: timeout
  retries:
    description: How many times to retry a POST that failed (connection error, timeout or an HTTP 5xx or 429).
    type: int
    default: 2
    env:
      - name: CONVEYOR_NOTIFY_RETRIES
    ini:
      - section: conveyor_notify
        key: retries
  drain_timeout:
    description: At the end of the run, the most seconds to wait for notifications still queued.
    type: float
    default: 10
    env:
      - name: CONVEYOR_NOTIFY_DRAIN_TIMEOUT
    ini:
      - section: conveyor_notify
        key: drain_timeout
"""

EXAMPLES = r"""
# ansible.cfg
# [defaults]
# callbacks_enabled = conveyor.deploy.changelog, conveyor.deploy.notify
#
# The URL and token as vaulted inventory variables (group_vars/all/vault.yml):
#   conveyor_notify_url: "{{ vault_notify_url }}"
#   conveyor_notify_token: "{{ vault_notify_token }}"
# or in the environment of the controller (an AWX credential can inject these):
#   CONVEYOR_NOTIFY_URL=https://hooks.example.com/deploys CONVEYOR_NOTIFY_TOKEN=... ansible-playbook deploy.yml ...
#
# Routes and contacts (group_vars/all/notify.yml of an environment):
#   conveyor_notify_routes:
#     generic: {severities: [critical]}            # the on-call hook: failures and automatic rollbacks only
#     slack: {events: [started, ended]}            # the team channel: every start and end
#   env_contacts:
#     on_call: "Platform on-call +41 44 555 01 23"
#     escalation: "Jane Roe (head of platform)"
#     owner: "#team-shop"
"""

import collections
import http.client
import json
import ssl
import threading
import time
import urllib.error

from ansible.module_utils.urls import Request, make_context
from ansible.plugins.callback import CallbackBase

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _changelog, _rollout, _runinfo

SECRET_VARS = {"url": "conveyor_notify_url", "slack_url": "conveyor_notify_slack_url", "token": "conveyor_notify_token"}
EVENTS = ("started", "batch_done", "host_failed", "auto_rollback", "ended")
SEVERITIES = ("info", "warning", "critical")
SINKS = ("generic", "slack")


def severity_of(event, outcome=None, kind=None, emergency=False):
    """How urgent an event is: a failure or an automatic rollback is critical; a manual rollback or an abort that
    worked, or any event of an emergency deploy, a warning; the rest (a pause too), information."""
    if event in ("host_failed", "auto_rollback") or (event == "ended" and outcome == "failed"):
        return "critical"
    if (event == "ended" and (kind == "rollback" or outcome == "aborted")) or emergency:
        return "warning"
    return "info"


def routes_of(value):
    """({sink: {events, severities}}, problems) of conveyor_notify_routes; a sink without a route takes everything."""
    if value in (None, "", {}):
        return {}, []
    if not isinstance(value, dict):
        return {}, ["conveyor_notify_routes must be a mapping of endpoint (generic, slack) to {events, severities}"]
    routes, problems = {}, []
    for sink, route in value.items():
        if sink not in SINKS:
            problems.append("conveyor_notify_routes names %r; the endpoints are %s" % (sink, ", ".join(SINKS)))
            continue
        route = route if isinstance(route, dict) else {}
        chosen = {}
        for key, allowed in (("events", EVENTS), ("severities", SEVERITIES)):
            wanted = route.get(key)
            if wanted is None:
                continue
            wanted = [wanted] if isinstance(wanted, str) else list(wanted) if isinstance(wanted, list) else []
            unknown = [item for item in wanted if item not in allowed]
            if unknown:
                problems.append("conveyor_notify_routes.%s.%s has %s; use %s" % (
                    sink, key, ", ".join(map(str, unknown)), ", ".join(allowed)))
            chosen[key] = set(item for item in wanted if item in allowed)
        routes[sink] = chosen
    return routes, problems


class WebhookSink(object):
    """POST JSON to one endpoint with a timeout and a bounded retry. Never reveals the URL or the token."""

    def __init__(self, name, url, token=None, timeout=3.0, retries=2, backoff=0.5, opener=None):
        self.name = name
        self._url = url
        self._token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._open = opener or self._open_url
        self._request = None
        # What this endpoint subscribes to (conveyor_notify_routes): None is everything.
        self.events = None
        self.severities = None

    def wants(self, event, severity):
        return (self.events is None or event in self.events) and (self.severities is None or severity in self.severities)

    def _open_url(self, url, **kwargs):
        # One Request, and one TLS context loaded once per sink: building a default context loads the
        # system CA bundle, about 0.1 s of CPU that each post would otherwise pay on the controller.
        # A plain http:// endpoint never uses the context (redirects are not followed), so it loads none.
        if self._request is None:
            https = url.lower().startswith("https:")
            context = make_context() if https else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._request = Request(context=context)
        return self._request.open(kwargs.pop("method"), url, **kwargs)

    def post(self, payload):
        """(ok, detail) after at most retries + 1 attempts; detail names the endpoint only by its kind."""
        body = json.dumps(payload, sort_keys=True).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "conveyor.deploy-notify"}
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        detail = "not sent"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * attempt)
            try:
                with self._open(self._url, data=body, headers=headers, method="POST", timeout=self.timeout,
                                follow_redirects="none") as response:
                    return True, "HTTP %d" % response.status
            except urllib.error.HTTPError as exc:
                detail = "HTTP %d" % exc.code
                if exc.code < 500 and exc.code != 429:
                    return False, detail
            except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
                # HTTPException: an answer that is not HTTP (BadStatusLine, a connection closed mid-answer).
                reason = getattr(exc, "reason", exc)
                detail = type(reason).__name__ if not isinstance(reason, str) else "connection failed"
                if isinstance(reason, OSError) and reason.strerror:
                    detail = reason.strerror
            except Exception as exc:  # pylint: disable=broad-except
                # Whatever else an endpoint provokes must not end the thread that sends the later events.
                detail = type(exc).__name__
        return False, "%s after %d attempts" % (detail, self.retries + 1)


class Dispatcher(object):
    """Send payloads to the sinks on a background thread, so a slow endpoint never stalls the play.

    The thread lives only while payloads are pending: a controller that forks a worker for every
    task and host forks faster without an idle thread, and a run sends only a handful of posts.
    One thread at a time keeps the payloads in order.
    """

    def __init__(self, sinks, warn):
        self.sinks = sinks
        self.warn = warn
        self.sent = 0
        self.failed = 0
        self._pending = collections.deque()
        self._lock = threading.Lock()
        self._thread = None

    def submit(self, event, payload, text):
        with self._lock:
            if not any(sink.wants(event, payload.get("severity")) for sink in self.sinks):
                return
            self._pending.append((event, payload, text))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="conveyor-notify", daemon=True)
                self._thread.start()

    def _work(self):
        while True:
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
                event, payload, text = self._pending.popleft()
            for sink in self.sinks:
                if not sink.wants(event, payload.get("severity")):
                    continue
                body = slack_payload(text) if sink.name == "slack" else payload
                ok, detail = sink.post(body)
                if ok:
                    self.sent += 1
                else:
                    self.failed += 1
                    self.warn("conveyor.deploy.notify: the %s webhook did not take the %s notification (%s)"
                              % (sink.name, event, detail))

    def close(self, deadline_s):
        """Wait at most deadline_s for queued notifications; return True when all were handled."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(deadline_s)
        with self._lock:
            return self._thread is None and not self._pending


def slack_payload(text):
    return {"text": text, "username": "conveyor.deploy"}


class CallbackModule(CallbackBase):
    """Post deployment events to webhooks."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "conveyor.deploy.notify"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self.dispatcher = None
        self.run = None

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self.events = set(self.get_option("events") or [])

    def _new_run(self, playbook):
        self.run = {"run_id": _runinfo.shared_run_id(), "playbook": playbook, "kind": _runinfo.kind_of(playbook, {}),
                    "context": {}, "extra": {}, "configured": False, "announced": False, "failed_hosts": set(), "auto_rollback": False}

    def _start_dispatcher(self, secrets, routes=None):
        routes = routes or {}
        sinks = []
        for name, key in (("generic", "url"), ("slack", "slack_url")):
            url = self.get_option(key) or secrets.get(key)
            if url:
                sinks.append(WebhookSink(name, url, token=(self.get_option("token") or secrets.get("token"))
                                         if name == "generic" else None,
                                         timeout=float(self.get_option("timeout")), retries=int(self.get_option("retries"))))
                route = routes.get(name) or {}
                sinks[-1].events, sinks[-1].severities = route.get("events"), route.get("severities")
        if sinks:
            self.dispatcher = Dispatcher(sinks, self._display.warning)

    def _send(self, event, text, **details):
        if self.dispatcher is None or event not in self.events:
            return
        context = self.run["context"]
        severity = severity_of(event, details.get("outcome"), self.run["kind"],
                               bool(context.get("emergency")) and self.run["kind"] == "deploy")
        if context.get("emergency") and self.run["kind"] == "deploy":
            details = dict(details, emergency=context["emergency"])
        if severity == "critical" and context.get("contacts"):
            # Whoever reads a failure learns whom to call.
            text = "%s %s" % (text, _runinfo.contacts_line(context["contacts"]))
            details = dict(details, contacts=context["contacts"])
        payload = {"event": event, "severity": severity, "run_id": self.run["run_id"], "kind": self.run["kind"],
                   "application": context.get("application"), "environment": context.get("environment"),
                   "version": context.get("version"), "actor": _runinfo.actor(self.run["extra"]),
                   "at": _runinfo.stamp(_runinfo.utcnow()), "text": text}
        head = _changelog.published_head()
        if head is not None:
            # An anchor of the change log outside it: its last record when this event was sent.
            payload["changelog_head"] = head
        payload.update(details)
        self.dispatcher.submit(event, payload, text)

    def _describe(self):
        context = self.run["context"]
        # "sample deploy of 2.1.0 to prod"; a run that names no environment says nothing of one.
        return "%s %s%s%s" % (context.get("application") or "the application", self.run["kind"],
                              (" of " + context["version"]) if context.get("version") and self.run["kind"] == "deploy" else "",
                              (" to " + context["environment"]) if context.get("environment") else "")

    def v2_playbook_on_start(self, playbook):
        self._new_run(getattr(playbook, "_file_name", ""))

    def v2_playbook_on_play_start(self, play):
        if self.run["configured"]:
            return
        self.run["configured"] = True
        manager, self.run["extra"], variables = _runinfo.play_variables(play)
        self.run["context"] = _runinfo.play_context(variables)
        secrets, error = read_secrets(manager, variables)
        if error:
            self._display.warning("conveyor.deploy.notify: could not read the conveyor_notify_* variables (%s)" % error)
        routes, problems = routes_of(variables.get("conveyor_notify_routes"))
        for problem in problems:
            self._display.warning("conveyor.deploy.notify: %s" % problem)
        self._start_dispatcher(secrets, routes)

    def v2_runner_on_start(self, host, task):
        if self.run["announced"] or not _runinfo.is_collection_task(task):
            return
        self.run["announced"] = True
        verb = "manual rollback" if self.run["kind"] == "rollback" else self.run["kind"]
        emergency = self.run["context"].get("emergency") if self.run["kind"] == "deploy" else None
        if emergency:
            who = _rollout.actor(self.run["extra"])
            self._send("started", "EMERGENCY %s started by %s: %s" % (self._describe(), who, emergency))
            return
        self._send("started", "%s started by %s (%s)" % (self._describe(), _rollout.actor(self.run["extra"]), verb))

    def v2_runner_on_ok(self, result):
        result = _runinfo.callback_result(result)
        tags = set(result.task.tags or [])
        if "conveyor_notify_batch_done" in tags:
            clean = _runinfo.censor(result.result, result.task)
            shown = clean.get("msg", "")
            # The same figures as the progress line: batch k of n, hosts moved, elapsed, ETA.
            self._send("batch_done", "%s: batch done: %s" % (self._describe(), shown), batch=shown,
                       figures=clean.get("figures") or {})
        if "conveyor_notify_auto_rollback" in tags and not self.run["auto_rollback"] and not result.result.get("abort"):
            self.run["auto_rollback"] = True
            self._send("auto_rollback", "%s failed: automatic rollback of the fleet started" % self._describe(),
                       scope="fleet")

    def _host_failed(self, result, how):
        host = result.host.get_name()
        if host in self.run["failed_hosts"]:
            return
        self.run["failed_hosts"].add(host)
        message = _runinfo.failure_message(result.result, result.task)
        self._send("host_failed", "%s: %s %s at \"%s\": %s" % (self._describe(), host, how, result.task_name, message),
                   host=host, task=result.task_name, msg=message)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        result = _runinfo.callback_result(result)
        if not ignore_errors and self.run["announced"]:
            self._host_failed(result, "failed")
            if _runinfo.action_of(result.task) == _runinfo.CUTOVER and result.result.get("outcome") == "reverted":
                self._send("auto_rollback", "%s: %s failed and was rolled back automatically to its previous release"
                           % (self._describe(), result.host.get_name()), host=result.host.get_name(), scope="host")

    def v2_runner_on_unreachable(self, result):
        result = _runinfo.callback_result(result)
        if self.run["announced"]:
            self._host_failed(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        if self.run is None or self.dispatcher is None:
            return
        if self.run["announced"]:
            custom = (getattr(stats, "custom", {}) or {}).get("_run", {})
            self.run["kind"] = _runinfo.kind_of(self.run["playbook"], custom)
            counts = {host: stats.summarize(host) for host in stats.processed}
            bad = sorted(host for host, c in counts.items() if c.get("failures") or c.get("unreachable"))
            summary, rows = _runinfo.run_summary(custom)
            failed = bool(bad) or bool(summary.get("failed"))
            outcomes = {host: row.get("outcome") for host, row in rows.items()}
            ended = "paused" if summary.get("paused") else "aborted" if summary.get("abort") else "succeeded"
            text = "%s %s" % (self._describe(), "FAILED" + ((" on " + ", ".join(bad)) if bad else "") if failed else ended)
            if summary.get("paused") and not failed:
                text += " (%s)" % _rollout.pause_line(summary["paused"], summary.get("run_id"))
            if outcomes:
                text += ": " + ", ".join("%s %s" % item for item in sorted(outcomes.items()))
            self._send("ended", text, outcome="failed" if failed else ended, hosts=outcomes or
                       {host: ("failed" if host in bad else "ok") for host in counts})
        if not self.dispatcher.close(float(self.get_option("drain_timeout"))):
            self._display.warning("conveyor.deploy.notify: notifications still queued after %ss were dropped"
                                  % self.get_option("drain_timeout"))


def read_secrets(manager, variables):
    """(settings, error): the webhook settings from the play's variables (possibly vaulted), rendered."""
    found = {}
    try:
        wanted = {key: variables[name] for key, name in SECRET_VARS.items() if name in variables}
        if not wanted:
            return found, None
        from ansible.template import Templar
        templar = Templar(loader=manager._loader, variables=variables)
        for key, value in wanted.items():
            rendered = templar.template(value)
            if rendered:
                found[key] = str(rendered)
    except Exception as exc:  # pylint: disable=broad-except
        # Only the exception's type: its text could carry a secret.
        return found, type(exc).__name__
    return found, None
