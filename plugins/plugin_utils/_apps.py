# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which application a run acts on: an inventory group, chosen with app_hosts (docs/several-apps.md)."""

from __future__ import annotations

# Groups every inventory has, and the load balancers': none of them is an application.
NOT_APPS = ("all", "ungrouped", "lb")


class AppError(Exception):
    pass


def app_hosts(group, groups):
    """``group`` (None: ``app``) when it is a group of the inventory with hosts; a group named on purpose that is
    missing or empty is refused naming the groups there are. A play given the group's name keeps Ansible's own host
    order, --limit and serial. Without a name, an inventory without ``app`` matches no host, as ``hosts: app`` did
    (``--syntax-check -i localhost,`` still works)."""
    if group is None or not str(group).strip():
        return "app"
    group = str(group).strip()
    hosts = groups.get(group)
    if hosts:
        return group
    known = sorted(name for name, members in groups.items() if members and name not in NOT_APPS)
    if hosts is None:
        raise AppError("app_hosts is %r, which is not a group of this inventory: pass -e app_hosts=<the group of the "
                       "app's hosts> (groups with hosts: %s)." % (group, ", ".join(known) or "none"))
    raise AppError("The group %r (app_hosts) has no hosts in this inventory: nothing to act on. Groups with hosts: "
                   "%s." % (group, ", ".join(known) or "none"))
