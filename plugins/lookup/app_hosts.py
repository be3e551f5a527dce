# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: app_hosts
short_description: The application a playbook acts on, as a host pattern (the inventory group named by app_hosts)
version_added: "0.1.0"
description:
  - The collection's playbooks act on one application, the hosts of the inventory group C(app_hosts) (C(app) when it
    is not set). Several applications on one fleet are several groups, each with its own C(group_vars), and the
    operator picks one with C(-e app_hosts=<group>) (docs/several-apps.md).
  - A group named with C(app_hosts) that the inventory does not have, or one without hosts, fails the play, naming the
    variable and the groups the inventory has, instead of matching no host and ending "ok" with nothing done.
author:
  - conveyor.deploy developers (@conveyor-deploy)
options:
  _terms:
    description: The group; empty or absent, C(app_hosts) from the play's variables (C(-e)), else C(app).
    type: list
    elements: str
    required: false
"""

EXAMPLES = r"""
- name: Deploy the application chosen with -e app_hosts=<group>
  hosts: "{{ query('conveyor.deploy.app_hosts') }}"
  tasks: []
"""

RETURN = r"""
_raw:
  description: The group's name, once checked (as a host pattern, Ansible keeps its inventory order, --limit and serial).
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _apps


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        group = (terms[0] if terms else "") or variables.get("app_hosts")
        try:
            return [_apps.app_hosts(group, variables.get("groups") or {})]
        except _apps.AppError as exc:
            raise AnsibleLookupError(str(exc))
