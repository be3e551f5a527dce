#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_report
short_description: The pre-deployment checklist's fleet checks and report, in one task
version_added: "0.2.0"
description:
  - Run once, after every host ran M(conveyor.deploy.preflight_host). Judges the fleet's checks on the controller -
    the deployment window (as M(conveyor.deploy.deploy_window)), the approval (as M(conveyor.deploy.approval)), the
    load balancer's capacity for the first batch (reading the backend with M(conveyor.deploy.haproxy_info) on the
    host the task is delegated to) and the artifact's signature (from the signature tasks' results) - then gathers
    every host's rows (reachable, lock, disk, artifact, health, config test, drift), prints one table and publishes it
    with set_stats as C(conveyor_preflight).
  - The task succeeds so that Ansible keeps the published stats; RV(passed) and RV(refusal) say whether the run may
    go on, and the next task refuses it with every failed check at once.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: It only reads, so it runs normally in check mode.
  diff_mode:
    support: none
options:
  checks:
    description: The checks to run (C(preflight_checks)); an unknown name is a failed row.
    type: list
    elements: str
    required: true
  window:
    description: Arguments of M(conveyor.deploy.deploy_window) (C(windows), C(environment), C(now), C(override_reason)).
    type: dict
    default: {}
  approval:
    description: Arguments of M(conveyor.deploy.approval) (C(change_id), C(approver), C(source), C(required), ...).
    type: dict
    default: {}
  lb:
    description: The load balancer - C(enabled), C(backend), C(socket); the task runs on its host.
    type: dict
    default: {}
  batches:
    description: The deploy's batches, for the first batch's size.
    type: raw
    default: [1, "25%", "100%"]
  min_healthy_percent:
    description: Share of the backends that must keep serving.
    type: float
    default: 50
  fleet_size:
    description: How many backends the load balancer has.
    type: int
  signature:
    description:
      - C(required), C(key) (whether a key is set), C(fingerprint) (the pinned signer), C(fetched) and C(gpg) (the
        signature tasks' results). Only a signature whose gpgv status lines say GOODSIG and VALIDSIG by the pinned key
        (or one of its subkeys) passes.
    type: dict
    default: {}
  host_var:
    description: The variable under which each host registered its M(conveyor.deploy.preflight_host) result.
    type: str
    default: __preflight_host
  drift_var:
    description: The variable the environment role leaves with a host's differences.
    type: str
    default: environment_changes
seealso:
  - module: conveyor.deploy.preflight_host
"""

EXAMPLES = r"""
- name: Report the checklist
  conveyor.deploy.preflight_report:
    checks: [reachable, window, lock, disk, artifact, lb_capacity]
    window: {windows: "{{ deploy_windows }}", environment: prod}
    lb: {enabled: true, backend: shop, socket: /run/haproxy/admin.sock}
  delegate_to: lb01
  run_once: true
  register: checklist

- name: Refuse the run
  ansible.builtin.fail:
    msg: "{{ checklist.refusal }}"
  run_once: true
  when: not checklist.passed
"""

RETURN = r"""
passed:
  description: Whether every check passed.
  returned: always
  type: bool
checks:
  description: Every row - C(host) (C(all hosts) for the fleet's), C(check), C(passed), C(summary).
  returned: always
  type: list
  elements: dict
refusal:
  description: The refusal naming every failed check, or empty.
  returned: always
  type: str
"""
