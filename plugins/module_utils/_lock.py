# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-host deploy lock: one JSON file created with O_EXCL under ``.conveyor/``."""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.conveyor.deploy.plugins.module_utils._release import isoformat, parse_time


def lock_expiry(lock):
    """When ``lock`` expires (a datetime), or None when it carries no usable time."""
    started = parse_time(lock.get("started_at"))
    if started is None:
        return None
    try:
        ttl = int(lock.get("ttl", 0))
    except (TypeError, ValueError):
        return None
    return started + datetime.timedelta(seconds=ttl)


def is_stale(lock, now):
    """A lock is stale once its TTL has passed; an unreadable lock counts as stale."""
    expiry = lock_expiry(lock)
    return expiry is None or now >= expiry


def describe(lock):
    return "run %s by %s (pid %s) since %s, ttl %ss" % (
        lock.get("run_id"), lock.get("owner"), lock.get("pid"), lock.get("started_at"), lock.get("ttl"))


def read_lock(path):
    """The lock's content; ``{}`` for an unreadable file; None when there is no lock."""
    try:
        with open(path, "r") as handle:
            data = json.load(handle)
            return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def create_lock(path, lock):
    """Create the lock file exclusively; False when another process got there first."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(lock, handle, sort_keys=True)
        handle.write("\n")
    return True


def new_lock(run_id, owner, pid, ttl, now):
    return {"run_id": run_id, "owner": owner, "pid": pid, "ttl": ttl,
            "started_at": isoformat(now), "expires_at": isoformat(now + datetime.timedelta(seconds=ttl))}
