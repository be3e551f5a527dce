# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-host deploy lock: one JSON file created with O_EXCL under ``.conveyor/``."""

from __future__ import annotations

import binascii
import datetime
import json
import os
import re
import time

from ansible_collections.conveyor.deploy.plugins.module_utils._release import (
    ReleaseError, actor, append_history, isoformat, parse_time, utcnow,
)


def lock_expiry(lock):
    """When ``lock`` expires (a datetime), or None when it carries no usable time.

    That is its start plus its time to live, or its ``expires_at`` when later: a run that renews its locks
    through heartbeats (``renewed``) gives them a short time to live and, for readers that cannot see the
    heartbeats, an ``expires_at`` as late as the whole rollout may take. The controller, which reads the
    heartbeats, takes such a lock over as soon as its run has been silent for longer than its time to live.
    """
    started = parse_time(lock.get("started_at"))
    if started is None:
        return None
    try:
        ttl = int(lock.get("ttl", 0))
    except (TypeError, ValueError):
        return None
    expiry = started + datetime.timedelta(seconds=ttl)
    bound = parse_time(lock.get("expires_at")) if isinstance(lock.get("expires_at"), str) else None
    return max(expiry, bound) if bound is not None else expiry


def is_stale(lock, now):
    """A lock is stale once its TTL has passed; an unreadable lock counts as stale."""
    expiry = lock_expiry(lock)
    return expiry is None or now >= expiry


def expiry_text(lock):
    """When ``lock`` expires, for a message."""
    expiry = lock_expiry(lock)
    return isoformat(expiry) if expiry is not None else "an unknown time (unreadable lock)"


def describe(lock):
    paused = lock.get("paused")
    if isinstance(paused, dict):
        return ("paused run %s by %s (release %s, paused after batch %s of %s at %s; the pause holds until %s: promote "
                "it with playbooks/promote.yml or abort it with playbooks/abort.yml)" % (
                    lock.get("run_id"), lock.get("owner"), paused.get("release_id"), paused.get("after_batch"),
                    paused.get("batches"), paused.get("at"), expiry_text(lock)))
    return "run %s by %s (pid %s) since %s, ttl %ss%s" % (
        lock.get("run_id"), lock.get("owner"), lock.get("pid"), lock.get("started_at"), lock.get("ttl"),
        " renewed by its heartbeats" if lock.get("renewed") else "")


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
    """Create the lock file atomically with its whole content; False when another process got there first.

    The content is written to a private file first, then hard-linked to the lock's name, which fails
    when the name exists: a reader never sees an empty or half-written lock.
    """
    scratch = "%s.%d.%s.new" % (path, os.getpid(), binascii.hexlify(os.urandom(4)).decode("ascii"))
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(lock, handle, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(scratch, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(scratch)


def remove_lock(path, expected):
    """Compare and delete: remove the lock only while it is still ``expected``; True when it was removed.

    The lock is first renamed to a name of this process's own (one atomic step, so two breakers cannot
    both remove it), then compared; a lock that changed in between is put back.
    """
    aside = "%s.%d.%s.old" % (path, os.getpid(), binascii.hexlify(os.urandom(4)).decode("ascii"))
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    if read_lock(aside) == expected:
        os.unlink(aside)
        return True
    try:
        os.link(aside, path)
    except FileExistsError:
        pass
    os.unlink(aside)
    return False


def new_lock(run_id, owner, pid, ttl, now, controller=None, renewed=None, bound=0):
    """The content of a lock. ``renewed``: where the run's heartbeats renew it (``ttl`` is then the longest
    silence of a live run, and ``bound`` seconds the longest the whole run may hold it: its ``expires_at``)."""
    lock = {"run_id": run_id, "owner": owner, "pid": pid, "ttl": ttl, "started_at": isoformat(now),
            "expires_at": isoformat(now + datetime.timedelta(seconds=max(ttl, int(bound or 0) if renewed else 0)))}
    if controller:
        lock["controller"] = controller
    if renewed:
        lock["renewed"] = renewed
    return lock


def takeover_reason(held, params, now):
    """Why ``held`` may be taken over without force, or None.

    A lock past its time to live is taken over; so is the lock of the run that ``params["takeover"]``
    names (the controller found that run's process gone) with the controller's ``params["reason"]``.
    """
    if params.get("takeover") and held.get("run_id") == params["takeover"]:
        return params.get("reason") or "its holder is gone"
    if is_stale(held, now):
        return "it expired at %s" % expiry_text(held)
    return None


RUN_ID = re.compile(r"^(\d{8}T\d{6}Z)-")


def younger(held, run_id):
    """Whether ``held`` belongs to a run that started after ``run_id``.

    Run ids sort by start (``<UTC second>-<random>``, which also orders two runs of the same second). A lock
    whose run id has another form (written by hand or by another tool) is judged by its ``started_at``
    against this run's second, and is never younger when that cannot be read: a string comparison would
    make such a lock look younger, and a run wait for it before refusing.
    """
    theirs = str((held or {}).get("run_id") or "")
    if RUN_ID.match(theirs):
        return theirs > str(run_id)
    mine = RUN_ID.match(str(run_id))
    started = parse_time((held or {}).get("started_at"))
    if not mine or started is None:
        return False
    start = datetime.datetime.strptime(mine.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    return started > start + datetime.timedelta(seconds=1)


def acquire(layout, params, check_mode=False, clock=time.monotonic, sleep=time.sleep):
    """Take the lock for ``params["run_id"]``, waiting up to ``params["wait_younger"]`` seconds for a younger run.

    Two runs started together each lock some hosts first; each then finds a host locked by the
    other. The younger run gives up at once (and releases its locks as it aborts); the older one
    waits for those locks to go, so they never both abort. Raises ReleaseError naming the holder
    otherwise (see ``_acquire``).
    """
    deadline = clock() + float(params.get("wait_younger") or 0)
    while True:
        try:
            return _acquire(layout, params, check_mode)
        except ReleaseError as exc:
            held = exc.context.get("lock") or {}
            if check_mode or not younger(held, params["run_id"]) or clock() >= deadline:
                raise
            sleep(0.25)


def _acquire(layout, params, check_mode=False):
    """Take the lock for ``params["run_id"]`` (deploy_lock's options); raises ReleaseError naming the holder.

    A lock whose holder is gone (``takeover``) or whose time to live has passed is taken over, and
    the takeover recorded in the host's history; any other lock of another run is broken only with
    ``force`` and a reason (also recorded).
    """
    now = utcnow()
    held = read_lock(layout.lock)
    stale = held is not None and is_stale(held, now)
    if held is not None and held.get("run_id") == params["run_id"]:
        return dict(changed=False, lock=held, stale=False, msg="run %s already holds the lock" % params["run_id"])
    why = takeover_reason(held, params, now) if held is not None else None
    if held is not None and why is None and not params.get("force") and isinstance(held.get("paused"), dict):
        raise ReleaseError("Could not take the deploy lock on %s: held by %s." % (layout.root, describe(held)),
                           lock=held, stale=False)
    if held is not None and why is None and not params.get("force"):
        raise ReleaseError("Could not take the deploy lock on %s: held by %s. Wait for that run to finish; "
                           "if it died, the next run on the same controller takes the lock over, %sand any run "
                           "does once it expires at %s." % (
                               layout.root, describe(held), "any run once its heartbeats stop for its ttl, "
                               if held.get("renewed") else "", expiry_text(held)), lock=held, stale=False)
    lock = new_lock(params["run_id"], params["owner"] or actor(), params["pid"], params["ttl"], now,
                    params.get("controller"), params.get("renewed"), params.get("bound") or 0)
    verb = "taking over" if why else "breaking"
    if check_mode:
        return dict(changed=True, lock=lock, stale=stale, previous=held, took_over=why,
                    msg="would take the deploy lock for run %s%s" % (
                        params["run_id"], " (%s the lock of run %s: %s)" % (verb, held.get("run_id"), why or "stale")
                        if held is not None else ""))
    layout.ensure_dirs()
    if held is not None:
        if not remove_lock(layout.lock, held):
            raise ReleaseError("Could not take the deploy lock on %s: it changed while it was being taken over (%s)."
                               % (layout.root, describe(read_lock(layout.lock) or {})))
        append_history(layout, "lock_takeover" if why else "lock_break", result="taken over" if why else "forced",
                       reason=why or params["reason"], broken=held, run_id=params["run_id"])
    if not create_lock(layout.lock, lock):
        raise ReleaseError("Could not take the deploy lock on %s: another run took it a moment ago (%s)."
                           % (layout.root, describe(read_lock(layout.lock) or {})), lock=read_lock(layout.lock) or {},
                           stale=False)
    said = ""
    if held is not None:
        said = " after %s the lock of run %s (%s)" % ("taking over" if why else "breaking", held.get("run_id"),
                                                      why or params["reason"])
    return dict(changed=True, lock=lock, stale=stale, previous=held, took_over=why,
                msg="took the deploy lock for run %s%s" % (params["run_id"], said))


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
        if not remove_lock(layout.lock, held):
            return dict(changed=False, lock=read_lock(layout.lock), stale=stale,
                        msg="the deploy lock changed while it was being released; left it alone")
        if held.get("run_id") != params["run_id"]:
            append_history(layout, "lock_force_release", result="forced", reason=params["reason"], broken=held,
                           run_id=params["run_id"])
        if os.path.exists(state_path(layout)):
            # What a paused run left for its promote or abort: that run is over now.
            os.unlink(state_path(layout))
    return dict(changed=True, lock=None, stale=stale, previous=held,
                msg="%s the deploy lock of run %s" % ("would release" if check_mode else "released", held.get("run_id")))


def _replace_own(layout, held, lock):
    """Swap this run's own lock ``held`` for ``lock``: removed while still ``held``, then created; False when another
    process changed it in between (nothing is then written)."""
    if not remove_lock(layout.lock, held):
        return False
    return create_lock(layout.lock, lock)


def state_path(layout):
    """Where a paused run keeps its state on the host (next to its lock; root only)."""
    return os.path.join(os.path.dirname(layout.lock), "paused-run.json")


def _write_private(path, data):
    scratch = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(scratch, path)


def pause(layout, run_id, ttl, state, check_mode=False):
    """Keep the lock of run ``run_id`` while the run is paused (rolling_pause_after), for ``ttl`` seconds.

    The lock then names no process and no heartbeat: nobody can prove a paused run dead, so it holds until it is
    promoted or aborted (playbooks/promote.yml, abort.yml), or until it expires. The run's state (``state``: its run
    object and batch records), which promote and abort continue from, goes to a file of its own that only root reads
    (it names the run's hooks); the lock says what is paused, for the checklist and verify.yml.
    """
    held = read_lock(layout.lock)
    if not held or held.get("run_id") != run_id:
        raise ReleaseError("Could not pause run %s on %s: %s." % (
            run_id, layout.root, "it holds no deploy lock there" if not held else "the lock is " + describe(held)))
    now = utcnow()
    info = dict((key, state.get(key)) for key in ("release_id", "version", "after_batch", "batches", "canary"))
    info["at"] = state.get("at") or isoformat(now)
    lock = {"run_id": run_id, "owner": held.get("owner"), "pid": None, "ttl": int(ttl), "started_at": isoformat(now),
            "expires_at": isoformat(now + datetime.timedelta(seconds=int(ttl))), "paused": info}
    if check_mode:
        return dict(changed=True, lock=lock, msg="would keep the deploy lock of run %s while it is paused" % run_id)
    _write_private(state_path(layout), dict(state, run_id=run_id))
    if not _replace_own(layout, held, lock):
        raise ReleaseError("Could not pause run %s on %s: its lock changed meanwhile (%s)."
                           % (run_id, layout.root, describe(read_lock(layout.lock) or {})))
    append_history(layout, "paused", release_id=info["release_id"], version=info["version"], run_id=run_id,
                   after_batch=info["after_batch"], until=lock["expires_at"])
    return dict(changed=True, lock=lock, msg="the deploy lock of run %s holds while it is paused, until %s"
                % (run_id, lock["expires_at"]))


def read_state(layout, run_id):
    """The state paused run ``run_id`` left on the host, or raises ReleaseError saying why it cannot be read."""
    path = state_path(layout)
    try:
        with open(path, "r") as handle:
            state = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ReleaseError("Could not read the state of paused run %s (%s): %s." % (run_id, path, exc))
    if not isinstance(state, dict) or state.get("run_id") != run_id:
        raise ReleaseError("The state in %s is not that of paused run %s." % (path, run_id))
    return state


def resume(layout, wanted, params, check_mode=False):
    """Take back the lock of a paused run for the process that promotes or aborts it.

    ``wanted``: the run id asked for ("" takes whichever paused run holds the host). ``params``: the new holder
    (deploy_lock's owner, pid, controller, ttl, renewed, bound). Returns ``paused`` (what the lock says) and
    ``state`` (the run's state), both None when no paused run holds the host; raises ReleaseError when the paused
    run is not the one asked for, or its state cannot be read.
    """
    held = read_lock(layout.lock)
    if not held or not isinstance(held.get("paused"), dict):
        return dict(changed=False, paused=None, state=None,
                    msg="no paused run holds the host" + ("; %s holds its lock" % describe(held) if held else ""))
    if wanted and held.get("run_id") != wanted:
        raise ReleaseError("The deploy lock on %s is held by %s, not by run %s." % (layout.root, describe(held), wanted),
                           lock=held, stale=False)
    if is_stale(held, utcnow()):
        raise ReleaseError("The pause of run %s on %s expired at %s: its lock is an expired lock now, which the next "
                           "deploy takes over. Deploy again." % (held["run_id"], layout.root, expiry_text(held)),
                           lock=held, stale=True)
    state = read_state(layout, held["run_id"])
    # Readers that cannot see the heartbeats judge the lock by the bound the paused run planned.
    bound = params.get("bound") or int(((state.get("run") or {}).get("lock") or {}).get("bound_s") or 0)
    lock = new_lock(held["run_id"], params.get("owner") or held.get("owner"), params.get("pid"), params["ttl"],
                    utcnow(), params.get("controller"), params.get("renewed"), bound)
    lock["resumed"] = dict(held["paused"])
    answer = dict(changed=True, lock=lock, paused=dict(held["paused"], run_id=held["run_id"]), state=state)
    if check_mode:
        return dict(answer, msg="would take back the deploy lock of paused run %s" % held["run_id"])
    if not _replace_own(layout, held, lock):
        raise ReleaseError("Could not take back the lock of paused run %s on %s: it changed meanwhile (%s)."
                           % (held["run_id"], layout.root, describe(read_lock(layout.lock) or {})))
    append_history(layout, "resumed", release_id=held["paused"].get("release_id"), run_id=held["run_id"],
                   by_pid=params.get("pid"))
    return dict(answer, msg="took back the deploy lock of paused run %s" % held["run_id"])
