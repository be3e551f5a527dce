# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP probe, shared by the health_check and preflight_host modules."""

from __future__ import annotations

import socket
import time

from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

from ansible_collections.conveyor.deploy.plugins.module_utils._health import check_json
from ansible_collections.conveyor.deploy.plugins.module_utils._proof import json_hint


def short(text, size=120):
    text = " ".join(to_text(text, errors="replace").split())
    return text if len(text) <= size else text[:size] + "..."


def probe_http(params, compiled, pattern, proof=None):
    """(ok, status, latency_ms, reason) of one request; params as the health_check module's.

    ``proof(headers, text)``, when given, is asked last: it returns None when the answer proves
    the release serves, else why not (see _proof).
    """
    start = time.monotonic()
    status, body, headers = None, b"", {}
    try:
        response = open_url(params["url"], method=params["method"], headers=params["headers"],
                            data=params["body"], timeout=params["request_timeout"],
                            validate_certs=params["validate_certs"], ca_path=params["ca_path"],
                            follow_redirects="safe")
        status = response.getcode()
        headers = dict(response.headers.items())
        body = response.read(1 << 20)
    except HTTPError as exc:
        status = exc.code
        headers = dict(exc.headers.items()) if exc.headers else {}
        try:
            body = exc.read(1 << 20)
        except Exception:
            body = b""
    except (URLError, socket.timeout, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, socket.timeout) or "timed out" in to_native(reason):
            reason = "no answer within %s s" % params["request_timeout"]
        elif "refused" in to_native(reason).lower():
            reason = "connection refused"
        return False, None, (time.monotonic() - start) * 1000.0, short(reason)
    latency = (time.monotonic() - start) * 1000.0
    text = to_text(body, errors="replace")
    if status not in params["status_codes"]:
        return False, status, latency, "answered %s (body: %s)" % (status, short(text, 80))
    if pattern and not pattern.search(text):
        return False, status, latency, "body does not match %r" % params["body_regex"]
    problem = json_hint(check_json(text, compiled))
    if problem is None and proof is not None:
        problem = proof(headers, text)
    if problem:
        return False, status, latency, problem
    return True, status, latency, None
