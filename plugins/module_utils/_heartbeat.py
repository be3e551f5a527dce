# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run's heartbeat on the load-balancer host: one small file per run, rewritten by every call the run makes there.

A run calls the load balancer when it plans and at every batch (drain, re-enable), so the time of its last
call says whether it still works. Its locks on the app hosts carry a short time to live that these beats
renew: another run reads the beats when it plans and takes over the locks of a run that fell silent for
longer than that. One directory per backend (per application); the times are the load balancer's own clock,
so that a beat is only ever compared with that clock.
"""

from __future__ import annotations

import datetime
import json
import os
import re

from ansible_collections.conveyor.deploy.plugins.module_utils._release import isoformat, parse_time, utcnow

DEFAULT_DIR = "/var/lib/conveyor/heartbeats"
# Beats of runs that ended long ago are removed when a run beats.
KEEP = datetime.timedelta(days=7)
UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def file_name(name):
    """``name`` as one path component: no separator, no dot-only name."""
    safe = UNSAFE.sub("_", str(name)) or "_"
    return "_" + safe if safe.strip(".") == "" else safe


def directory(base, backend):
    """The beats of ``backend``'s runs."""
    return os.path.join(base or DEFAULT_DIR, file_name(backend))


def beat(path, run_id, now=None):
    """Record that ``run_id`` is alive now (atomically: a reader sees the old beat or the new one); the time."""
    now = now or utcnow()
    os.makedirs(path, mode=0o755, exist_ok=True)
    target = os.path.join(path, file_name(run_id))
    scratch = "%s.%d.tmp" % (target, os.getpid())
    with open(scratch, "w") as handle:
        json.dump({"run_id": run_id, "at": isoformat(now)}, handle)
        handle.write("\n")
    os.rename(scratch, target)
    prune(path, now)
    return isoformat(now)


def prune(path, now):
    """Remove the beats (and leftover scratch files) older than KEEP."""
    for name in os.listdir(path):
        full = os.path.join(path, name)
        try:
            if now.timestamp() - os.stat(full).st_mtime > KEEP.total_seconds():
                os.unlink(full)
        except OSError:
            pass


def read(path):
    """``{run_id: time of its last beat}`` of every run that beat in ``path``; unreadable files are skipped."""
    beats = {}
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return beats
    for name in names:
        if name.endswith(".tmp"):
            continue
        try:
            with open(os.path.join(path, name)) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("run_id") and parse_time(data.get("at")) is not None:
            beats[str(data["run_id"])] = data["at"]
    return beats


def silent_for(heartbeat, run_id):
    """Seconds run ``run_id`` had been silent when ``heartbeat`` (the run object's view) was read; None if unknown.

    ``heartbeat`` is ``{"read_at": <the load balancer's time>, "beats": {run_id: time}}``.
    """
    heartbeat = heartbeat or {}
    last = parse_time((heartbeat.get("beats") or {}).get(str(run_id)))
    read_at = parse_time(heartbeat.get("read_at"))
    if last is None or read_at is None:
        return None
    return max((read_at - last).total_seconds(), 0.0)
