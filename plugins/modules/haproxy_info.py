#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_info
short_description: Read the state of an HAProxy backend's servers
version_added: "0.1.0"
description:
  - Reads one backend through HAProxy's runtime API and returns each server's admin state, health, current
    sessions and whether it serves traffic, plus how many serve.
  - Used by the verify playbook and the pre-deployment checklist; M(conveyor.deploy.haproxy_server) changes states.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Read-only; runs normally in check mode.
  diff_mode:
    support: none
options:
  socket:
    description: Path of HAProxy's runtime API socket on the load balancer.
    type: path
    default: /run/haproxy/admin.sock
  backend:
    description: Name of the HAProxy backend.
    type: str
    required: true
seealso:
  - module: conveyor.deploy.haproxy_server
"""

EXAMPLES = r"""
- name: Read the backend
  conveyor.deploy.haproxy_info:
    backend: shop
  delegate_to: "{{ groups['lb'][0] }}"
  run_once: true
  register: shop_backend

- name: Require every backend to serve
  ansible.builtin.assert:
    that: shop_backend.serving == shop_backend.total
    fail_msg: "only {{ shop_backend.serving }} of {{ shop_backend.total }} backends serve"
"""

RETURN = r"""
servers:
  description: Every server of the backend with its admin state, health, current sessions, sessions served so far and whether it serves.
  returned: always
  type: list
  elements: dict
  sample: [{name: app01, admin: ready, health: up, serving: true, sessions: 2, served: 1520, status: UP, addr: 10.0.0.11}]
serving:
  description: How many servers serve traffic.
  returned: always
  type: int
  sample: 4
total:
  description: How many servers the backend has.
  returned: always
  type: int
  sample: 4
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.conveyor.deploy.plugins.module_utils._haproxy import HAProxyError, RuntimeAPI


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="path", default="/run/haproxy/admin.sock"),
            backend=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    try:
        view = RuntimeAPI(module.params["socket"]).backend(module.params["backend"])
    except HAProxyError as exc:
        module.fail_json(msg=str(exc))
    servers = [view[name] for name in sorted(view)]
    module.exit_json(changed=False, servers=servers, total=len(servers),
                     serving=sum(1 for s in servers if s["serving"]))


if __name__ == "__main__":
    main()
