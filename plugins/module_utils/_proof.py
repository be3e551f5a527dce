# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a health gate proves that the release it switched to is the one serving.

Private to the collection.  ``version_from`` chooses the proof:

* ``json``: a JMESPath query on the health JSON gives the version (today's default);
* ``header``: a response header of the health URL carries it (``X-App-Version``);
* ``body``: the body of the health URL, or of ``version_url``, names it (the version as a
  whole word, or the first group of ``version_regex``);
* ``process``: for apps that report no version: the unit's main process is active, started
  after the restart, and runs from the release's directory (its working directory, its
  executable or a path on its command line, read from ``/proc``);
* ``none``: the health status (and assertions) only; nothing proves which release answers.

The functions decide from what was read; reading (HTTP, systemctl, /proc) is the caller's.
"""

from __future__ import annotations

import os
import re

from ansible.module_utils.six.moves.urllib.parse import urlsplit

from ansible_collections.conveyor.deploy.plugins.module_utils._health import check_json, compile_assertions

KINDS = ("json", "header", "body", "process", "none")
# The rolling role's variable for each setting, named in messages an operator acts on.
VARIABLES = dict(version_from="app_health_version_from", version_header="app_health_version_header",
                 version_regex="app_health_version_regex", version_url="app_health_version_url")
PLAIN_TEXT_HINT = ("the health endpoint does not answer JSON; if it reports no version, set app_health_version_from: "
                   "process (and app_health_json: [] when the inventory sets JSON assertions), or header/body when it "
                   "names the version elsewhere")


def regex_problem(regex):
    """Why ``version_regex`` cannot be used (None when it can): it must compile and capture one group."""
    if not regex:
        return None
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        return "is not a regular expression: %s" % exc
    if compiled.groups < 1:
        return "has no group: put the version in parentheses, e.g. 'version (\\S+)'"
    return None


def version_pattern(version, regex=None):
    """The compiled pattern a body proof searches: ``regex`` as given, else the version as a whole word."""
    if regex:
        return re.compile(regex)
    return re.compile(r"(?<![\w.+-])%s(?![\w.+-])" % re.escape(version))


def _short(text, size=80):
    text = " ".join(str(text).split())
    return text if len(text) <= size else text[:size] + "..."


def header_problem(name, version, headers):
    """None when header ``name`` (case-insensitive) equals ``version``, else why not."""
    wanted = name.lower()
    values = [value for key, value in (headers or {}).items() if key.lower() == wanted]
    if not values:
        return ("answered without an %s header (set %s to the header your app sends, or %s: process when it "
                "reports no version)" % (name, VARIABLES["version_header"], VARIABLES["version_from"]))
    if values[0].strip() != version:
        return "header %s is %r, expected %r" % (name, _short(values[0]), version)
    return None


def body_problem(pattern, version, text, where="body"):
    """None when ``text`` names ``version`` through ``pattern`` (from version_pattern), else why not."""
    found = pattern.search(text or "")
    if found is None:
        if pattern.groups:
            return "%s does not match %s %r (%s: %s)" % (where, VARIABLES["version_regex"], pattern.pattern, where,
                                                         _short(text))
        return "%s does not name %s (%s: %s)" % (where, version, where, _short(text))
    if pattern.groups and found.group(1) != version:
        return "%s names version %r, expected %r" % (where, _short(found.group(1)), version)
    return None


def json_hint(problem):
    """A JSON failure on a plain-text body, explained: the operator's next step is a setting, not a fix."""
    if problem and problem.startswith("body is not valid JSON"):
        return "%s: %s" % (problem, PLAIN_TEXT_HINT)
    return problem


def _inside(path, directory):
    if not path or not directory:
        return False
    directory = directory.rstrip("/")
    return path == directory or path.startswith(directory + "/")


def process_problem(show, proc, restarted_at_us, release_dir, current_link):
    """None when the unit's main process proves it serves the release in ``release_dir``, else why not.

    ``show``: ``systemctl show`` properties (MainPID, ActiveState, SubState, ExecMainStartTimestampMonotonic,
    WorkingDirectory); ``proc``: the main process's ``cmdline`` (a list) and, when this host lets root read
    them (they need CAP_SYS_PTRACE, which containers often lack), its resolved ``cwd`` and ``exe``; None
    when nothing could be read; ``restarted_at_us``: CLOCK_MONOTONIC microseconds just before the restart;
    ``current_link``: the ``current`` path, which the unit's WorkingDirectory or command line names when it
    starts through it.

    A process started after the restart (so after the switch) whose working directory or executable lies
    in the release, or whose WorkingDirectory or command line goes through ``current`` or the release,
    loaded the release's code.
    """
    state = "%s (%s)" % (show.get("ActiveState") or "unknown", show.get("SubState") or "unknown")
    pid = show.get("MainPID") or "0"
    if show.get("ActiveState") != "active" or pid == "0":
        return "the service's main process is not running: it is %s" % state
    try:
        started = int(show.get("ExecMainStartTimestampMonotonic") or 0)
    except ValueError:
        started = 0
    if started < restarted_at_us:
        return ("the service's main process (pid %s) started before the restart: it still runs the code it "
                "loaded before the switch" % pid)
    if proc is None:
        return "cannot read /proc/%s of the service's main process" % pid
    cwd, exe = proc.get("cwd") or "", proc.get("exe") or ""
    releases = os.path.dirname(release_dir.rstrip("/"))
    if _inside(cwd, releases) and not _inside(cwd, release_dir):
        return "the service's main process (pid %s) runs from %s, not from %s" % (pid, cwd, release_dir)
    if _inside(cwd, release_dir) or _inside(exe, release_dir):
        return None
    through = [show.get("WorkingDirectory") or ""] + list(proc.get("cmdline") or [])
    for path in through:
        path = os.path.normpath(path) if path else ""
        if _inside(path, release_dir) or _inside(path, current_link):
            return None
    return ("the service's main process (pid %s) does not run from %s: its working directory is %s, its "
            "executable %s; start it from the release (WorkingDirectory=<app_root>/current, or a path under "
            "current in ExecStart)" % (pid, release_dir, cwd or show.get("WorkingDirectory") or "unknown",
                                       exe or "unknown"))


def lb_check(proof, lb_url, health_path):
    """What a smoke test through the load balancer at ``lb_url`` requests, and how it proves the version.

    ``proof`` holds version_from, version_query, version_header, version_regex and version_url as the
    gate's.  Returns ``(url, proof)``: the health path, or the version URL's path for a body proof that
    reads another URL, on the load balancer; the process proof cannot be made from outside a host, so
    through the load balancer it is the status alone (each host proved its process in its gate).
    """
    kind = proof.get("version_from") or "json"
    path = health_path or "/"
    if kind == "body" and proof.get("version_url"):
        parts = urlsplit(proof["version_url"])
        path = parts.path + ("?" + parts.query if parts.query else "")
    shown = dict((key, proof.get(key) or "") for key in ("version_query", "version_header", "version_regex"))
    shown["version_from"] = "none" if kind == "process" else kind
    return lb_url.rstrip("/") + path, shown


def answer_problem(proof, version, headers, text):
    """None when one answer proves ``version`` as ``proof`` (from lb_check) says, else why not."""
    kind = proof.get("version_from") or "json"
    if kind == "json" and proof.get("version_query"):
        return json_hint(check_json(text, compile_assertions([dict(query=proof["version_query"], equals=version)])))
    if kind == "header":
        return header_problem(proof.get("version_header") or "X-App-Version", version, headers)
    if kind == "body":
        return body_problem(version_pattern(version, proof.get("version_regex")), version, text)
    return None
