#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollout_report
short_description: Summarise a run, publish the summary and give its verdict
version_added: "0.2.0"
description:
  - Run once at the end of a run. Builds one row per host (outcome, from, to, reason, gate time) from the run object
    and the batch records, prints them, and publishes the summary with set_stats as C(conveyor_deploy) or
    C(conveyor_rollback) (AWX artifacts; the change log and notify read it).
  - After a rollback that moved every host, requests the smoke URL through the load balancer and expects the live
    version alone in every answer.
  - The task succeeds, so that Ansible keeps the published stats; RV(run_failed) and RV(verdict) say whether the run
    reached its target, and the next task fails the run with the verdict.
  - An action plugin that runs on the controller only.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Reports; the smoke test does not run.
  diff_mode:
    support: none
options: {}
seealso:
  - module: conveyor.deploy.rollout_plan
"""

EXAMPLES = r"""
- name: Summarise the run
  conveyor.deploy.rollout_report:
  run_once: true
  register: rolling_report

- name: Fail the run
  ansible.builtin.fail:
    msg: "{{ rolling_report.verdict }}"
  when: rolling_report.run_failed
  run_once: true
"""

RETURN = r"""
summary:
  description: The summary (run_id, kind, release_id, version, actor, failed, phases_s, requests_served, hosts).
  returned: always
  type: dict
run_failed:
  description: Whether the run failed (never false for a run that did not reach its target).
  returned: always
  type: bool
verdict:
  description: Why it failed, naming the hosts and reasons; empty when it did not.
  returned: always
  type: str
task_hooks:
  description:
    - The task files of C(rolling_hook_tasks) the finish play includes now, in order (C(on_failure) when the run
      failed, C(on_rollback) when it rolled hosts back, C(at_end)); none in check mode.
  returned: always
  type: list
  elements: dict
  sample: [{point: at_end, file: /srv/deploy/inventories/prod/hooks/at_end.yml}]
"""
