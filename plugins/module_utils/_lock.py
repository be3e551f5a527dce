# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-host deploy lock: one JSON file created with O_EXCL under ``.conveyor/``."""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.conveyor.deploy.plugins.module_utils._release import (
    ReleaseError, actor, append_history, isoformat, parse_time, utcnow,
)


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


def acquire(layout, params, check_mode=False):
    """Take the lock for ``params["run_id"]`` (deploy_lock's options); raises ReleaseError naming the holder."""
    now = utcnow()
    held = read_lock(layout.lock)
    stale = held is not None and is_stale(held, now)
    if held is not None and held.get("run_id") == params["run_id"]:
        return dict(changed=False, lock=held, stale=False, msg="run %s already holds the lock" % params["run_id"])
    if held is not None and not stale:
        raise ReleaseError("Could not take the deploy lock on %s: held by %s. Wait for that run to finish; "
                           "if it died, the lock becomes stale at %s and can then be broken with force and a reason."
                           % (layout.root, describe(held), held.get("expires_at")), lock=held, stale=False)
    if held is not None and not params["force"]:
        raise ReleaseError("Could not take the deploy lock on %s: a stale lock is in the way (%s, expired %s). "
                           "Check that run is really gone, then rerun with force=true and a reason."
                           % (layout.root, describe(held), held.get("expires_at")), lock=held, stale=True)
    lock = new_lock(params["run_id"], params["owner"] or actor(), params["pid"], params["ttl"], now)
    if check_mode:
        return dict(changed=True, lock=lock, stale=stale, previous=held,
                    msg="would take the deploy lock for run %s%s" % (params["run_id"], " (breaking a stale lock)" if held else ""))
    layout.ensure_dirs()
    if held is not None:
        os.unlink(layout.lock)
        append_history(layout, "lock_break", result="forced", reason=params["reason"], broken=held,
                       run_id=params["run_id"])
    if not create_lock(layout.lock, lock):
        raise ReleaseError("Could not take the deploy lock on %s: another run took it a moment ago (%s)."
                           % (layout.root, describe(read_lock(layout.lock) or {})))
    return dict(changed=True, lock=lock, stale=stale, previous=held,
                msg="took the deploy lock for run %s%s" % (params["run_id"], " after breaking a stale lock" if held else ""))


def release(layout, params, check_mode=False):
    """Release the lock of ``params["run_id"]``, or another's with force; raises ReleaseError otherwise."""
    held = read_lock(layout.lock)
    if held is None:
        return dict(changed=False, lock=None, stale=False, msg="no deploy lock held")
    stale = is_stale(held, utcnow())
    if held.get("run_id") != params["run_id"] and not params["force"]:
        raise ReleaseError("Could not release the deploy lock on %s: it belongs to %s, not run %s. "
                           "Use force=true and a reason to remove it anyway." % (layout.root, describe(held), params["run_id"]),
                           lock=held, stale=stale)
    if not check_mode:
        os.unlink(layout.lock)
        if held.get("run_id") != params["run_id"]:
            append_history(layout, "lock_force_release", result="forced", reason=params["reason"], broken=held,
                           run_id=params["run_id"])
    return dict(changed=True, lock=None, stale=stale, previous=held,
                msg="%s the deploy lock of run %s" % ("would release" if check_mode else "released", held.get("run_id")))
