#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_state
short_description: Keep an HAProxy backend's server states across a reload, and only across it
version_added: "0.1.0"
description:
  - With O(state=saved), writes the backend's C(show servers state) (each server's administrative state, drained
    or in maintenance, its operational state and weight) to the backend's server-state file, which the backend loads
    when HAProxy starts (C(load-server-state-from-file local) and C(server-state-file-name), as the
    C(conveyor.deploy.loadbalancer) role writes them). Run it just before a reload, so a server that a deploy or an
    operator took out of rotation is still out of rotation in the reloaded HAProxy.
  - HAProxy gives a saved address or port precedence over the configuration. Given the servers of the new
    configuration (O(servers)), the module keeps only the states of servers whose address and port stay the same,
    so a changed port or address is applied; a server that leaves the backend leaves the file.
  - With O(state=cleared), waits until the HAProxy process that answered O(pid) has been replaced (the reload's new
    process answers the runtime API, so it has loaded the file), then empties the file. A state kept for a reload is
    never applied again at a later start, when it would be stale (a server drained long ago).
  - When HAProxy does not run (no socket) or does not have the backend yet, there is nothing to keep; the module
    changes nothing and says so.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Reads the states and reports whether the file would change; writes nothing and waits for nothing.
  diff_mode:
    support: none
options:
  backend:
    description: Name of the HAProxy backend.
    type: str
    required: true
  path:
    description: The backend's server-state file (its C(server-state-file-name)).
    type: path
    required: true
  state:
    description: V(saved) before a reload, V(cleared) after it.
    type: str
    choices: [saved, cleared]
    default: saved
  servers:
    description:
      - The servers of the configuration about to be loaded, each with C(name), C(address) and C(port). Only the
        states of servers still at the same address (an IP address or the name the configuration gives) and port are
        kept. Omitted, every server's state is kept.
    type: list
    elements: dict
  pid:
    description: With O(state=cleared), the PID O(state=saved) returned (the HAProxy process before the reload).
    type: int
  timeout:
    description: Seconds O(state=cleared) waits for the new HAProxy process before it fails.
    type: int
    default: 30
  socket:
    description: Path of HAProxy's runtime API socket on the load balancer.
    type: path
    default: /run/haproxy/admin.sock
seealso:
  - module: conveyor.deploy.haproxy_info
"""

EXAMPLES = r"""
- name: Keep the servers' states for the reload
  conveyor.deploy.haproxy_state:
    backend: shop
    path: /var/lib/haproxy/conveyor-shop.state
    servers: [{name: web1, address: 10.0.0.11, port: 8000}]
  register: saved
  listen: reload haproxy

- name: Reload HAProxy
  ansible.builtin.systemd_service:
    name: haproxy
    state: reloaded
  listen: reload haproxy

- name: Forget the states once the new HAProxy loaded them
  conveyor.deploy.haproxy_state:
    backend: shop
    path: /var/lib/haproxy/conveyor-shop.state
    state: cleared
    pid: "{{ saved.pid }}"
  listen: reload haproxy
"""

RETURN = r"""
servers:
  description: The servers whose state was saved, with their administrative state.
  returned: O(state=saved)
  type: list
  elements: dict
  sample: [{name: app01, admin: drain}, {name: app02, admin: ready}]
pid:
  description: The PID of the HAProxy process whose states were saved (none when HAProxy did not run).
  returned: O(state=saved)
  type: int
  sample: 2713
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.conveyor.deploy.plugins.module_utils._haproxy import (
    ADMIN_DRAIN, ADMIN_MAINT, HAProxyError, RuntimeAPI, parse_servers_state)
from ansible_collections.conveyor.deploy.plugins.module_utils._maintenance import write_file

# What the file holds once the reload loaded it: the format's version line, no server.
EMPTY = "1\n"


def admin_name(state):
    if state & ADMIN_MAINT:
        return "maint"
    if state & ADMIN_DRAIN:
        return "drain"
    return "ready"


def kept_rows(text, backend, servers):
    """The ``show servers state`` text with only the rows of servers whose address and port stay the same."""
    if servers is None:
        return text
    wanted = dict((str(s.get("name")), (str(s.get("address")), str(s.get("port")))) for s in servers)
    header, out = None, []
    for line in text.splitlines():
        if line.startswith("# be_id"):
            header = line[2:].split()
        if line.startswith("#") or header is None or not line.strip():
            out.append(line)
            continue
        row = dict(zip(header, line.split()))
        if row.get("be_name") != backend or row.get("srv_name") not in wanted:
            continue
        address, port = wanted[row["srv_name"]]
        if port == row.get("srv_port") and address in (row.get("srv_addr"), row.get("srv_fqdn")):
            out.append(line)
    return "\n".join(out) + "\n"


def pid_of(api):
    for line in api.command("show info").splitlines():
        if line.startswith("Pid:"):
            return int(line.split(":", 1)[1])
    return None


def write(module, path, text):
    try:
        write_file(path, text, ".conveyor-state-")
    except OSError as exc:
        module.fail_json(msg="Could not write the server states of backend %s to %s: %s. The directory must exist and "
                         "be writable (loadbalancer_state_dir)." % (module.params["backend"], path, exc))


def read(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def clear(module, api):
    params = module.params
    if module.check_mode:
        module.exit_json(changed=False)
    deadline = time.time() + params["timeout"]
    while params["pid"] and os.path.exists(params["socket"]):
        try:
            if pid_of(api) != params["pid"]:
                break
        except HAProxyError:
            pass  # between the old process and the new one
        if time.time() > deadline:
            stuck = (params["pid"], params["timeout"], params["path"])
            module.fail_json(msg="HAProxy still answers from process %s %ds after the reload: the saved states in %s "
                             "are left for it. Check `systemctl status haproxy`." % stuck)
        time.sleep(0.2)
    if read(params["path"]) in (None, EMPTY):
        module.exit_json(changed=False)
    write(module, params["path"], EMPTY)
    module.exit_json(changed=True)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type="str", required=True),
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["saved", "cleared"], default="saved"),
            servers=dict(type="list", elements="dict"),
            pid=dict(type="int"),
            timeout=dict(type="int", default=30),
            socket=dict(type="path", default="/run/haproxy/admin.sock"),
        ),
        supports_check_mode=True,
    )
    backend, path = module.params["backend"], module.params["path"]
    api = RuntimeAPI(module.params["socket"])
    if module.params["state"] == "cleared":
        clear(module, api)
    if not os.path.exists(module.params["socket"]):
        module.exit_json(changed=False, servers=[], pid=None,
                         msg="HAProxy does not run (no socket at %s): no server state to keep." % module.params["socket"])
    try:
        pid = pid_of(api)
        text = api.command("show servers state %s" % backend)
    except HAProxyError as exc:
        module.fail_json(msg="Could not read the server states of backend %s before the reload: %s" % (backend, exc))
    states = parse_servers_state(text).get(backend)
    if not states:
        module.exit_json(changed=False, servers=[], pid=pid,
                         msg="HAProxy has no backend %s yet: no server state to keep." % backend)
    text = kept_rows(text, backend, module.params["servers"])
    kept = parse_servers_state(text).get(backend) or {}
    servers = [dict(name=name, admin=admin_name(kept[name]["admin_state"])) for name in sorted(kept)]
    changed = read(path) != text
    if changed and not module.check_mode:
        write(module, path, text)
    module.exit_json(changed=changed, servers=servers, pid=pid)


if __name__ == "__main__":
    main()
