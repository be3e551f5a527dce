# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that plan a rolling deployment before any host is touched (the engine's own planning, in Jinja)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _rollout


def batch_sizes(batches, total, name="rolling_batches"):
    """The sizes of the batches ``serial: <batches>`` makes of ``total`` hosts (the last entry repeats)."""
    try:
        return _rollout.batch_sizes(batches, total, name)
    except _rollout.PlanError as exc:
        raise AnsibleFilterError(str(exc))


def capacity_plan(batches, total, min_healthy_percent, fleet=None, name="rolling_batches"):
    """Check every batch against the minimum healthy capacity: ``{sizes, required_serving, problems}``."""
    try:
        return _rollout.capacity_plan(batches, total, min_healthy_percent, fleet, name)
    except _rollout.PlanError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {
            "batch_sizes": batch_sizes,
            "capacity_plan": capacity_plan,
        }
