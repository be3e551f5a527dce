# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for the HAProxy runtime API (admin-level unix socket)."""

from __future__ import annotations

import math
import socket

# srv_admin_state bits (HAProxy's SRV_ADMF_*): any maintenance flag, and the drain flags.
ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
ADMIN_DRAIN = 0x08 | 0x10
OP_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}


class HAProxyError(Exception):
    pass


def parse_servers_state(text):
    """Parse ``show servers state`` into ``{backend: {server: {...}}}``."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = None
    result = {}
    for line in lines:
        if line.startswith("# be_id"):
            header = line[2:].split()
            continue
        if line.startswith("#") or header is None or line.strip() == "1":
            continue
        fields = line.split()
        if len(fields) < 7:
            continue
        row = dict(zip(header, fields))
        backend, name = row.get("be_name"), row.get("srv_name")
        result.setdefault(backend, {})[name] = dict(
            name=name, addr=row.get("srv_addr"), op_state=int(row.get("srv_op_state", 0)),
            admin_state=int(row.get("srv_admin_state", 0)), weight=_int(row.get("srv_iweight")),
            current_weight=_int(row.get("srv_uweight")))
    return result


# HAProxy's check results that mean the server answered its check and HAProxy refused the answer.
REFUSED_CHECKS = ("L7STS", "L7RSP", "L6RSP")
PASSED_CHECKS = ("L4OK", "L6OK", "L7OK", "L7OKC", "INI", "UNK", "")


# The per-server counters an analysis window reads (plugin_utils/_analysis.py): responses by class, connection
# and response errors, and the moving average of response times (ms).
COUNTERS = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "econ", "eresp", "rtime")


def parse_stat(text):
    """Parse ``show stat`` CSV into ``{(backend, server): {scur, stot, status, check_status, check_code, last_chk,
    chkfail}}`` (the check columns are empty for a server without checks)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        return {}
    header = lines[0][2:].split(",")
    result = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        row = dict(zip(header, line.split(",")))
        if row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        result[(row.get("pxname"), row.get("svname"))] = dict(
            scur=_int(row.get("scur")), stot=_int(row.get("stot")), status=row.get("status"),
            check_status=(row.get("check_status") or "").lstrip("* "), check_code=row.get("check_code") or "",
            last_chk=row.get("last_chk") or "", chkfail=_int(row.get("chkfail")),
            counters=dict((key, _int(row.get(key))) for key in COUNTERS))
    return result


def _int(text):
    try:
        return int(text or 0)
    except ValueError:
        return 0


def server_view(state, stat):
    """Merge both views of one server into what an operator wants to read."""
    admin = state["admin_state"]
    serving = state["op_state"] == 2 and not admin & (ADMIN_MAINT | ADMIN_DRAIN)
    if admin & ADMIN_MAINT:
        admin_text = "maint"
    elif admin & ADMIN_DRAIN:
        admin_text = "drain"
    else:
        admin_text = "ready"
    stat = stat or {}
    check = " ".join(part for part in (stat.get("check_status"), stat.get("check_code")) if part)
    return dict(name=state["name"], addr=state["addr"], admin=admin_text, weight=state.get("weight", 0),
                current_weight=state.get("current_weight", state.get("weight", 0)),
                health="up" if state["op_state"] == 2 else "down", serving=serving,
                sessions=stat.get("scur", 0), served=stat.get("stot", 0), status=stat.get("status"),
                check=check, check_detail=stat.get("last_chk", ""), check_failures=stat.get("chkfail", 0))


def last_check(server):
    """The status of HAProxy's last check of a server (``L7STS``, ``L4CON``, ``L7OK``...), '' without checks."""
    return (server.get("check") or "").split(" ")[0]


def settled(server):
    """A re-enabled server HAProxy serves and will keep serving: up, and its last check not refused.

    Still up from the release it ran before, a server whose last check HAProxy refused (the new
    release answered, HAProxy disliked the answer) is about to go down: it is not settled yet.
    """
    return server.get("health") == "up" and last_check(server) not in REFUSED_CHECKS


def check_disagrees(server, failures_before, refused_for=0.0, least=2, grace=10.0):
    """Why HAProxy's own check keeps failing a server that was re-enabled (its gate passed), or None.

    HAProxy has said why, and waiting out the timeout would change nothing, when its last check failed
    and either ``least`` checks failed since ``failures_before`` (the server's chkfail count when it
    was re-enabled; HAProxy counts them only while the server is up), or the server is down and its
    checks have been refused (the app answered, HAProxy disliked the answer) for ``refused_for`` >=
    ``grace`` seconds.
    """
    failed = server.get("check_failures", 0) - failures_before
    if last_check(server) in PASSED_CHECKS:
        return None
    refused_down = server.get("health") != "up" and last_check(server) in REFUSED_CHECKS and refused_for >= grace
    if failed < least and not refused_down:
        return None
    detail = server.get("check_detail") or ""
    since = ("%d failed checks since it was re-enabled" % failed if failed >= least
             else "refused for %.0f s since it was re-enabled" % refused_for)
    return ("HAProxy's own health check fails for %s although its gate passed: %s%s, %s. HAProxy checks something "
            "the gate does not: compare the backend's check (option httpchk and http-check expect in haproxy.cfg) "
            "with app_health_path" % (server["name"], server["check"], " (%s)" % detail if detail else "", since))


def required_serving(total, min_healthy_percent):
    """Servers that must keep serving out of ``total`` for a minimum healthy percentage."""
    return int(math.ceil(total * min_healthy_percent / 100.0 - 1e-9))


def share(server, percent=None):
    """The part of a full server a serving server is, by its weight: 0.1 for a canary at 10 % of its weight.

    ``percent``: the weight (in % of its configured one) the same call gives it; else its current weight.
    """
    if percent is not None:
        return percent / 100.0
    weight = server.get("weight") or 0
    if weight <= 0:
        return 1.0
    return min(float(server.get("current_weight", weight)) / weight, 1.0)


def capacity_problem(backend_view, draining, min_healthy_percent, weights=None):
    """Why draining ``draining`` would leave too few serving backends, or None.

    Servers already out of rotation do not count, and a server at a reduced weight (a canary) counts for its share
    (``weights``: the percentages the same call sets). Draining servers that serve no traffic (a first deploy, say)
    never reduces capacity, so it is allowed.
    """
    weights = weights or {}
    total = len(backend_view)
    serving = [s["name"] for s in backend_view.values() if s["serving"]]
    lost = [name for name in serving if name in draining]
    if not lost:
        return None
    staying = [name for name in serving if name not in draining]
    left = sum(share(backend_view[name], weights.get(name)) for name in staying)
    needed = required_serving(total, min_healthy_percent)
    if left < needed - 1e-9:
        light = ["%s at %d%% of its weight" % (name, round(share(backend_view[name], weights.get(name)) * 100))
                 for name in staying if share(backend_view[name], weights.get(name)) < 1.0]
        return ("draining %s would leave %s of %d backends serving, below the minimum of %d (%s%%)%s"
                % (", ".join(sorted(lost)), ("%d" % left) if left == int(left) else "%.1f" % left, total, needed,
                   min_healthy_percent, "; a server at a reduced weight counts for its share: " + ", ".join(light)
                   if light else ""))
    return None


class RuntimeAPI(object):
    def __init__(self, path, timeout=5.0):
        self.path = path
        self.timeout = timeout

    def command(self, line):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
            sock.sendall((line + "\n").encode("utf-8"))
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (OSError, socket.timeout) as exc:
            raise HAProxyError("Could not talk to the HAProxy runtime API at %s: %s. Check the `stats socket ... "
                               "level admin` line of haproxy.cfg and that the task runs with become." % (self.path, exc))
        finally:
            sock.close()
        return b"".join(chunks).decode("utf-8", "replace")

    def backend(self, backend):
        states = parse_servers_state(self.command("show servers state %s" % backend)).get(backend)
        if not states:
            raise HAProxyError("HAProxy has no backend named %r (or it has no servers). Check the backend name "
                               "in the inventory (app_lb_backend)." % backend)
        stats = parse_stat(self.command("show stat"))
        return dict((name, server_view(state, stats.get((backend, name)))) for name, state in states.items())

    def set_state(self, backend, server, state):
        answer = self.command("set server %s/%s state %s" % (backend, server, state)).strip()
        if answer:
            raise HAProxyError("HAProxy refused to set %s/%s to %s: %s" % (backend, server, state, answer))

    def counters(self, backend):
        """{server: counters} of one backend, from ``show stat``."""
        stats = parse_stat(self.command("show stat"))
        return dict((name, row["counters"]) for (proxy, name), row in stats.items() if proxy == backend)

    def set_weight(self, backend, server, percent):
        """Set a server's weight to a percentage of the weight haproxy.cfg gives it (100 restores it)."""
        answer = self.command("set weight %s/%s %d%%" % (backend, server, percent)).strip()
        if answer:
            raise HAProxyError("HAProxy refused to set the weight of %s/%s to %d%%: %s" % (backend, server, percent, answer))

    def set_health_up(self, backend, server):
        """Mark a server's health check up now; HAProxy keeps checking it. A refusal (a server without a
        health check) is left to the caller's wait for the server to be up."""
        self.command("set server %s/%s health up" % (backend, server))
