# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who holds a deploy lock, as the controller sees it: this run's identity, and whether a holder is dead.

A lock records the controller that took it (host name, kernel boot id, the ansible-playbook
process id and that process's start time). A later run on the same controller (same host name,
same boot) can prove the holder dead: its process is gone, or the process id now belongs to a
process that started at another time. A run on any controller is also dead once its heartbeats on the
load balancer stopped for longer than its lock's time to live (module_utils/_heartbeat.py). Nothing else
is proof: any other holder is dead only once its lock expires.
"""

from __future__ import annotations

import errno
import os
import socket

from ansible_collections.conveyor.deploy.plugins.module_utils import _heartbeat

PROC = "/proc"


def _read(path):
    try:
        with open(path, "r") as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def process_start(pid, proc=PROC):
    """The start time of ``pid`` (clock ticks since boot, as /proc says), or "" when unknown or gone."""
    text = _read(os.path.join(proc, str(pid), "stat"))
    # The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    fields = text.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def identity(pid=None, proc=PROC, hostname=None):
    """This run's controller, for the lock: ``{host, boot_id, pid, pid_start}``.

    ``pid`` is the ansible-playbook process; an action plugin runs in a worker forked from it,
    so the default is the worker's parent.
    """
    pid = os.getppid() if pid is None else pid
    return {"host": hostname or socket.gethostname(), "boot_id": _read(os.path.join(proc, "sys/kernel/random/boot_id")),
            "pid": pid, "pid_start": process_start(pid, proc)}


def run_processes(run_id, proc=PROC, environ_name="CONVEYOR_RUN_ID"):
    """The processes of this controller that belong to run ``run_id`` (its ansible-playbook and workers).

    Every process of a run inherits the run id in its environment. A worker (Ansible starts each in a
    session of its own) outlives a SIGKILL of its playbook's process group and finishes the task it
    runs, so a run is dead only when none is left. Processes of other users cannot be read: they are
    not this run's.
    """
    wanted = ("%s=%s" % (environ_name, run_id)).encode("utf-8")
    found = []
    try:
        names = os.listdir(proc)
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "environ"), "rb") as handle:
                if wanted in handle.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return sorted(found)


# What a run's process runs while it still works on a host: the SSH client of a module execution (not
# a ControlPersist master, whose name is "ssh: <path> [mux]"), or a module run by a local connection.
_WORKING = ("ssh", "sshpass", "scp", "sftp")


def working(run_id, proc=PROC):
    """The processes of run ``run_id`` that still work on a host, from their command lines.

    A worker whose playbook was killed finishes its task, then blocks for ever writing the result
    to a pipe nobody reads: that one does nothing, so it does not keep the run alive.
    """
    found = []
    for pid in run_processes(run_id, proc):
        try:
            with open(os.path.join(proc, str(pid), "cmdline"), "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        program = os.path.basename(argv[0].decode("utf-8", "replace")) if argv else ""
        if program in _WORKING or any(b"AnsiballZ_" in arg for arg in argv):
            found.append(pid)
    return found


def orphaned(holder):
    """Whether this process is a worker whose ansible-playbook process ``holder`` has gone (it was killed)."""
    try:
        return os.getppid() != int(holder.get("pid"))
    except (TypeError, ValueError):
        return False


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def silent_reason(lock, heartbeat):
    """Why the run holding ``lock`` is dead by its heartbeats, or None.

    Only a lock its run renews through heartbeats (``renewed``) is judged so: its run beats on the load
    balancer at every batch, and a live run is never silent for longer than the lock's time to live.
    ``heartbeat`` is the run object's view of the beats (``read_at``, ``beats``: _heartbeat.silent_for).
    """
    if not (lock or {}).get("renewed"):
        return None
    try:
        ttl = int(lock.get("ttl"))
    except (TypeError, ValueError):
        return None
    silent = _heartbeat.silent_for(heartbeat, lock.get("run_id"))
    if silent is None or silent < ttl:
        return None
    return "it has not renewed its lock for %d s, longer than its ttl of %d s (its last heartbeat on the load " \
        "balancer was at %s)" % (silent, ttl, heartbeat["beats"][str(lock.get("run_id"))])


def dead_reason(lock, me, proc=PROC, alive=_alive, heartbeat=None):
    """Why the holder of ``lock`` is provably dead, as seen from controller ``me``; None when it may live.

    Dead: its ansible-playbook process on this controller is gone, or its heartbeats stopped (``heartbeat``:
    ``silent_reason``).
    """
    silent = silent_reason(lock, heartbeat)
    if silent:
        return silent
    holder = (lock or {}).get("controller")
    if not isinstance(holder, dict) or not holder.get("host") or holder.get("host") != me.get("host"):
        return None
    if holder.get("boot_id") != me.get("boot_id"):
        # Another boot of this host (pids were reused), or a controller that cannot tell its boots apart.
        return None
    try:
        pid = int(holder.get("pid"))
    except (TypeError, ValueError):
        return None
    if pid == me.get("pid"):
        return None
    where = "controller %s" % holder["host"]
    if holder.get("boot_id") and holder.get("pid_start"):
        now = process_start(pid, proc)
        if now == str(holder["pid_start"]):
            return None
        why = "its ansible-playbook process %d on %s is gone%s" % (
            pid, where, " (that pid is another process now)" if now else "")
    elif alive(pid):
        return None
    else:
        why = "its ansible-playbook process %d on %s is gone" % (pid, where)
    if lock.get("run_id") and working(lock["run_id"], proc):
        # Its workers still finish what they were doing on the hosts.
        return None
    return why
