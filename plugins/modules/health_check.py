#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: health_check
short_description: Gate on consecutive healthy answers, latency and JSON content
version_added: "0.1.0"
description:
  - Probes a service repeatedly and passes only after O(success_threshold) B(consecutive) successes within
    O(timeout) seconds. A failure resets the count, so a flapping service does not pass.
  - Stops early after O(failure_threshold) consecutive failures, so a broken release is detected in seconds rather
    than at the timeout. Failures during O(start_period) do not count towards that early stop (a service that is
    still starting is not yet broken).
  - Every attempt is timed. With O(samples) and O(max_latency_ms) the module is a performance gate on the
    95th percentile. It returns p50, p95 and max latency.
  - "Probe types: C(http) (method, headers, expected status codes, body regex, JSON assertions as JMESPath
    expressions), C(tcp) (connect) and C(command) (exit code and output pattern)."
  - Runs on the managed host (probing C(localhost)) or delegated (probing through the network or the load balancer).
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: The module only reads, so it probes for real in check mode too.
  diff_mode:
    support: none
requirements:
  - jmespath (on the host that runs the probe) when O(json_assertions) is used
options:
  type:
    description: Kind of probe.
    type: str
    choices: [http, tcp, command]
    default: http
  url:
    description: URL to request, C(http://) or C(https://). Required for O(type=http).
    type: str
  method:
    description: HTTP method.
    type: str
    default: GET
  headers:
    description: Request headers. Treated as secret (tokens often live here) and never logged.
    type: dict
    default: {}
  body:
    description: Request body.
    type: str
  status_codes:
    description: HTTP status codes that count as success.
    type: list
    elements: int
    default: [200]
  body_regex:
    description: A regular expression the response body (or the command's output) must match.
    type: str
  json_assertions:
    description:
      - Assertions on the JSON response. Each has a JMESPath O(json_assertions[].query); with
        O(json_assertions[].equals) the query's value must equal it, otherwise it must be truthy
        (so C(status == 'ok') works as a query on its own).
    type: list
    elements: dict
    default: []
    suboptions:
      query:
        description: JMESPath expression evaluated against the response body.
        type: str
        required: true
      equals:
        description: Expected value of O(json_assertions[].query). Compared as strings when types differ.
        type: raw
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: CA bundle to verify the server's certificate with.
    type: path
  host:
    description: Host to connect to with O(type=tcp).
    type: str
    default: 127.0.0.1
  port:
    description: Port to connect to with O(type=tcp).
    type: int
  command:
    description: Command to run with O(type=command), as a list of arguments (no shell).
    type: list
    elements: str
  expect_rc:
    description: Exit code that counts as success with O(type=command).
    type: int
    default: 0
  request_timeout:
    description: Seconds allowed for each attempt.
    type: float
    default: 5
  timeout:
    description: Seconds allowed for the whole check.
    type: float
    default: 60
  interval:
    description: Seconds between attempts.
    type: float
    default: 1
  success_threshold:
    description: Consecutive successes needed to pass.
    type: int
    default: 3
  failure_threshold:
    description: Consecutive failures (after O(start_period)) that fail the check early. C(0) waits for the timeout.
    type: int
    default: 3
  start_period:
    description:
      - Seconds after the start during which failures do not count towards O(failure_threshold).
      - Until the first success within it, a failed probe is retried after 0.1 s instead of O(interval);
        successes stay O(interval) apart.
    type: float
    default: 0
  samples:
    description: Minimum number of attempts, for a latency measurement.
    type: int
    default: 0
  max_latency_ms:
    description: Fail when the 95th percentile latency of the attempts exceeds this many milliseconds.
    type: float
  name:
    description: A label for the check, used in the summary.
    type: str
  expect_version:
    description:
      - With O(type=http), every answer must prove this version, as the rollout's health gate does (see
        M(conveyor.deploy.cutover)'s O(conveyor.deploy.cutover#module:health.version_from)).
      - O(expect_version.version_from=process) needs the unit and the moment it restarted, which a probe does not
        know; here it is the status alone, as V(none).
    type: dict
    suboptions:
      version:
        description: The version expected. Empty checks no version.
        type: str
        required: true
      version_from:
        description: V(json), V(header), V(body), V(process) or V(none).
        type: str
        choices: [json, header, body, process, none]
        default: json
      version_query:
        description: For V(json), the JMESPath query of the version.
        type: str
        default: version
      version_header:
        description: For V(header), the header carrying the version.
        type: str
        default: X-App-Version
      version_regex:
        description: For V(body), a regular expression whose first group is the version (default, the version as a whole word).
        type: str
notes:
  - Read-only; it runs in check mode exactly as in a normal run, so C(--check) previews still see real health.
seealso:
  - module: ansible.builtin.uri
  - module: ansible.builtin.wait_for
"""

EXAMPLES = r"""
- name: Gate the host on its new version
  conveyor.deploy.health_check:
    url: http://127.0.0.1:8000/health
    json_assertions:
      - query: status
        equals: ok
      - query: version
        equals: "{{ app_version }}"
    success_threshold: 3
    failure_threshold: 3
    start_period: 5
    timeout: 60
  register: app_health

- name: Show the result
  ansible.builtin.debug:
    msg: "{{ app_health.summary }}"

- name: Every answer through the load balancer names the version in its X-App-Version header
  conveyor.deploy.health_check:
    url: http://lb.example.com/health
    expect_version:
      version: "{{ app_version }}"
      version_from: header
    samples: 10
    success_threshold: 10
  delegate_to: localhost

- name: Performance gate through the load balancer
  conveyor.deploy.health_check:
    url: http://lb.example.com/
    samples: 50
    interval: 0
    success_threshold: 1
    max_latency_ms: 250
  delegate_to: localhost

- name: The port accepts connections
  conveyor.deploy.health_check:
    type: tcp
    port: 5432
    success_threshold: 1

- name: The application's own self-test passes
  conveyor.deploy.health_check:
    type: command
    command: [/opt/shop/current/bin/selftest, --quick]
    body_regex: "^OK"
"""

RETURN = r"""
passed:
  description: Whether the check passed.
  returned: always
  type: bool
  sample: true
summary:
  description: One sentence a person can read.
  returned: always
  type: str
  sample: 3/3 consecutive successes in 2.1 s, p95 12 ms
attempts:
  description: Every attempt (the last 200) with its offset in seconds, outcome, status, latency and reason.
  returned: always
  type: list
  elements: dict
  sample: [{n: 1, at_s: 0.0, ok: false, status: null, latency_ms: 0.4, reason: "connection refused"}]
latency:
  description: Latency of all attempts in milliseconds.
  returned: always
  type: dict
  sample: {count: 3, p50_ms: 4.1, p95_ms: 12.0, max_ms: 12.0}
elapsed_s:
  description: Seconds the check took.
  returned: always
  type: float
  sample: 2.1
"""

import functools
import re
import socket
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.conveyor.deploy.plugins.module_utils._health import (
    HAS_JMESPATH, compile_assertions, latency_summary, probe_until, summarise,
)
from ansible_collections.conveyor.deploy.plugins.module_utils._probe import probe_http, short as _short
from ansible_collections.conveyor.deploy.plugins.module_utils._proof import answer_problem, regex_problem

MAX_ATTEMPTS_RETURNED = 200


def probe_tcp(params):
    start = time.monotonic()
    try:
        sock = socket.create_connection((params["host"], params["port"]), timeout=params["request_timeout"])
        sock.close()
    except (socket.timeout, OSError) as exc:
        return False, None, (time.monotonic() - start) * 1000.0, _short(exc)
    return True, None, (time.monotonic() - start) * 1000.0, None


def probe_command(module, params, pattern):
    start = time.monotonic()
    rc, out, err = module.run_command(params["command"], check_rc=False)
    latency = (time.monotonic() - start) * 1000.0
    if rc != params["expect_rc"]:
        return False, rc, latency, "exit code %d (%s)" % (rc, _short(err or out, 80))
    if pattern and not pattern.search(out):
        return False, rc, latency, "output does not match %r" % params["body_regex"]
    return True, rc, latency, None


def validate(module):
    """Fail before probing on options that can never work, naming the option."""
    params = module.params
    kind = params["type"]
    if params["success_threshold"] < 1:
        module.fail_json(msg="Invalid success_threshold %d: it must be at least 1." % params["success_threshold"])
    if params["failure_threshold"] < 0:
        module.fail_json(msg="Invalid failure_threshold %d: use 0 to disable the early stop." % params["failure_threshold"])
    if params["timeout"] <= 0 or params["request_timeout"] <= 0 or params["interval"] < 0:
        module.fail_json(msg="Invalid timing: timeout and request_timeout must be positive, interval not negative.")
    if kind == "http" and not re.match(r"^https?://", params["url"] or ""):
        module.fail_json(msg="Invalid url %r: an http probe needs an http:// or https:// URL." % params["url"])
    pattern = None
    if params["body_regex"]:
        try:
            pattern = re.compile(params["body_regex"])
        except re.error as exc:
            module.fail_json(msg="Invalid body_regex %r: %s." % (params["body_regex"], exc))
    compiled = []
    expect = params["expect_version"]
    if expect and expect["version"]:
        if kind != "http":
            module.fail_json(msg="expect_version only applies to type=http.")
        problem = regex_problem(expect["version_regex"])
        if problem:
            module.fail_json(msg="Invalid expect_version.version_regex %r: it %s." % (expect["version_regex"], problem))
        if expect["version_from"] == "json" and not HAS_JMESPATH:
            module.fail_json(msg=missing_required_lib("jmespath") + " (install python3-jmespath on the probing host)")
    if params["json_assertions"]:
        if kind != "http":
            module.fail_json(msg="json_assertions only apply to type=http.")
        if not HAS_JMESPATH:
            module.fail_json(msg=missing_required_lib("jmespath") + " (install python3-jmespath on the probing host)")
        try:
            compiled = compile_assertions(params["json_assertions"])
        except ValueError as exc:
            module.fail_json(msg="Invalid %s." % exc)
    return pattern, compiled


def describe(params):
    if params["name"]:
        return params["name"]
    if params["type"] == "http":
        return "%s %s" % (params["method"], params["url"])
    if params["type"] == "tcp":
        return "tcp %s:%s" % (params["host"], params["port"])
    return "command %s" % " ".join(params["command"])


def version_proof(expect):
    """probe_http's proof for ``expect_version`` (None when no version is expected)."""
    if not expect or not expect["version"]:
        return None
    return lambda headers, text: answer_problem(expect, expect["version"], headers, text)


def run_checks(module, pattern, compiled):
    params = module.params
    if params["type"] == "http":
        probe = functools.partial(probe_http, params, compiled, pattern, version_proof(params["expect_version"]))
    elif params["type"] == "tcp":
        probe = functools.partial(probe_tcp, params)
    else:
        probe = functools.partial(probe_command, module, params, pattern)
    return probe_until(probe, params["success_threshold"], params["failure_threshold"], params["samples"],
                       params["start_period"], params["interval"], params["timeout"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            type=dict(type="str", default="http", choices=["http", "tcp", "command"]),
            url=dict(type="str"),
            method=dict(type="str", default="GET"),
            headers=dict(type="dict", default={}, no_log=True),
            body=dict(type="str"),
            status_codes=dict(type="list", elements="int", default=[200]),
            body_regex=dict(type="str"),
            json_assertions=dict(type="list", elements="dict", default=[], options=dict(
                query=dict(type="str", required=True),
                equals=dict(type="raw"),
            )),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int"),
            command=dict(type="list", elements="str"),
            expect_rc=dict(type="int", default=0),
            request_timeout=dict(type="float", default=5),
            timeout=dict(type="float", default=60),
            interval=dict(type="float", default=1),
            success_threshold=dict(type="int", default=3),
            failure_threshold=dict(type="int", default=3),
            start_period=dict(type="float", default=0),
            samples=dict(type="int", default=0),
            max_latency_ms=dict(type="float"),
            name=dict(type="str"),
            expect_version=dict(type="dict", options=dict(
                version=dict(type="str", required=True),
                version_from=dict(type="str", default="json", choices=["json", "header", "body", "process", "none"]),
                version_query=dict(type="str", default="version"),
                version_header=dict(type="str", default="X-App-Version"),
                version_regex=dict(type="str"),
            )),
        ),
        required_if=[("type", "http", ("url",)), ("type", "tcp", ("port",)), ("type", "command", ("command",))],
        supports_check_mode=True,
    )
    pattern, compiled = validate(module)
    params = module.params
    tracker, attempts, latencies, elapsed, timed_out = run_checks(module, pattern, compiled)
    latency = latency_summary(latencies)
    what = describe(params)
    passed = tracker.passed
    summary = summarise(passed, tracker, elapsed, latency, attempts, what, timed_out)
    if passed and params["max_latency_ms"] is not None and latency["p95_ms"] > params["max_latency_ms"]:
        passed = False
        summary = "failed: %s: p95 latency %s ms over %d samples exceeds max_latency_ms %s" % (
            what, latency["p95_ms"], latency["count"], params["max_latency_ms"])
    result = dict(changed=False, passed=passed, summary=summary, attempts=attempts[-MAX_ATTEMPTS_RETURNED:],
                  latency=latency, elapsed_s=round(elapsed, 2))
    if not passed:
        module.fail_json(msg=summary, **result)
    module.exit_json(msg=summary, **result)


if __name__ == "__main__":
    main()
