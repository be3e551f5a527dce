# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run's inputs, checked on the controller before any host changes.

Every check returns sentences that name the variable an operator sets and say the fix. They are collected, not
raised one by one, so that one refusal lists every problem. Values that may hold credentials are never repeated.
"""

from __future__ import annotations

import re

from ansible.module_utils.six.moves.urllib.parse import urlsplit, urlunsplit

from ansible_collections.conveyor.deploy.plugins.module_utils._maintenance import message_problem
from ansible_collections.conveyor.deploy.plugins.module_utils._proof import KINDS, regex_problem
from ansible_collections.conveyor.deploy.plugins.module_utils._release import app_root_problem

try:
    import jmespath
    HAS_JMESPATH = True
except ImportError:  # pragma: no cover - jmespath is a dependency of the collection
    HAS_JMESPATH = False

VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]*")
MAX_VERSION = 64
SHA256 = re.compile(r"(sha256:)?[0-9a-f]{64}", re.IGNORECASE)
PERCENT = re.compile(r"[0-9]+%")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What HAProxy accepts in a proxy or server name; the runtime API splits commands on ';' and words on spaces.
LB_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


def shown(value, size=80):
    """``value`` for a message: repr-quoted (a newline shows as \\n) and cut to ``size`` characters."""
    text = repr(str(value))
    return text if len(text) <= size + 2 else text[:size] + "...'"


def without_credentials(url):
    """``url`` with any user and password replaced by '***'."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, "***@" + parts.netloc.rsplit("@", 1)[1], parts.path, parts.query,
                       parts.fragment))


def version_problems(version, type_name=""):
    if type_name in ("float", "int"):
        return ["app_version %s was read as a number (YAML %s), which can change it (1.10 becomes 1.1): quote it, "
                "e.g. -e '{\"app_version\": \"1.10\"}' or app_version: \"1.10\"" % (version, type_name)]
    text = str(version if version is not None else "")
    if not VERSION.fullmatch(text):
        return ["app_version (rolling_version) is %s: pass the version to deploy, starting with a letter or digit, "
                "then letters, digits and '.', '+', '_', '-' only, e.g. -e app_version=2.0.0" % shown(text)]
    if len(text) > MAX_VERSION:
        return ["app_version is %d characters long: keep it to %d at most" % (len(text), MAX_VERSION)]
    return []


def app_root_problems(app_root):
    problem = app_root_problem(app_root)
    return ["app_root is %s: it %s; use a directory of the application's own, such as /opt/myapp"
            % (shown(app_root), problem)] if problem else []


def shared_path_problems(paths):
    found = []
    if not isinstance(paths, (list, tuple)):
        return ["app_shared_paths (rolling_shared_paths) must be a list of relative paths, e.g. [logs, uploads]"]
    for path in paths:
        text = str(path)
        parts = [part for part in text.split("/") if part not in ("", ".")]
        if not parts or text.startswith("/") or ".." in parts or CONTROL.search(text):
            found.append("app_shared_paths entry %s: give a path relative to the release, without '..', such as "
                         "logs or var/uploads" % shown(text))
    return found


def artifact_problems(url, sha256, production, allow_unverified):
    found = []
    text = str(url or "")
    parts = urlsplit(text)
    safe = shown(without_credentials(text))
    if parts.scheme not in ("http", "https") and not (not parts.scheme and text.startswith("/")):
        found.append("app_artifact_url is %s: it must be an http(s) URL or an absolute path on the hosts" % safe)
    elif parts.scheme and not parts.hostname:
        found.append("app_artifact_url is %s: it names no host" % safe)
    if parts.username is not None or parts.password is not None:
        found.append("app_artifact_url carries credentials (%s): they would be printed and stored with the "
                     "release; remove them from the URL and give the server's credentials another way "
                     "(a netrc file on the hosts, or a URL the hosts may read)" % safe)
    if production and parts.scheme == "http" and not str(sha256 or "").strip():
        # Over plain http the artifact and its .sha256 could be replaced on the way; a pinned checksum cannot.
        found.append("app_artifact_url is plain http in production (%s) and its checksum would come over the same "
                     "connection: serve artifacts over https, or pin the checksum with app_artifact_sha256" % safe)
    if CONTROL.search(text):
        found.append("app_artifact_url contains a control character (a newline?): %s" % safe)
    sha = str(sha256 or "").strip()
    if sha and not SHA256.fullmatch(sha):
        found.append("app_artifact_sha256 must be 64 hex digits (optionally 'sha256:' first), not %d characters"
                     % len(sha))
    if production and allow_unverified:
        found.append("rolling_allow_unverified is refused in production: publish a checksum")
    return found


def approval_url_problems(url):
    """approval_url must be https (its token would cross the network in clear) and carry no user or password."""
    text = str(url or "")
    parts = urlsplit(text)
    safe = shown(without_credentials(text).split("?")[0])
    found = []
    if parts.scheme != "https" or not parts.hostname:
        found.append("approval_url is %s: it must be an https:// URL (the approvals token is sent with the request); "
                     "for a private CA give approval_url_ca_path" % safe)
    if parts.username is not None or parts.password is not None:
        found.append("approval_url carries credentials (%s): remove them and give the token in approval_url_token "
                     "(vault it)" % safe)
    if CONTROL.search(text):
        found.append("approval_url contains a control character (a newline?)")
    return found


def lb_name_problems(backend, servers, prefix="rolling"):
    """The backend's and each host's server name must be names HAProxy's runtime API reads as one word.

    ``servers``: {host: server name}. A ';' or a space would end the command or start another one.
    """
    found = []
    if not LB_NAME.fullmatch(str(backend or "")):
        found.append("app_lb_backend (%s_lb_backend) is %s: a backend name is letters, digits and . _ : - only, as "
                     "in haproxy.cfg" % (prefix, shown(backend)))
    bad = sorted(host for host, name in (servers or {}).items() if not LB_NAME.fullmatch(str(name or "")))
    if bad:
        found.append("app_lb_server of %s is %s: a server name is letters, digits and . _ : - only, as in haproxy.cfg"
                     % (", ".join(bad[:5]) + (" and %d more" % (len(bad) - 5) if len(bad) > 5 else ""),
                        shown(servers[bad[0]])))
    return found


def batch_problems(batches, min_healthy_percent, name="rolling_batches"):
    found = []
    items = batches if isinstance(batches, (list, tuple)) else [batches]
    for item in items:
        if isinstance(item, str) and item.strip().endswith("%") and not PERCENT.fullmatch(item.strip()):
            found.append("%s entry %s: a percentage must be a whole number from 1%% to 100%%, such as '25%%'"
                         % (name, shown(item)))
    prefix = name.split("_")[0]
    try:
        percent = float(min_healthy_percent)
    except (TypeError, ValueError):
        percent = None
    if percent is None or not 0 <= percent <= 100:
        found.append("%s_min_healthy_percent is %s: give a percentage from 0 to 100" % (prefix, min_healthy_percent))
    return found


def health_problems(health):
    """The health gate's settings: refused before the first switch, never blamed on a release."""
    found = []
    url = str(health.get("url") or "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        found.append("rolling_health_url is %s: it must be an http(s) URL (check app_port and app_health_path)"
                     % shown(url))
    else:
        try:
            parts.port
        except ValueError:
            found.append("rolling_health_url is %s: its port is not a number (check app_port, and that "
                         "app_health_path starts with '/')" % shown(url))
        if not (parts.path or "").startswith("/"):
            found.append("rolling_health_url is %s: app_health_path must start with '/', e.g. /health" % shown(url))
    for key, least in (("success_threshold", 1), ("failure_threshold", 1), ("timeout", None),
                       ("interval", 0), ("start_period", 0)):
        if key not in health:
            continue
        try:
            value = float(health[key])
        except (TypeError, ValueError):
            found.append("rolling_health_%s is %s: give a number" % (key, shown(health[key])))
            continue
        if (least is None and value <= 0) or (least is not None and value < least):
            wanted = "more than 0" if least is None else "at least %s" % least
            found.append("rolling_health_%s is %s: it must be %s" % (key, health[key], wanted))
    query = health.get("version_query")
    if query and HAS_JMESPATH:
        try:
            jmespath.compile(str(query))
        except Exception as exc:  # jmespath raises several ParseError flavours
            found.append("rolling_health_version_query (app_health_version_query) %s is not a JMESPath "
                         "expression: %s" % (shown(query), str(exc).splitlines()[0]))
    return found + proof_problems(health)


def proof_problems(health):
    """How the gate proves the new release answers (version_from and its settings), as _proof reads them."""
    kind = str(health.get("version_from") or "json")
    if kind not in KINDS:
        return ["rolling_health_version_from (app_health_version_from) is %s: choose one of %s (process for an app "
                "whose health endpoint reports no version)" % (shown(kind), ", ".join(KINDS))]
    found = []
    strategy = str(health.get("restart_strategy") or "restart")
    if strategy not in ("restart", "reload", "none"):
        found.append("rolling_restart_strategy (app_restart_strategy) is %s: choose restart, reload or none"
                     % shown(strategy))
    elif kind == "process" and strategy != "restart":
        found.append("rolling_health_version_from (app_health_version_from) is process but rolling_restart_strategy "
                     "(app_restart_strategy) is %s: the process proof needs a restart (a new main process); use "
                     "restart, or a proof the app answers (json, header, body)" % strategy)
    if kind == "header" and not str(health.get("version_header", "X-App-Version") or "").strip():
        found.append("rolling_health_version_header (app_health_version_header) is empty: name the header that carries "
                     "the version, e.g. X-App-Version")
    problem = regex_problem(str(health.get("version_regex") or ""))
    if problem:
        found.append("rolling_health_version_regex (app_health_version_regex) %s %s"
                     % (shown(health["version_regex"]), problem))
    url = str(health.get("version_url") or "")
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
        found.append("rolling_health_version_url (app_health_version_url) is %s: it must be an http(s) URL, e.g. "
                     "http://127.0.0.1:8000/version" % shown(url))
    return found


def rollout_bounds(batches, drain_timeout, gate_timeout, bake_seconds, up_timeout=0):
    """(one batch, the whole rollout): the longest each may take in seconds, by the settings' timeouts.

    A batch drains, switches and gates each host (a failed gate switches back and gates the previous release:
    two gates), re-enables and bakes.
    """
    batch = float(drain_timeout) + 2 * float(gate_timeout) + float(up_timeout) + float(bake_seconds)
    return int(batch), int(batches * batch)


def lock_problems(ttl, batches, drain_timeout, gate_timeout, bake_seconds, up_timeout=0, renewed=False):
    """A lock must outlive the longest silence of its run, or another run could take a host mid-run.

    ``renewed``: the run's load-balancer calls renew its locks at every batch (module_utils/_heartbeat.py),
    so the time to live must cover one batch; otherwise it must cover the whole rollout.
    """
    try:
        ttl = int(ttl)
    except (TypeError, ValueError):
        return ["rolling_lock_ttl is %s: give seconds" % shown(ttl)]
    if ttl < 1:
        return ["rolling_lock_ttl is %d: give the lock's time to live in seconds" % ttl]
    if not batches:
        return []
    batch, whole = rollout_bounds(batches, drain_timeout, gate_timeout, bake_seconds, up_timeout)
    bake = " + bake %ss" % bake_seconds if bake_seconds else ""
    if renewed and ttl < batch:
        return ["rolling_lock_ttl %d s is shorter than one batch may take (drain %ss + 2 gates of %ss + re-enable %ss"
                "%s = %d s; the run's heartbeats on the load balancer renew its locks at every batch): raise it to "
                "at least %d" % (ttl, drain_timeout, gate_timeout, up_timeout, bake, batch, batch)]
    if not renewed and ttl < whole:
        return ["rolling_lock_ttl %d s is shorter than this rollout may take (%d batch(es) x (drain %ss + 2 gates of "
                "%ss + re-enable %ss%s) = %d s; without a load balancer nothing renews the locks): raise it to at "
                "least %d" % (ttl, batches, drain_timeout, gate_timeout, up_timeout, bake, whole, whole)]
    return []


def text_problems(values):
    """Free-text inputs that end up in history lines and headers: no control characters (no injected lines)."""
    return ["%s contains a control character (a newline?): %s" % (name, shown(value))
            for name, value in sorted(values.items()) if value and CONTROL.search(str(value))]


def maintenance_problems(page, migrate_command, lb_enabled):
    """rolling_migrate_maintenance: a page for a migration, shown by the load balancer, one line of text."""
    if not page:
        return []
    if not lb_enabled:
        return ["rolling_migrate_maintenance is set, but this run has no load balancer to show the page: set "
                "rolling_lb_enabled (an lb group), or empty rolling_migrate_maintenance"]
    if not (migrate_command or "").strip():
        return ["rolling_migrate_maintenance is set, but there is no migration to show it for "
                "(rolling_migrate_command is empty)"]
    problem = message_problem(page)
    return [problem.replace("maintenance_message", "rolling_migrate_maintenance")] if problem else []
