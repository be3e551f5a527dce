# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: rollout
short_description: The hosts and batch sizes of a rollout play, read from the run object
version_added: "0.2.0"
description:
  - The rollout plays (C(playbooks/rollout.yml)) are given their hosts and C(serial) by this lookup, from the run
    object C(rolling_run) that the prepare entry point of M(conveyor.deploy.rollout_plan) left on the hosts.
  - C(hosts) and C(sizes) are the hosts that move, in batch order, and the size of each batch; C(recover_hosts) and
    C(recover_sizes) are those a fleet recovery moves back after a failed deploy, or that C(playbooks/abort.yml) moves
    back (none otherwise); a promoted run's C(hosts) and C(sizes) are those of the batches after its pause; C(run_hosts) are
    all the hosts of the run; C(end_hook_hosts) are the run's hosts when its report (C(rolling_report)) names
    end-of-run task hooks, else none; C(failed_run_hosts) is the run's first host when its report says the run
    failed, else none (the play that fails the run then costs nothing).
  - Without a run object (the run stopped before it was planned) every term gives an empty list.
author:
  - conveyor.deploy developers (@conveyor-deploy)
options:
  _terms:
    description: What to return; with several terms the lists are joined, so give one.
    type: list
    elements: str
    required: true
    choices: [hosts, sizes, recover_hosts, recover_sizes, run_hosts, end_hook_hosts, failed_run_hosts]
"""

EXAMPLES = r"""
- name: Cut over batch by batch
  hosts: "{{ query('conveyor.deploy.rollout', 'hosts') }}"
  serial: "{{ query('conveyor.deploy.rollout', 'sizes') }}"
  tasks:
    - name: Move this batch
      ansible.builtin.import_role:
        name: conveyor.deploy.rolling
        tasks_from: cutover
"""

RETURN = r"""
_raw:
  description: A list of host names, or of batch sizes.
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _rollout

TERMS = ("hosts", "sizes", "recover_hosts", "recover_sizes", "run_hosts", "end_hook_hosts", "failed_run_hosts")


def report_of(run, hostvars):
    """This run's report (rolling_report) as the finish play registered it on its hosts, or None."""
    for host in run["hosts"]:
        report = (hostvars.get(host) or {}).get("rolling_report")
        if isinstance(report, dict) and (report.get("summary") or {}).get("run_id") == run["run_id"]:
            return report
    return None


def find_run(hostvars, hosts):
    """The run object of this run: the newest one any host carries."""
    found = None
    for host in hosts:
        try:
            run = hostvars[host].get("rolling_run")
        except KeyError:
            continue
        if isinstance(run, dict) and run.get("run_id") and (found is None or run["t_start"] > found["t_start"]):
            found = run
    return found


def answer(term, run, hostvars):
    if run is None:
        return []
    if term == "run_hosts":
        return list(run["hosts"])
    if term in ("end_hook_hosts", "failed_run_hosts"):
        report = report_of(run, hostvars) or {}
        if term == "end_hook_hosts":
            return list(run["hosts"]) if report.get("task_hooks") else []
        return list(run["hosts"][:1]) if report.get("run_failed") else []
    if term in ("hosts", "sizes"):
        # A promote continues after the batches its run moved before the pause (an abort moves none forward).
        batches = run["batches"][run.get("start_batch") or 0:]
    else:
        batches = _rollout.recovery_of(run, _rollout.batch_records(run, hostvars))[1]
    if term.endswith("hosts"):
        return [host for batch in batches for host in batch]
    return [len(batch) for batch in batches] or [1]


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        hostvars = variables.get("hostvars") or {}
        hosts = list((variables.get("groups") or {}).get("all") or [])
        run = find_run(hostvars, hosts)
        out = []
        for term in terms:
            if term not in TERMS:
                raise AnsibleLookupError("conveyor.deploy.rollout: unknown term %r; use one of %s" % (term, ", ".join(TERMS)))
            out.extend(answer(term, run, hostvars))
        return out
