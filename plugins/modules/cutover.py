#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cutover
short_description: Switch a host to a release, restart it, gate it, and go back when the gate fails, in one execution
version_added: "0.2.0"
description:
  - The per-host step of a rolling deployment, done in one round-trip while the host is drained from the
    load balancer.
  - Switches C(current) to O(release_id) (the release is verified as M(conveyor.deploy.release) does with
    O(conveyor.deploy.release#module:state=active)), restarts O(service) as O(restart) says, and runs the
    health gate against O(health) until O(health.success_threshold) consecutive successes.
  - When the gate fails, the module reads the service's state and the last lines of its journal, marks the
    release failed, switches back to O(previous_release_id), restarts, and checks that the previous release
    answers the gate again. Only then does it return, so the host rejoins the load balancer on a release that
    serves. With no previous release (a first deployment), or when going back fails too, the service is
    stopped so that the load balancer keeps the host out.
  - The task fails when the host did not end on O(release_id); RV(outcome) says whether it is back on its
    previous release (V(reverted)) or down (V(failed)). RV(phases) times each step for the change log.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
  - conveyor.deploy.hooks
attributes:
  check_mode:
    support: full
    details: Reports the switch it would make (with its diff); restarts nothing and probes nothing.
  diff_mode:
    support: full
options:
  app_root:
    description: Absolute path of the application's root directory.
    type: path
    required: true
  release_id:
    description: The staged release to switch to.
    type: str
    required: true
  version:
    description: The version O(release_id) carries; the gate expects it as O(health.version_from) says.
    type: str
    required: true
  previous_release_id:
    description:
      - The release to return to when the gate fails. Empty means none (a first deployment).
      - The rollout passes the release the host ran when the run was planned, so a retry goes back to the same one.
    type: str
    default: ""
  previous_version:
    description: The version O(previous_release_id) carries.
    type: str
    default: ""
  service:
    description: The systemd unit of the application.
    type: str
    required: true
  restart:
    description:
      - How the service picks up the new release. V(restart) restarts the unit, V(reload) asks it to reload
        (its C(ExecReload), for example a SIGHUP), V(none) leaves it alone (the application notices the switch).
    type: str
    choices: [restart, reload, none]
    default: restart
  restart_timeout:
    description: Seconds allowed for C(systemctl restart) (or C(reload)) before the step counts as failed.
    type: int
    default: 90
  owner:
    description: The owner every file of a release must have (the release policy).
    type: str
    default: root
  verify_content:
    description: Recompute the release's content digest before switching to it.
    type: bool
    default: true
  reason:
    description: Why the release is activated, recorded in its manifest and the host's history.
    type: str
  run_id:
    description: The run, recorded in the host's history.
    type: str
  journal_lines:
    description: How many lines of the unit's journal to return when the gate fails.
    type: int
    default: 10
  censor:
    description: Values that must never appear in what the module returns (secrets that the journal may show).
    type: list
    elements: str
    default: []
  hooks:
    description:
      - Extension points - shell commands run as O(hook_user) in the release's directory, with the variables of
        O(hook_env_files) and O(hook_env), and C(CONVEYOR_HOOK), C(CONVEYOR_RELEASE_ID), C(CONVEYOR_VERSION),
        C(CONVEYOR_PREVIOUS_VERSION), C(CONVEYOR_RUN_ID) and C(CONVEYOR_APP_ROOT) in the environment.
      - C(before_switch) (a failure leaves the host untouched), C(after_switch) (before the restart) and
        C(before_gate) (after the restart); a failure of the last two counts as a failed gate, so the host goes back.
      - Each is a list of commands, run in order; other keys are ignored (they are the run's other extension points).
      - Each command's exit status, duration and last lines of output (censored of O(censor) and of the values of
        the C(secrets*) files of O(hook_env_files)) go into the host's history. In check mode none runs.
    type: dict
    default: {}
  health:
    description: The health gate.
    type: dict
    required: true
    suboptions:
      url:
        description: The URL probed on the host (usually C(http://127.0.0.1:<port>/health)).
        type: str
        required: true
      status_codes:
        description: Statuses that count as healthy.
        type: list
        elements: int
        default: [200]
      body_regex:
        description: A regular expression the body must match.
        type: str
      json_assertions:
        description: JMESPath assertions on a JSON body, as for M(conveyor.deploy.health_check).
        type: list
        elements: dict
        default: []
      version_from:
        description:
          - How the gate proves that the release it switched to is the one answering.
          - V(json) - O(health.version_query) on the health JSON gives the version.
          - V(header) - the health answer's O(health.version_header) header carries it.
          - V(body) - the body of the health URL, or of O(health.version_url), names it (as a whole word, or as the
            first group of O(health.version_regex)).
          - V(process) - for an app that reports no version (a plain C(200 Ok)) - the unit's main process is active,
            started after the restart, and runs from the release's directory (its working directory or executable in
            the release, or its C(WorkingDirectory) or a path on its command line under the release or C(current),
            read from C(systemctl show) and C(/proc)). Needs O(restart=restart).
          - V(none) - the health status and assertions only; nothing proves which release answers.
        type: str
        choices: [json, header, body, process, none]
        default: json
      version_query:
        description:
          - With O(health.version_from=json), the JMESPath query of the version in the JSON body; the gate expects
            the version it switched to.
          - Empty means the body carries no version (as O(health.version_from=none)).
        type: str
        default: ""
      version_header:
        description: With O(health.version_from=header), the response header that carries the version.
        type: str
        default: X-App-Version
      version_regex:
        description:
          - With O(health.version_from=body), a regular expression whose first group is the version, for example
            C(sample app (\S+)<). Without it, the body must contain the version as a whole word.
        type: str
      version_url:
        description:
          - With O(health.version_from=body), the URL whose body names the version (for example
            C(http://127.0.0.1:8000/version)); the health URL's by default. Fetched after each successful health probe.
        type: str
      success_threshold:
        description: Consecutive successes that pass the gate.
        type: int
        default: 3
      failure_threshold:
        description: Consecutive failures (after O(health.start_period)) that fail it early; 0 never stops early.
        type: int
        default: 3
      interval:
        description: Seconds between attempts.
        type: float
        default: 1
      start_period:
        description:
          - Seconds after the restart during which failures do not count.
          - Until the first success within it, a failed probe is retried after 0.1 s instead of O(health.interval),
            so the gate sees a fast service's first answer at once; successes stay O(health.interval) apart.
        type: float
        default: 0
      timeout:
        description: Seconds the gate may take in all.
        type: float
        default: 60
      request_timeout:
        description: Seconds one request may take.
        type: float
        default: 5
      validate_certs:
        description: Verify TLS certificates of an https URL.
        type: bool
        default: true
      name:
        description: What the gate is called in messages (for example C(app03 /health)); the URL's path by default.
        type: str
notes:
  - Needs systemd on the host, and C(jmespath) there for JSON assertions.
  - The process proof compares C(ExecMainStartTimestampMonotonic) with the moment of the restart, and reads the
    unit's C(WorkingDirectory) and the main process's C(/proc/<pid>/cmdline), plus C(cwd) and C(exe) where root may
    read them (another user's process needs CAP_SYS_PTRACE, which containers often lack); run it as root (become).
seealso:
  - module: conveyor.deploy.release
  - module: conveyor.deploy.health_check
  - module: conveyor.deploy.haproxy_server
"""

EXAMPLES = r"""
- name: Switch, restart and gate the host; go back to what it ran if the gate fails
  conveyor.deploy.cutover:
    app_root: /opt/shop
    release_id: 20261127T101500Z-2.0.0
    version: 2.0.0
    previous_release_id: 20261120T091000Z-1.9.0
    previous_version: 1.9.0
    service: shop
    run_id: 20261127T101500Z-2.0.0
    health:
      url: http://127.0.0.1:8000/health
      json_assertions:
        - query: status
          equals: ok
      version_query: version
  register: shop_cutover

- name: Show how the host did
  ansible.builtin.debug:
    msg: "{{ shop_cutover.outcome }} in {{ shop_cutover.timings }}"
"""

RETURN = r"""
outcome:
  description: V(moved) (on the new release, gate passed), V(reverted) (back on the previous release, which
    answers again) or V(failed) (neither; the service is stopped).
  returned: always
  type: str
  sample: moved
reason:
  description: Why the host is not on the new release, with the gate's last failure and the service's state.
  returned: always
  type: str
  sample: "/health on 6.6.6: answered 500 (body: ...), 3 times in a row [sample.service active (running)]"
phases:
  description: Each step with its start and end in seconds from the start of the module, and whether it failed.
  returned: always
  type: list
  elements: dict
  sample: [{name: switch, start_s: 0.0, end_s: 0.02, failed: false}, {name: verify, start_s: 0.1, end_s: 1.2, failed: false}]
timings:
  description: Seconds spent per step (switch, restart, verify, revert).
  returned: unless in check mode
  type: dict
  sample: {switch: 0.02, restart: 0.08, verify: 1.1}
gate:
  description: The gate on the new release (passed, summary, the last attempts, latency, elapsed_s).
  returned: unless in check mode
  type: dict
revert_gate:
  description: The gate on the previous release after going back.
  returned: when the host went back
  type: dict
diagnostics:
  description: The service's state and the last lines of its journal, read when the gate failed.
  returned: when the gate failed
  type: dict
  sample: {state: {ActiveState: failed, Result: exit-code, ExecMainStatus: "1"}, journal: ["ModuleNotFoundError: ..."],
           summary: "sample.service failed (exit-code, status 1): ModuleNotFoundError: ..."}
hooks:
  description: The extension points of O(hooks) that the cutover would run (none runs in check mode).
  returned: in check mode
  type: list
  elements: str
  sample: [before_gate]
release:
  description: The manifest of O(release_id).
  returned: when it exists
  type: dict
previous:
  description: The manifest of the release C(current) pointed at before the switch.
  returned: when there was one
  type: dict
msg:
  description: One sentence saying what happened.
  returned: always
  type: str
"""

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.six.moves.urllib.parse import urlsplit

from ansible_collections.conveyor.deploy.plugins.module_utils._cutover import FAILED, REVERTED, StepError, cutover, gate
from ansible_collections.conveyor.deploy.plugins.module_utils._health import HAS_JMESPATH, compile_assertions
from ansible_collections.conveyor.deploy.plugins.module_utils._hooks import HOOK_OPTIONS, censored, run_point
from ansible_collections.conveyor.deploy.plugins.module_utils._probe import probe_http, short
from ansible_collections.conveyor.deploy.plugins.module_utils._proof import (
    body_problem, header_problem, process_problem, regex_problem, version_pattern,
)
from ansible_collections.conveyor.deploy.plugins.module_utils._release import (
    Layout, ReleaseError, activate_release, app_root_problem, mark_release, release_id_problem,
)

SHOWN_PROPERTIES = ("ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts")
PROCESS_PROPERTIES = ("MainPID", "ActiveState", "SubState", "ExecMainStartTimestampMonotonic", "WorkingDirectory")


class SystemdHost(object):
    """The steps of a cutover on this host: releases on disk, the unit through systemctl, probes over HTTP."""

    clock = staticmethod(time.monotonic)

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.layout = Layout(os.path.normpath(self.params["app_root"]))
        self.started = time.time()
        health = self.params["health"]
        self.probe_params = dict(url=health["url"], method="GET", headers={}, body=None,
                                 request_timeout=health["request_timeout"], validate_certs=health["validate_certs"],
                                 ca_path=None, status_codes=health["status_codes"], body_regex=health["body_regex"])
        self.pattern = re.compile(health["body_regex"]) if health["body_regex"] else None
        keys = ("success_threshold", "failure_threshold", "interval", "start_period", "timeout")
        self.settings = dict((key, health[key]) for key in keys)
        self.settings["name"] = health["name"] or urlsplit(health["url"]).path or "/"
        self.restarted_at_us = 0

    def activate(self, release_id, force):
        try:
            return activate_release(self.layout, release_id, owner=self.params["owner"],
                                    verify_content=self.params["verify_content"], force=force,
                                    reason="revert after a failed health gate" if force else self.params["reason"],
                                    run_id=self.params["run_id"], check_mode=self.module.check_mode)
        except ReleaseError as exc:
            raise StepError(exc.msg)

    def has_hook(self, point):
        return bool((self.params["hooks"] or {}).get(point))

    def hook(self, point, release):
        """Run the commands of an extension point in the release's directory; a failure raises StepError."""
        params = self.params
        env = dict(params["hook_env"], CONVEYOR_RELEASE_ID=release["release_id"],
                   CONVEYOR_VERSION=release.get("version") or "", CONVEYOR_RUN_ID=params["run_id"] or "",
                   CONVEYOR_PREVIOUS_VERSION=params["previous_version"] or "", CONVEYOR_APP_ROOT=self.layout.root)
        options = dict(user=params["hook_user"], env_files=params["hook_env_files"], timeout=params["hook_timeout"],
                       censor=params["censor"])
        try:
            problem = run_point(self.module, self.layout, point, params["hooks"][point], release, options, env)
        except ReleaseError as exc:
            raise StepError("%s hook: %s" % (point, exc.msg))
        if problem:
            raise StepError(problem)

    def _systemctl(self, *args):
        timeout = str(self.params["restart_timeout"])
        return self.module.run_command(["timeout", "--kill-after=5", timeout, "systemctl"] + list(args))

    def restart(self):
        if self.params["restart"] == "none":
            return
        self.restarted_at_us = int(time.monotonic() * 1000000)
        rc, out, err = self._systemctl(self.params["restart"], self.params["service"])
        if rc == 124:
            raise StepError("systemctl %s %s did not return within %d s" % (
                self.params["restart"], self.params["service"], self.params["restart_timeout"]))
        if rc != 0:
            cause = short(err or out or "exit code %d" % rc)
            raise StepError("systemctl %s %s: %s" % (self.params["restart"], self.params["service"], cause))

    def gate(self, version, release_id):
        """The gate on ``version`` (in ``release_id``), its assertions and its proof prepared once for every probe."""
        compiled = assertions(self.params["health"], version)
        proof = self.proof(version, release_id)
        return gate(lambda v: probe_http(self.probe_params, compiled, self.pattern, proof), self.settings, version)

    def proof(self, version, release_id):
        """``proof(headers, text)`` for probe_http, as health.version_from says (None: the JSON query or nothing)."""
        health = self.params["health"]
        kind = health["version_from"]
        if kind == "header":
            return lambda headers, text: header_problem(health["version_header"], version, headers)
        if kind == "body":
            pattern = version_pattern(version, health["version_regex"])
            if not health["version_url"]:
                return lambda headers, text: body_problem(pattern, version, text)
            where = urlsplit(health["version_url"]).path or "/"
            params = dict(self.probe_params, url=health["version_url"], body_regex=None)

            def from_url(headers, text):
                ok, status, latency, reason = probe_http(params, [], None,
                                                         lambda h, body: body_problem(pattern, version, body, where))
                return None if ok else reason if reason.startswith(where) else "%s %s" % (where, reason)
            return from_url
        if kind == "process":
            release_dir = self.layout.release_dir(release_id)
            current = os.path.join(self.layout.root, "current")

            def from_process(headers, text):
                show = self.main_process()
                return process_problem(show, self.read_proc(show.get("MainPID") or "0"), self.restarted_at_us,
                                       release_dir, current)
            return from_process
        return None

    def main_process(self):
        rc, out, dummy = self.module.run_command(["systemctl", "show", self.params["service"]] +
                                                 ["--property=%s" % name for name in PROCESS_PROPERTIES])
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line) if rc == 0 else {}

    @staticmethod
    def read_proc(pid):
        """Process ``pid``'s command line and, where root may read them, its resolved cwd and exe."""
        if pid == "0":
            return {}
        base = "/proc/%s" % pid
        try:
            with open(base + "/cmdline", "rb") as handle:
                found = dict(cmdline=[arg.decode("utf-8", "replace") for arg in handle.read().split(b"\0") if arg])
        except OSError:
            return None
        for name in ("cwd", "exe"):
            try:
                found[name] = os.readlink("%s/%s" % (base, name))
            except OSError:
                found[name] = None  # needs CAP_SYS_PTRACE for another user's process
        return found

    def mark(self, release_id, state, reason):
        try:
            mark_release(self.layout, release_id, state, reason=reason, run_id=self.params["run_id"])
        except ReleaseError:
            pass

    def stop(self):
        self._systemctl("stop", self.params["service"])

    def diagnose(self):
        service = self.params["service"]
        rc, out, dummy = self.module.run_command(["systemctl", "show", service] +
                                                 ["--property=%s" % name for name in SHOWN_PROPERTIES])
        state = dict(line.split("=", 1) for line in out.splitlines() if "=" in line) if rc == 0 else {}
        journal = self.journal(service)
        if journal and is_traceback_frame(journal[-1]):
            # The process is still writing its traceback (or journald has not read the rest): the line that
            # names the error comes last, so read again once.
            time.sleep(JOURNAL_SETTLE)
            journal = self.journal(service)
        return dict(state=state, journal=journal, summary=describe_service(service, state, journal))

    def journal(self, service):
        """The unit's last lines since this cutover began, oldest first.

        Newest first, then turned round: with --since, journalctl's --lines keeps the first lines after that
        instant (systemd 252), which for a crash loop is the first crash's traceback, cut before its error.
        """
        rc, out, dummy = self.module.run_command(
            ["journalctl", "--unit", service, "--no-pager", "--output", "cat", "--reverse", "--lines",
             str(self.params["journal_lines"]), "--since", "@%d" % int(self.started - 1)])
        lines = [censored(line, self.params["censor"]) for line in out.splitlines() if line.strip()] if rc == 0 else []
        return lines[::-1]


def assertions(health, version):
    """The health JSON assertions plus, for the JSON proof with a query, the version expected, compiled."""
    wanted = list(health["json_assertions"])
    if health["version_from"] == "json" and health["version_query"]:
        wanted.append(dict(query=health["version_query"], equals=version))
    return compile_assertions(wanted)


# systemd's own lines in a unit's journal ("sample.service: Main process exited, ..."), which say what the process
# did, not why.
SYSTEMD_LINE = re.compile(r"^(\S+\.service: |Started |Stopped |Starting |Stopping |Reloading |Reloaded )")
JOURNAL_SETTLE = 0.5


def is_traceback_frame(line):
    """A line inside a traceback: a frame, its source line, or the header (the error comes after them)."""
    return line.startswith((" ", "\t", "Traceback (most recent call last)")) or line.lstrip().startswith("File \"")


def telling_line(journal):
    """The journal line that says why: the last one that is neither systemd's nor a traceback frame."""
    for line in reversed(journal):
        if not SYSTEMD_LINE.match(line) and not is_traceback_frame(line):
            return line
    return journal[-1]


def describe_service(service, state, journal):
    """``sample.service failed (exit-code, status 1): <the journal line that says why>``, or None when nothing
    is known."""
    if not state and not journal:
        return None
    text = service
    if state.get("ActiveState"):
        text += " %s" % state["ActiveState"]
        details = [value for value in (state.get("SubState"),) if value]
        if state.get("Result") and state["Result"] != "success":
            details.append(state["Result"])
        if state.get("ExecMainStatus") not in (None, "", "0"):
            details.append("status %s" % state["ExecMainStatus"])
        if state.get("NRestarts") not in (None, "", "0"):
            details.append("%s restarts" % state["NRestarts"])
        if details:
            text += " (%s)" % ", ".join(details)
    # A running service's journal is mostly its request log; a stopped or crashing one's (one that systemd keeps
    # restarting, even if caught between two starts) says why.
    if journal and (state.get("ActiveState") != "active" or state.get("NRestarts") not in (None, "", "0")):
        text += ": %s" % short(telling_line(journal), 160)
    return text


def validate(module):
    params = module.params
    problem = app_root_problem(params["app_root"])
    if problem:
        module.fail_json(msg="Invalid app_root %r: it %s. Use a directory of the application's own, such as /opt/myapp."
                         % (params["app_root"], problem))
    for key in ("release_id", "previous_release_id"):
        if params[key] and release_id_problem(params[key]):
            module.fail_json(msg="Invalid %s: %s." % (key, release_id_problem(params[key])))
    health = params["health"]
    if health["success_threshold"] < 1 or health["failure_threshold"] < 0 or health["timeout"] <= 0 \
            or health["interval"] < 0 or health["request_timeout"] <= 0 or health["start_period"] < 0:
        module.fail_json(msg="Invalid health settings %s: success_threshold must be at least 1, failure_threshold and "
                             "start_period not negative, timeout and request_timeout positive, interval not negative."
                             % dict((k, health[k]) for k in ("success_threshold", "failure_threshold", "timeout",
                                                             "interval", "request_timeout", "start_period")))
    if not health["url"].startswith(("http://", "https://")):
        module.fail_json(msg="Invalid health.url %r: use an http:// or https:// URL." % health["url"])
    if (health["json_assertions"] or health["version_query"]) and not HAS_JMESPATH:
        module.fail_json(msg=missing_required_lib("jmespath") + " (install python3-jmespath on the host)")
    try:
        assertions(health, "")
    except ValueError as exc:
        module.fail_json(msg="Invalid health: %s." % exc)
    if health["body_regex"]:
        try:
            re.compile(health["body_regex"])
        except re.error as exc:
            module.fail_json(msg="Invalid health.body_regex %r: %s." % (health["body_regex"], exc))
    problem = regex_problem(health["version_regex"])
    if problem:
        module.fail_json(msg="Invalid health.version_regex %r: it %s." % (health["version_regex"], problem))
    if health["version_from"] == "header" and not (health["version_header"] or "").strip():
        module.fail_json(msg="Invalid health.version_header: give the header that carries the version, e.g. "
                             "X-App-Version.")
    if health["version_url"] and not health["version_url"].startswith(("http://", "https://")):
        module.fail_json(msg="Invalid health.version_url %r: use an http:// or https:// URL." % health["version_url"])
    if health["version_from"] == "process" and params["restart"] != "restart":
        module.fail_json(msg="Invalid health.version_from process with restart %s: the process proof needs the service "
                             "restarted (restart: restart), or another proof (json, header, body)." % params["restart"])
    if params["restart_timeout"] < 1:
        module.fail_json(msg="Invalid restart_timeout %d: give at least 1 second." % params["restart_timeout"])


def main():
    health_options = dict(
        url=dict(type="str", required=True),
        status_codes=dict(type="list", elements="int", default=[200]),
        body_regex=dict(type="str"),
        json_assertions=dict(type="list", elements="dict", default=[]),
        version_from=dict(type="str", default="json", choices=["json", "header", "body", "process", "none"]),
        version_query=dict(type="str", default=""),
        version_header=dict(type="str", default="X-App-Version"),
        version_regex=dict(type="str"),
        version_url=dict(type="str"),
        success_threshold=dict(type="int", default=3),
        failure_threshold=dict(type="int", default=3),
        interval=dict(type="float", default=1),
        start_period=dict(type="float", default=0),
        timeout=dict(type="float", default=60),
        request_timeout=dict(type="float", default=5),
        validate_certs=dict(type="bool", default=True),
        name=dict(type="str"),
    )
    module = AnsibleModule(
        argument_spec=dict(
            app_root=dict(type="path", required=True),
            release_id=dict(type="str", required=True),
            version=dict(type="str", required=True),
            previous_release_id=dict(type="str", default=""),
            previous_version=dict(type="str", default=""),
            service=dict(type="str", required=True),
            restart=dict(type="str", default="restart", choices=["restart", "reload", "none"]),
            restart_timeout=dict(type="int", default=90),
            owner=dict(type="str", default="root"),
            verify_content=dict(type="bool", default=True),
            reason=dict(type="str"),
            run_id=dict(type="str"),
            journal_lines=dict(type="int", default=10),
            censor=dict(type="list", elements="str", default=[], no_log=True),
            hooks=dict(type="dict", default={}),
            **HOOK_OPTIONS,
            health=dict(type="dict", required=True, options=health_options),
        ),
        supports_check_mode=True,
    )
    validate(module)
    host = SystemdHost(module)
    params = module.params
    target = dict(release_id=params["release_id"], version=params["version"])
    previous = dict(release_id=params["previous_release_id"], version=params["previous_version"]) \
        if params["previous_release_id"] else None
    result = cutover(host, target, previous, check_mode=module.check_mode)
    if not module._diff:
        result.pop("diff", None)
    if result["outcome"] in (REVERTED, FAILED):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
