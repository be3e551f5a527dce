# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance mode of an HAProxy backend: two map files that the backend's maintenance rule reads.

While the backend's name is a key of the message map, HAProxy answers every request of that backend with a 503,
the message as the body and the retry map's value as Retry-After (docs/hooks-and-migrations.md shows the rule).
The runtime API changes the maps at once, without a reload; the files on disk keep the state across reloads.
"""

from __future__ import annotations

import os
import re
import tempfile

from ansible_collections.conveyor.deploy.plugins.module_utils._haproxy import HAProxyError

# What the maintenance rule needs: a line of text, no control characters.
MESSAGE_MAX = 500
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def message_problem(message):
    """Why ``message`` cannot be the maintenance page, or None."""
    if not message or not message.strip():
        return "maintenance_message is empty: say what the users should know, e.g. \"Back at 14:00 UTC\""
    if CONTROL.search(message):
        return "maintenance_message must be one line of text (no newline, tab or control character)"
    if len(message) > MESSAGE_MAX:
        return "maintenance_message is %d characters long; keep it under %d" % (len(message), MESSAGE_MAX)
    return None


def escape(text):
    """``text`` as one argument of the runtime API's command line (spaces, backslashes and ; escaped)."""
    return re.sub(r"([\\ ;])", r"\\\1", text)


def parse_map(text):
    """``{key: value}`` of a ``show map`` answer (``<ref> <key> <value>`` lines) or of a map file."""
    found = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(" ", 2) if line.startswith("0x") else [""] + line.split(" ", 1)
        if len(parts) >= 2:
            found[parts[1]] = parts[2] if len(parts) > 2 else ""
    return found


def read_runtime_map(api, path):
    """The map's entries as HAProxy holds them; HAProxyError when HAProxy loaded no such map."""
    answer = api.command("show map %s" % path)
    if "Unknown map identifier" in answer or "unknown map" in answer.lower():
        raise HAProxyError("HAProxy has no map %s: the backend has no maintenance rule yet. Add the rule that "
                           "docs/hooks-and-migrations.md (Maintenance mode) shows to the backend, create the empty "
                           "map files, and reload HAProxy." % path)
    return parse_map(answer)


def set_entry(api, path, key, value):
    """Make ``key`` map to ``value`` (None: no entry) in HAProxy's copy of the map."""
    current = read_runtime_map(api, path)
    if value is None:
        if key in current:
            _ok(api.command("del map %s %s" % (path, escape(key))), "remove %s from %s" % (key, path))
        return
    if current.get(key) == value:
        return
    verb = "set" if key in current else "add"
    _ok(api.command("%s map %s %s %s" % (verb, path, escape(key), escape(value))), "%s %s in %s" % (verb, key, path))


def _ok(answer, what):
    if answer.strip():
        raise HAProxyError("HAProxy refused to %s: %s" % (what, answer.strip()))


def write_map_file(path, key, value):
    """Keep ``key -> value`` (None: no entry) in the map file, atomically; whether the file changed."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        text = ""
    lines = [line for line in text.splitlines() if line.split(" ", 1)[0] != key]
    if value is not None:
        lines.append("%s %s" % (key, value))
    new = "\n".join(lines) + ("\n" if lines else "")
    if new == text:
        return False
    write_file(path, new, ".conveyor-map-")
    return True


def write_file(path, text, prefix):
    """Replace the file at ``path`` with ``text`` (mode 0644) in one rename: HAProxy, reading it at a reload, sees the
    old file or the new one, never half of one. Also the server-state file (conveyor.deploy.haproxy_state)."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
