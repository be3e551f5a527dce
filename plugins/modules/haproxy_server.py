#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_server
short_description: Drain, disable or re-enable a batch of HAProxy servers, guarding the backend's capacity
version_added: "0.1.0"
description:
  - Changes the admin state of several servers of one HAProxy backend through the runtime API, in one module
    execution on the load balancer, and waits for the result.
  - O(state=drained) first checks that the backend keeps at least O(min_healthy_percent) of its servers serving
    once these servers stop taking traffic, and refuses otherwise. Then it sets them to C(drain) and waits until
    their current sessions reach zero.
  - O(state=enabled) sets the servers back to C(ready) and waits until HAProxy's own health checks see every one
    of them up, so the capacity is restored before the next batch starts. When HAProxy's check keeps failing a
    server (two failed checks since it was re-enabled, or checks refused for O(refused_grace) seconds while it is
    down, for example C(L7STS 404)), it fails with HAProxy's
    own check status instead of waiting out O(wait_timeout); a server whose last check HAProxy refused is never
    marked up through O(mark_up).
  - Unlike M(community.general.haproxy), it acts on a whole batch at once (so the capacity check sees the whole
    batch), supports check mode and returns the backend's state.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Reads the backend and reports what would change, including a capacity refusal, without changing it.
  diff_mode:
    support: full
options:
  socket:
    description: Path of HAProxy's admin-level runtime API socket on the load balancer.
    type: path
    default: /run/haproxy/admin.sock
  backend:
    description: Name of the HAProxy backend.
    type: str
    required: true
  servers:
    description: Names of the servers in O(backend) to act on.
    type: list
    elements: str
    required: true
  state:
    description:
      - C(drained) stops new traffic and waits for sessions to end; C(maint) does the same and also stops
        health checks; C(enabled) puts the servers back into rotation.
    type: str
    choices: [drained, maint, enabled]
    required: true
  min_healthy_percent:
    description: With O(state=drained) or O(state=maint), the share of the backend's servers that must stay serving.
    type: float
    default: 0
  wait:
    description: Wait for sessions to end (drained, maint) or for the servers to be up (enabled).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait before failing.
    type: int
    default: 60
  refused_grace:
    description:
      - With O(state=enabled), seconds a server may stay down with HAProxy refusing its checks (C(L7STS), C(L7RSP),
        C(L6RSP)) before the module fails with HAProxy's check status instead of waiting out O(wait_timeout).
      - HAProxy counts failed checks only while a server is up, so a server already down is judged by this time.
    type: float
    default: 10
  require_up:
    description: With O(state=enabled), fail unless every server is seen up within O(wait_timeout).
    type: bool
    default: true
  mark_up:
    description:
      - With O(state=enabled), servers (among O(servers)) whose health to set up through the runtime API
        (C(set server ... health up)), so that they serve at once instead of after HAProxy's C(rise) checks.
      - Only for servers whose health was just proven another way (the rollout's health gate). HAProxy keeps
        checking them, and takes a server out again after C(fall) failed checks.
    type: list
    elements: str
    default: []
  weights:
    description:
      - Weights to set before the state change, as a percentage (1-100) of the weight haproxy.cfg gives each server,
        keyed by server name (C(set weight backend/server N%)). 100 restores the configured weight.
      - The rollout's canary rejoins at a reduced weight, and the next load-balancer call restores it; every other
        re-enable of the rollout asks for 100, so that a canary left at a reduced weight (a run killed during its
        window) gets its weight back.
      - Only a weight that differs from the server's current one is set, and counts as a change. In check mode
        nothing is set.
    type: dict
    default: {}
  observe:
    description:
      - After the state change and the wait, read the backend's per-server counters, wait this many seconds and read
        them again (RV(observed)). This is the window of live traffic that the rollout's analysis judges. 0 reads
        nothing.
      - Not in check mode.
    type: float
    default: 0
  heartbeat:
    description:
      - Record that run O(heartbeat.run_id) is alive (M(conveyor.deploy.run_heartbeat) explains the beats), before
        acting. Not in check mode. A beat that cannot be written is a warning, and the call goes on.
    type: dict
    suboptions:
      run_id:
        description: The run that makes this call.
        type: str
        required: true
      dir:
        description: Where the beats are kept (a directory per backend under it).
        type: path
        default: /var/lib/conveyor/heartbeats
seealso:
  - module: community.general.haproxy
  - module: conveyor.deploy.run_heartbeat
"""

EXAMPLES = r"""
- name: Drain the batch, keeping 75 % of the backend serving
  conveyor.deploy.haproxy_server:
    backend: shop
    servers: "{{ ansible_play_batch }}"
    state: drained
    min_healthy_percent: 75
    wait_timeout: 120
  delegate_to: "{{ groups['lb'][0] }}"
  run_once: true

- name: Put the batch back once it is healthy
  conveyor.deploy.haproxy_server:
    backend: shop
    servers: "{{ ansible_play_batch }}"
    state: enabled
  delegate_to: "{{ groups['lb'][0] }}"
  run_once: true
  register: shop_lb

- name: Show how many backends serve now
  ansible.builtin.debug:
    msg: "{{ shop_lb.serving }} of {{ shop_lb.total }} serving"
"""

RETURN = r"""
servers:
  description:
    - The backend's servers after the action, each with admin state, health, sessions and whether it serves.
    - HAProxy's last check of each server is in C(check), C(check_detail) and C(check_failures).
  returned: always
  type: list
  elements: dict
  sample: [{name: app01, admin: drain, health: up, serving: false, sessions: 0, served: 1520, status: DRAIN, addr: 10.0.0.11,
            check: L7OK 200, check_detail: "", check_failures: 0}]
changed_servers:
  description: Servers whose admin state was (or would be) changed.
  returned: always
  type: list
  elements: str
  sample: [app01]
serving:
  description: How many of the backend's servers serve traffic after the action.
  returned: always
  type: int
  sample: 3
total:
  description: How many servers the backend has.
  returned: always
  type: int
  sample: 4
observed:
  description:
    - The window of O(observe) seconds. V(before) and V(after) map each server of the backend to its counters
      (HAProxy's C(show stat) columns C(hrsp_1xx) to C(hrsp_5xx), C(hrsp_other), C(econ), C(eresp), and C(rtime),
      the moving average of its last 1024 response times in ms).
  returned: when O(observe) is more than 0, not in check mode
  type: dict
  sample: {seconds: 30.0, before: {app01: {hrsp_2xx: 1200, hrsp_5xx: 0, rtime: 2}}, after: {app01: {hrsp_2xx: 1290, hrsp_5xx: 4, rtime: 3}}}
waited_s:
  description: Seconds spent waiting for sessions to end or servers to come up.
  returned: always
  type: float
  sample: 1.5
msg:
  description: What happened.
  returned: always
  type: str
  sample: drained app01 (sessions 0), 3 of 4 serving
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.conveyor.deploy.plugins.module_utils import _heartbeat
from ansible_collections.conveyor.deploy.plugins.module_utils._haproxy import (
    REFUSED_CHECKS, HAProxyError, RuntimeAPI, capacity_problem, check_disagrees, last_check, settled,
)

WANTED_ADMIN = {"drained": "drain", "maint": "maint", "enabled": "ready"}


def pending(view, servers, state):
    """Servers not yet where ``state`` wants them."""
    if state == "enabled":
        return [s for s in servers if not settled(view[s])]
    return [s for s in servers if view[s]["sessions"] > 0]


def run(module, api):
    params = module.params
    backend, servers, state = params["backend"], params["servers"], params["state"]
    view = api.backend(backend)
    unknown = [s for s in servers if s not in view]
    if unknown:
        raise HAProxyError("Backend %s has no server named %s (it has %s). The server names must match the inventory "
                           "hostnames, or set app_lb_server." % (backend, ", ".join(unknown), ", ".join(sorted(view))))
    wanted = WANTED_ADMIN[state]
    to_change = [s for s in servers if view[s]["admin"] != wanted]
    if state != "enabled":
        problem = capacity_problem(view, set(to_change), params["min_healthy_percent"], params["weights"])
        if problem:
            raise HAProxyError("Refusing to take servers out of %s: %s. Use smaller batches or fix the unhealthy "
                               "backends first." % (backend, problem))
    weights = params["weights"] or {}
    strange = [s for s in weights if s not in view]
    if strange:
        raise HAProxyError("Backend %s has no server named %s to weigh (it has %s)." % (
            backend, ", ".join(strange), ", ".join(sorted(view))))
    for server, percent in weights.items():
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
            raise HAProxyError("The weight of %s must be a whole percentage from 1 to 100, not %r." % (server, percent))
        if percent < 100 and view[server].get("weight", 0) * percent < 100:
            raise HAProxyError(
                "%d%% of %s/%s's weight %d rounds to 0 and the server would get no traffic: give the backend's servers a "
                "weight of 100 in haproxy.cfg (the conveyor.deploy.loadbalancer role does), or raise the percentage."
                % (percent, backend, server, view[server].get("weight", 0)))
    # Only weights that differ are set (HAProxy's weight is the configured one times the percentage, rounded down).
    reweigh = dict((s, p) for s, p in weights.items() if view[s].get("current_weight") != view[s]["weight"] * p // 100)
    diff = dict(before="".join("%s/%s: %s\n" % (backend, s, view[s]["admin"]) for s in to_change),
                after="".join("%s/%s: %s\n" % (backend, s, wanted) for s in to_change))
    diff["before"] += "".join("%s/%s: weight %d\n" % (backend, s, view[s].get("current_weight", 0))
                              for s in sorted(reweigh))
    diff["after"] += "".join("%s/%s: weight %d%%\n" % (backend, s, p) for s, p in sorted(reweigh.items()))
    waited = 0.0
    failures_before = dict((s, view[s].get("check_failures", 0)) for s in servers)
    if not module.check_mode:
        for server, percent in sorted(reweigh.items()):
            api.set_weight(backend, server, percent)
        for server in to_change:
            api.set_state(backend, server, wanted)
        if state == "enabled":
            for server in params["mark_up"]:
                # A server whose last check HAProxy refused (it answered, HAProxy disliked the answer) is not
                # marked up: HAProxy would take it down again; waiting shows why.
                refused = last_check(view[server]) in REFUSED_CHECKS
                if server in servers and view[server]["health"] != "up" and not refused:
                    api.set_health_up(backend, server)
        if params["wait"]:
            start = time.monotonic()
            refused_since = {}
            # A drained server's last requests usually end, and a marked-up server is usually served, within
            # milliseconds: poll fast at first, then back off to the pace of HAProxy's own checks.
            poll = 0.02
            while True:
                view = api.backend(backend)
                left = pending(view, servers, state)
                if not left:
                    break
                now = time.monotonic()
                for s in left:
                    if last_check(view[s]) in REFUSED_CHECKS:
                        refused_since.setdefault(s, now)
                    else:
                        refused_since.pop(s, None)
                disagreeing = [check_disagrees(view[s], failures_before[s], now - refused_since.get(s, now),
                                               grace=params["refused_grace"])
                               for s in left] if state == "enabled" else []
                disagreeing = [reason for reason in disagreeing if reason]
                if disagreeing:
                    if not params["require_up"]:
                        break
                    raise HAProxyError("; ".join(disagreeing) + ".")
                if time.monotonic() - start > params["wait_timeout"]:
                    if state == "enabled" and not params["require_up"]:
                        break
                    what = "are not up" if state == "enabled" else "still have sessions"
                    raise HAProxyError("Timed out after %ss: %s %s in backend %s." % (
                        params["wait_timeout"], ", ".join(left), what, backend))
                time.sleep(poll)
                poll = min(poll * 2, 0.25)
            waited = time.monotonic() - start
        view = api.backend(backend)
    observed = None
    if params["observe"] > 0 and not module.check_mode:
        first = api.counters(backend)
        time.sleep(params["observe"])
        observed = dict(seconds=params["observe"], before=first, after=api.counters(backend))
    serving = sum(1 for s in view.values() if s["serving"])
    verb = {"drained": "drained", "maint": "put in maintenance", "enabled": "enabled"}[state]
    msg = "%s%s %s, %d of %d serving" % ("would have " if module.check_mode and to_change else "",
                                         verb if to_change else "already " + verb,
                                         ", ".join(servers), serving, len(view))
    out = dict(changed=bool(to_change or reweigh), diff=diff, changed_servers=to_change, servers=list(view.values()),
               serving=serving, total=len(view), waited_s=round(waited, 2), msg=msg)
    if observed is not None:
        out["observed"] = observed
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="path", default="/run/haproxy/admin.sock"),
            backend=dict(type="str", required=True),
            servers=dict(type="list", elements="str", required=True),
            state=dict(type="str", required=True, choices=["drained", "maint", "enabled"]),
            min_healthy_percent=dict(type="float", default=0),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=60),
            refused_grace=dict(type="float", default=10),
            require_up=dict(type="bool", default=True),
            mark_up=dict(type="list", elements="str", default=[]),
            weights=dict(type="dict", default={}),
            observe=dict(type="float", default=0),
            heartbeat=dict(type="dict", options=dict(
                run_id=dict(type="str", required=True),
                dir=dict(type="path", default=_heartbeat.DEFAULT_DIR),
            )),
        ),
        supports_check_mode=True,
    )
    if not 0 <= module.params["min_healthy_percent"] <= 100:
        module.fail_json(msg="Invalid min_healthy_percent %s: use a number from 0 to 100." % module.params["min_healthy_percent"])
    beat = module.params["heartbeat"]
    if beat and not module.check_mode:
        try:
            _heartbeat.beat(_heartbeat.directory(beat["dir"], module.params["backend"]), beat["run_id"])
        except OSError as exc:
            module.warn("Could not record the heartbeat of run %s under %s (%s): another run may take its locks over "
                        "once they expire." % (beat["run_id"], beat["dir"], exc.strerror or exc))
    try:
        result = run(module, RuntimeAPI(module.params["socket"]))
    except HAProxyError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
