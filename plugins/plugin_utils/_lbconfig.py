# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An application's HAProxy backend (and optional frontend), rendered from the inventory.

Every value ends up on a line of haproxy.cfg, so each one is checked here before anything is written: a
newline in a health path or a space in a server name would otherwise add or break configuration lines.
Errors name the inventory variable to fix.
"""

from __future__ import annotations

import re

NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
ADDRESS = re.compile(r"^[A-Za-z0-9_.:\[\]%-]+$")
PATH = re.compile(r"^/[\x21-\x7e]*$")
STATUS = re.compile(r"^[1-5][0-9]{2}(-[1-5][0-9]{2})?$")
TIME = re.compile(r"^[0-9]+(us|ms|s|m|h|d)?$")
BALANCE = ("roundrobin", "static-rr", "leastconn", "first", "source", "random")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The maps of the maintenance rule; conveyor.deploy.haproxy_maintenance writes the same paths.
MAINTENANCE_MAP = "/etc/haproxy/conveyor-maintenance.map"
RETRY_AFTER_MAP = "/etc/haproxy/conveyor-retry-after.map"
DEFAULTS = dict(
    port=8000, check_path="/health", check_status="200", check_host="", check_interval="2s", rise=2, fall=2,
    balance="roundrobin", server_options="", backend_options=(), frontend_bind=(), maintenance=True,
    maintenance_map=MAINTENANCE_MAP, retry_after_map=RETRY_AFTER_MAP, state_dir="/var/lib/haproxy")


class LBConfigError(Exception):
    pass


def _line(value, variable):
    """A value that goes on one configuration line: no newline or other control character."""
    text = str(value)
    if CONTROL.search(text):
        raise LBConfigError("%s must fit on one line of haproxy.cfg: %r has a newline or a control character."
                            % (variable, text))
    return text.strip()


def _port(value, variable):
    try:
        port = int(str(value))
    except ValueError:
        port = 0
    if not 0 < port < 65536 or isinstance(value, bool):
        raise LBConfigError("%s must be a TCP port between 1 and 65535, got %r." % (variable, value))
    return port


def _positive(value, variable):
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1 or isinstance(value, bool):
        raise LBConfigError("%s must be a whole number of at least 1, got %r." % (variable, value))
    return number


def interval(value, variable="loadbalancer_check_interval"):
    """HAProxy's time format from seconds (2, 0.5) or a time with its unit ("500ms", "2s")."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return "%dms" % round(value * 1000)
    text = _line(value, variable)
    if not TIME.match(text) or int(re.match(r"[0-9]+", text).group(0)) == 0:
        raise LBConfigError("%s must be a time such as 2s, 500ms or a number of seconds, got %r."
                            % (variable, value))
    return text


def _lines(value, variable):
    if isinstance(value, str):
        value = [value] if value.strip() else []
    return [_line(item, variable) for item in value or [] if str(item).strip()]


def servers_of(hosts, hostvars, default_port=8000, group="app"):
    """The backend's servers from the app hosts' own variables: ``[{host, name, address, port}]``.

    A server is named after ``app_lb_server`` (else the inventory name, as the rollout expects), addressed at
    ``app_lb_address`` (else ``ansible_host``, else the inventory name) on the host's ``app_port``."""
    if not hosts:
        raise LBConfigError("The group %r has no hosts, so the backend would have no server: set "
                            "loadbalancer_app_group to the inventory group of the app's hosts." % group)
    servers, names, endpoints = [], {}, {}
    for host in hosts:
        values = hostvars[host]
        name = _line(values.get("app_lb_server") or host, "app_lb_server of %s" % host)
        address = _line(values.get("app_lb_address") or values.get("ansible_host") or host,
                        "app_lb_address of %s" % host)
        port = _port(values.get("app_port") or default_port, "app_port of %s" % host)
        if not NAME.match(name):
            raise LBConfigError("app_lb_server of %s must be a name HAProxy accepts (letters, digits, '_', '.', ':', "
                                "'-'), got %r." % (host, name))
        if not ADDRESS.match(address):
            raise LBConfigError("app_lb_address of %s must be a host name or an IP address, got %r." % (host, address))
        if name in names:
            raise LBConfigError("%s and %s would both be the server %r: give each host its own app_lb_server."
                                % (names[name], host, name))
        endpoint = "%s:%d" % (address, port)
        if endpoint in endpoints:
            raise LBConfigError("%s and %s would both be served from %s: set app_lb_address on each host to the "
                                "address the load balancer reaches it at (ansible_host is %s)."
                                % (endpoints[endpoint], host, endpoint, address))
        names[name] = endpoints[endpoint] = host
        servers.append(dict(host=host, name=name, address=address, port=port))
    return servers


def state_file(backend, state_dir=DEFAULTS["state_dir"]):
    """Where a reload keeps the backend's servers' runtime state (drained, in maintenance, weight)."""
    return "%s/conveyor-%s.state" % (state_dir.rstrip("/"), backend)


def backend_block(servers, settings):
    """The lines conveyor.deploy owns in haproxy.cfg for one application: its frontend (when it binds one) and
    its backend. ``settings`` holds the role's values; missing keys take DEFAULTS."""
    conf = dict(DEFAULTS, **{k: v for k, v in settings.items() if v is not None})
    backend = _line(conf.get("backend") or "", "loadbalancer_backend")
    if not NAME.match(backend):
        raise LBConfigError("loadbalancer_backend (app_lb_backend) must be a name HAProxy accepts (letters, digits, "
                            "'_', '.', ':', '-'), got %r." % backend)
    path = _line(conf["check_path"], "loadbalancer_check_path")
    if not PATH.match(path):
        raise LBConfigError("loadbalancer_check_path (app_health_path) must be a path starting with '/' without "
                            "spaces, got %r." % path)
    statuses = [s.strip() for s in _line(conf["check_status"], "loadbalancer_check_status").split(",")]
    if not statuses or not all(STATUS.match(s) for s in statuses):
        raise LBConfigError("loadbalancer_check_status must be HTTP status codes or ranges such as 200, 200-399 "
                            "or 200,204, got %r." % conf["check_status"])
    balance = _line(conf["balance"], "loadbalancer_balance")
    if balance not in BALANCE:
        raise LBConfigError("loadbalancer_balance must be one of %s, got %r." % (", ".join(BALANCE), balance))
    host = _line(conf["check_host"] or "", "loadbalancer_check_host")
    if host and not ADDRESS.match(host):
        raise LBConfigError("loadbalancer_check_host must be a host name, got %r." % host)
    every = interval(conf["check_interval"])
    rise = _positive(conf["rise"], "loadbalancer_rise")
    fall = _positive(conf["fall"], "loadbalancer_fall")
    options = _line(conf["server_options"] or "", "loadbalancer_server_options")
    lines = []
    binds = _lines(conf["frontend_bind"], "loadbalancer_frontend_bind")
    if binds:
        lines.append("frontend %s-frontend" % backend)
        lines += ["    bind %s" % bind for bind in binds]
        lines += ["    default_backend %s" % backend, ""]
    lines += ["backend %s" % backend, "    balance %s" % balance, "    option httpchk"]
    send = "    http-check send meth GET uri %s" % path
    lines.append(send + (" ver HTTP/1.1 hdr Host %s" % host if host else ""))
    lines.append("    http-check expect status %s" % ",".join(statuses))
    # Weight 100 (HAProxy's default is 1): a canary's weight can then be set to a percentage of it (10% is 10).
    lines.append("    default-server inter %s rise %d fall %d weight 100" % (every, rise, fall))
    # A reload keeps the servers' runtime state (a drained or disabled server stays so): the role saves it first.
    lines.append("    load-server-state-from-file local")
    lines.append("    server-state-file-name %s" % state_file(backend, _line(conf["state_dir"], "loadbalancer_state_dir")))
    if conf["maintenance"]:
        found = "be_name,map(%s)" % _line(conf["maintenance_map"], "loadbalancer_maintenance_map")
        lines.append("    # Maintenance mode (playbooks/maintenance.yml): a 503 with the message while the backend is in "
                     "the map.")
        lines.append('    http-request return status 503 content-type "text/plain; charset=utf-8" lf-string "%%[%s]" '
                     'hdr Retry-After "%%[be_name,map(%s,120)]" if { %s -m found }'
                     % (found, _line(conf["retry_after_map"], "loadbalancer_retry_after_map"), found))
    lines += ["    %s" % line for line in _lines(conf["backend_options"], "loadbalancer_backend_options")]
    for server in servers:
        lines.append(("    server %s %s:%d check %s" % (server["name"], server["address"], server["port"], options))
                     .rstrip())
    return "\n".join(lines)
