# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The application's HAProxy backend rendered from the inventory (roles/loadbalancer)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _lbconfig


def haproxy_servers(hosts, hostvars, port=8000, group="app"):
    """One server per app host: ``[{host, name, address, port}]``, from each host's own variables."""
    try:
        return _lbconfig.servers_of(list(hosts or []), hostvars, port or 8000, group or "app")
    except _lbconfig.LBConfigError as exc:
        raise AnsibleFilterError(str(exc))


def haproxy_backend(servers, settings):
    """The haproxy.cfg lines of the app's frontend (when it binds one) and backend with these servers."""
    try:
        return _lbconfig.backend_block(list(servers or []), settings)
    except _lbconfig.LBConfigError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"haproxy_servers": haproxy_servers, "haproxy_backend": haproxy_backend}
