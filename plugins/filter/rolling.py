# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that plan a rolling deployment before any host is touched."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.conveyor.deploy.plugins.module_utils._haproxy import required_serving


def _batch_size(item, total, name):
    """Size of one batch, the way Ansible's ``serial`` computes it, after strict validation."""
    text = str(item).strip()
    if isinstance(item, bool):
        raise AnsibleFilterError("%s: %r is not a batch size; use a number of hosts or a percentage like '25%%'." % (name, item))
    if text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            raise AnsibleFilterError("%s: %r is not a percentage; use a whole number followed by %%, like '25%%'." % (name, item))
        if not 0 < pct <= 100:
            raise AnsibleFilterError("%s: %r is outside 1%%-100%%; use a percentage from 1%% to 100%%." % (name, item))
        return int(pct / 100.0 * total) or 1
    try:
        size = int(text)
    except ValueError:
        raise AnsibleFilterError("%s: %r is not a batch size; use a number of hosts or a percentage like '25%%'." % (name, item))
    if size < 1:
        raise AnsibleFilterError("%s: %r is not allowed; a batch needs at least 1 host (serial 0 would mean all at once)."
                                 % (name, item))
    return size


def batch_sizes(batches, total, name="rolling_batches"):
    """The sizes of the batches ``serial: <batches>`` makes of ``total`` hosts (the last entry repeats)."""
    if not isinstance(batches, (list, tuple)):
        batches = [batches]
    if not batches:
        raise AnsibleFilterError("%s is empty; give at least one batch size, e.g. [1, '25%%', '100%%']." % name)
    total = int(total)
    sizes = []
    left = total
    index = 0
    while left > 0:
        size = min(_batch_size(batches[min(index, len(batches) - 1)], total, name), left)
        sizes.append(size)
        left -= size
        index += 1
    if total == 0:
        for item in batches:
            _batch_size(item, 1, name)
    return sizes


def capacity_plan(batches, total, min_healthy_percent, fleet=None, name="rolling_batches"):
    """Check every batch against the minimum healthy capacity, assuming a healthy fleet.

    ``total`` hosts are deployed in batches; ``fleet`` (default ``total``) is how many
    backends the load balancer has, so a run limited to some hosts counts the others
    as serving.  Returns ``{sizes, required_serving, problems}``; problems name the batch.
    """
    sizes = batch_sizes(batches, total, name)
    fleet = max(int(fleet if fleet is not None else total), int(total))
    needed = required_serving(fleet, float(min_healthy_percent))
    problems = []
    for number, size in enumerate(sizes, start=1):
        if fleet - size < needed:
            problems.append("batch %d drains %d of %d hosts, leaving %d serving, below the minimum of %d (%s%%)"
                            % (number, size, fleet, fleet - size, needed, min_healthy_percent))
    return dict(sizes=sizes, required_serving=needed, problems=problems)


class FilterModule(object):
    def filters(self):
        return {
            "batch_sizes": batch_sizes,
            "capacity_plan": capacity_plan,
        }
