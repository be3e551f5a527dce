#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_maintenance
short_description: Put an HAProxy backend in maintenance mode (a 503 page with a message) or take it out
version_added: "0.1.0"
description:
  - Sets or removes the backend's entry in two HAProxy map files that the backend's maintenance rule reads - the
    message (the 503 page's body) and the seconds of the C(Retry-After) header. The runtime API changes HAProxy's
    copy at once, with no reload and no dropped connection; the files on disk keep the state across reloads.
  - The backend needs the maintenance rule (an C(http-request return status 503) line reading both maps, shown in
    docs/hooks-and-migrations.md) and the map files; without them the module fails, saying what to add.
  - The servers' own states are not touched, so a deploy can run behind the maintenance page.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Reads HAProxy's maps and reports what would change; changes nothing.
  diff_mode:
    support: full
options:
  state:
    description: V(on) answers every request of the backend with the 503 page; V(off) serves traffic again.
    type: str
    choices: ["on", "off"]
    required: true
  backend:
    description: Name of the HAProxy backend.
    type: str
    required: true
  text:
    description: The 503 page's text, one line of at most 500 characters (required with O(state=on)). Also the C(message) it returns..
    type: str
  retry_after:
    description: Seconds the C(Retry-After) header announces.
    type: int
    default: 300
  socket:
    description: Path of HAProxy's runtime API socket on the load balancer.
    type: path
    default: /run/haproxy/admin.sock
  message_map:
    description: The map file of messages, as the backend's rule names it.
    type: path
    default: /etc/haproxy/conveyor-maintenance.map
  retry_map:
    description: The map file of C(Retry-After) seconds, as the backend's rule names it.
    type: path
    default: /etc/haproxy/conveyor-retry-after.map
seealso:
  - module: conveyor.deploy.haproxy_server
"""

EXAMPLES = r"""
- name: Show the maintenance page while the database is upgraded
  conveyor.deploy.haproxy_maintenance:
    backend: shop
    state: "on"
    text: "Down for a database upgrade, back at 14:00 UTC"
    retry_after: 900
  delegate_to: "{{ groups['lb'][0] }}"
  run_once: true

- name: Serve traffic again
  conveyor.deploy.haproxy_maintenance:
    backend: shop
    state: "off"
  delegate_to: "{{ groups['lb'][0] }}"
  run_once: true
"""

RETURN = r"""
state:
  description: The backend's maintenance state after the module (V(on) or V(off)).
  returned: always
  type: str
  sample: "on"
before:
  description: The message the backend showed before (empty when it was not in maintenance).
  returned: always
  type: str
message:
  description: The message it shows now (empty when off).
  returned: always
  type: str
retry_after:
  description: The C(Retry-After) seconds while on (null when off).
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.conveyor.deploy.plugins.module_utils._haproxy import HAProxyError, RuntimeAPI
from ansible_collections.conveyor.deploy.plugins.module_utils._maintenance import (
    message_problem, read_runtime_map, set_entry, write_map_file,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["on", "off"], required=True),
            backend=dict(type="str", required=True),
            text=dict(type="str"),
            retry_after=dict(type="int", default=300),
            socket=dict(type="path", default="/run/haproxy/admin.sock"),
            message_map=dict(type="path", default="/etc/haproxy/conveyor-maintenance.map"),
            retry_map=dict(type="path", default="/etc/haproxy/conveyor-retry-after.map"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    on = params["state"] == "on"
    if on:
        problem = message_problem(params["text"])
        if problem:
            module.fail_json(msg=problem)
        if params["retry_after"] < 0:
            module.fail_json(msg="retry_after is %d: give the seconds clients should wait (0 or more)"
                             % params["retry_after"])
    backend = params["backend"]
    api = RuntimeAPI(params["socket"])
    message = params["text"].strip() if on else None
    retry = str(params["retry_after"]) if on else None
    try:
        api.backend(backend)  # the backend exists: a typo would otherwise set a key that no rule reads
        before = read_runtime_map(api, params["message_map"]).get(backend)
        before_retry = read_runtime_map(api, params["retry_map"]).get(backend)
        live_changes = (before != message) or (before_retry != retry)
        if not module.check_mode:
            # Retry-After first: the page appears (the message entry) with its header already set.
            set_entry(api, params["retry_map"], backend, retry)
            set_entry(api, params["message_map"], backend, message)
            files = [write_map_file(params["retry_map"], backend, retry),
                     write_map_file(params["message_map"], backend, message)]
        else:
            files = [False]
    except HAProxyError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="Could not keep the maintenance state in %s: %s. The runtime state is set; the next "
                             "reload of HAProxy would lose it." % (exc.filename, exc.strerror))
    changed = live_changes or any(files)
    result = dict(changed=changed, state=params["state"], before=before or "", message=message or "",
                  retry_after=params["retry_after"] if on else None)
    if module._diff and changed:
        result["diff"] = dict(before="%s: %s\n" % (backend, "maintenance: %s" % before if before else "serving"),
                              after="%s: %s\n" % (backend, "maintenance: %s" % message if on else "serving"))
    if on:
        result["msg"] = "%s %s the maintenance page: %s (Retry-After %d s)" % (
            backend, "would show" if module.check_mode else "shows", message, params["retry_after"])
    else:
        result["msg"] = "%s %s" % (backend, ("would serve traffic again" if module.check_mode else
                                             "serves traffic again") if before else "was not in maintenance")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
