#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight_host
short_description: Run a host's pre-deployment checks in one round-trip, reading only
version_added: "0.1.0"
description:
  - Runs the per-host items of the pre-deployment checklist (the C(conveyor.deploy.preflight) role) on one host
    and returns one row per check, passed or not, without ever failing on a check. Every check runs.
  - V(lock) - no other run holds the deploy lock. An expired lock passes (the rollout takes it over); a held lock
    fails, and its row carries the lock (C(lock)) so that the controller can pass it when it proves the holder
    dead (M(conveyor.deploy.preflight_report)).
  - V(artifact) - this host can fetch the artifact (HTTP C(HEAD), or the file exists) and a checksum is published
    (C(checksum_url) or O(artifact_sha256)); production always needs one.
  - V(disk) - the free space under O(app_root) is at least O(disk_factor) times the artifact's size.
  - V(fleet_healthy) - when a release is live, its health URL answers (twice at most, half a second apart). A host
    that is not deployed yet (its live release failed its first deploy and no release there was ever good) passes
    and says so, because the deploy of a fixed version is what it needs.
  - V(config_test) - O(config_test_command) exits 0 in the live release, run as O(config_test_user).
  - V(prepared) - the host was prepared for the application (by the collection's environment role, or as it would
    be) - the app root with its C(releases) and C(shared) directories exists and, with O(service), systemd knows the
    unit. A host nobody prepared fails here, with what is missing, instead of later while the release is staged.
  - One module execution per host replaces one per check, which keeps the checklist to a few seconds.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Reads only; the same rows are returned in check mode.
  diff_mode:
    support: none
options:
  app_root:
    description: Absolute path of the application's root directory.
    type: path
    required: true
  checks:
    description: Which checks to run.
    type: list
    elements: str
    choices: [prepared, lock, artifact, disk, fleet_healthy, config_test]
    default: [prepared, lock, artifact, disk, fleet_healthy, config_test]
  artifact_url:
    description: The artifact, an http(s) URL or an absolute path on the host.
    type: str
  checksum_url:
    description: Where its sha256 is published (URL or path); default O(artifact_url) with C(.sha256).
    type: str
  artifact_sha256:
    description: The artifact's sha256 when given in the inventory; then nothing is fetched for it.
    type: str
  url_username:
    description: The user to reach O(artifact_url) and O(checksum_url) as (HTTP basic auth, sent at once).
    type: str
  url_password:
    description: The password of O(url_username). Never logged.
    type: str
  production:
    description: Production refuses an artifact without a checksum, whatever O(allow_unverified) says.
    type: bool
    default: false
  allow_unverified:
    description: Outside production, accept an artifact without a published checksum.
    type: bool
    default: false
  disk_factor:
    description: Free space needed, as a multiple of the artifact's size.
    type: int
    default: 3
  health_url:
    description: The live release's health URL, asked from the host.
    type: str
  health_json:
    description: JMESPath assertions (C(query), optional C(equals)) on the health answer.
    type: list
    elements: dict
    default: []
  config_test_command:
    description: The application's configuration test, run by C(/bin/sh -c) in C(<app_root>/current).
    type: str
  config_test_user:
    description: The user the configuration test runs as.
    type: str
  service:
    description: The application's systemd unit (C(.service) may be left out), for the V(prepared) check.
    type: str
  timeout:
    description: Seconds to wait for each HTTP request and for the configuration test.
    type: float
    default: 15
seealso:
  - module: conveyor.deploy.deploy_window
  - module: conveyor.deploy.approval
"""

EXAMPLES = r"""
- name: Check each host before deploying
  conveyor.deploy.preflight_host:
    app_root: /opt/shop
    artifact_url: https://artifacts.example.com/shop-2.1.0.tar.gz
    health_url: http://127.0.0.1:8000/health
    health_json: [{query: status, equals: ok}]
    config_test_command: bin/shop check-config
    config_test_user: shop
  register: checklist

- name: Show what failed
  ansible.builtin.debug:
    msg: "{{ checklist.rows | rejectattr('passed') | list }}"
"""

RETURN = r"""
rows:
  description: One row per check, in the order of O(checks).
  returned: always
  type: list
  elements: dict
  sample: [{check: disk, passed: true, summary: "9823.1 MiB free, 3.0 MiB needed (3 x the artifact)"}]
passed:
  description: Whether every check passed.
  returned: always
  type: bool
artifact:
  description: What was found of the artifact - whether it is there, its size and the published sha256 (or empty).
  returned: always
  type: dict
  sample: {found: true, size: 1051190, sha256: 7eec238ab777f5f52c29d8ac9aaf4a62b90fd280c339714c35b127d8d94fd425}
current:
  description: The live release's id and version, or null.
  returned: always
  type: dict
"""

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six.moves.urllib.error import HTTPError
from ansible.module_utils.urls import open_url

from ansible_collections.conveyor.deploy.plugins.module_utils._health import HAS_JMESPATH, compile_assertions
from ansible_collections.conveyor.deploy.plugins.module_utils._lock import describe, expiry_text, is_stale, read_lock
from ansible_collections.conveyor.deploy.plugins.module_utils._probe import probe_http, short
from ansible_collections.conveyor.deploy.plugins.module_utils._release import Layout, list_releases, read_manifest, utcnow

SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def is_url(text):
    return bool(re.match(r"^https?://", text or ""))


def artifact_state(params):
    """{found, size, sha256, where}: this host's view of the artifact and its checksum."""
    url = params["artifact_url"] or ""
    found, size, where = False, 0, url
    if is_url(url):
        try:
            with open_url(url, method="HEAD", timeout=params["timeout"], follow_redirects="safe",
                          **credentials(params)) as response:
                found = response.getcode() == 200
                size = int(response.headers.get("Content-Length") or 0)
                where = "HTTP %d for %s" % (response.getcode(), url)
        except HTTPError as exc:
            where = "HTTP %d for %s" % (exc.code, url)
        except Exception as exc:  # pylint: disable=broad-except
            # URLError, timeouts, and http.client's InvalidURL for a URL with spaces: a row, not a crash.
            where = "%s: %s" % (url, short(getattr(exc, "reason", exc), 100))
    elif url.startswith("/"):
        found = os.path.isfile(url)
        size = os.path.getsize(url) if found else 0
        where = url if found else "%s does not exist" % url
    sha = (params["artifact_sha256"] or "").strip().lower()
    sha = sha[len("sha256:"):] if sha.startswith("sha256:") else sha
    if not sha:
        sha = published_checksum(params["checksum_url"] or (url + ".sha256"), params["timeout"], credentials(params))
    return {"found": found, "size": size, "sha256": sha if SHA256.match(sha or "") else "", "where": where}


def credentials(params):
    """open_url's basic-auth arguments for the artifact server, sent with the first request; none without a user."""
    if not params.get("url_username"):
        return {}
    return {"url_username": params["url_username"], "url_password": params.get("url_password") or "",
            "force_basic_auth": True}


def published_checksum(source, timeout, auth=None):
    """The first word of the checksum file if it is 64 hex digits, else ''."""
    text = ""
    try:
        if is_url(source):
            with open_url(source, timeout=timeout, follow_redirects="safe", **(auth or {})) as response:
                text = to_text(response.read(4096), errors="replace")
        elif source.startswith("/") and os.path.isfile(source):
            with open(source, errors="replace") as handle:
                text = handle.read(4096)
    except Exception:  # pylint: disable=broad-except
        return ""
    words = text.split()
    return words[0].lower() if words and SHA256.match(words[0]) else ""


def check_prepared(module, layout):
    params = module.params
    missing = ["no " + path for path in (layout.root, layout.releases, layout.shared) if not os.path.isdir(path)]
    service = params["service"]
    unit = None
    if service:
        unit = service if service.endswith(".service") else service + ".service"
        systemctl = module.get_bin_path("systemctl")
        if systemctl is None:
            missing.append("no systemctl (no systemd on this host, so no unit %s)" % unit)
        else:
            dummy_rc, out, dummy_err = module.run_command([systemctl, "show", "-p", "LoadState", "--value", unit],
                                                          check_rc=False)
            if out.strip() != "loaded":
                missing.append("no unit %s (systemd says %s)" % (unit, out.strip() or "nothing"))
    if missing:
        return False, ("not prepared for the application: %s. Run playbooks/environment.yml for this host "
                       "first (or drop prepared from preflight_checks if it is prepared another way)"
                       % ", ".join(missing))
    return True, "%s with releases/ and shared/%s" % (layout.root, (", " + unit) if unit else "")


def check_lock(layout):
    """(passed, summary, lock in the way): an expired lock is taken over by the rollout, so it passes."""
    held = read_lock(layout.lock)
    if held is None:
        return True, "no deploy lock held", None
    if is_stale(held, utcnow()):
        return True, ("an expired deploy lock is there (%s, expired %s): the rollout takes it over, records it, "
                      "and puts the host through its batch again" % (describe(held), expiry_text(held))), held
    if isinstance(held.get("paused"), dict):
        return False, "held by %s" % describe(held), held
    return False, ("held by %s: wait for that run to finish (if it died on this controller%s, the checklist "
                   "says so and the rollout takes the lock over)" % (
                       describe(held), ", or its heartbeats stop for its ttl" if held.get("renewed") else "")), held


def check_artifact(params, artifact):
    problems = []
    if not artifact["found"]:
        problems.append("not found: %s" % artifact["where"])
    if not artifact["sha256"]:
        checksum_at = params["checksum_url"] or ((params["artifact_url"] or "") + ".sha256")
        if params["production"]:
            problems.append("no checksum: production refuses an artifact without one (publish %s or set "
                            "app_artifact_sha256)" % checksum_at)
        elif not params["allow_unverified"]:
            problems.append("no checksum published at %s and app_artifact_sha256 is not set" % checksum_at)
    if problems:
        return False, "; ".join(problems)
    digest = (artifact["sha256"][:12] + "...") if artifact["sha256"] else "not required here"
    return True, "%s (%.1f MiB), sha256 %s" % (os.path.basename(params["artifact_url"]), artifact["size"] / 1048576.0, digest)


def free_bytes(path):
    while not os.path.exists(path):
        path = os.path.dirname(path)
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def check_disk(params, artifact):
    free = free_bytes(params["app_root"])
    need = artifact["size"] * params["disk_factor"]
    return free >= need, "%.1f MiB free, %.1f MiB needed (%d x the artifact)" % (
        free / 1048576.0, need / 1048576.0, params["disk_factor"])


def never_deployed(layout, manifest):
    """The live release failed and no release on the host was ever good: a failed first deploy, not a broken host."""
    if not manifest or manifest.get("state") != "failed":
        return False
    return not any(release.get("state") == "good" for release in list_releases(layout))


def check_health(params, current, compiled, not_deployed=False):
    if current is None:
        return True, "no release is live yet"
    if not_deployed:
        return True, ("not deployed: %s failed its first deploy here and no release was ever good, so the next "
                      "deploy replaces it" % current["version"])
    if not params["health_url"]:
        return False, "health_url is not set"
    probe = {"url": params["health_url"], "method": "GET", "headers": {}, "body": None,
             "request_timeout": min(params["timeout"], 5.0), "validate_certs": True, "ca_path": None,
             "status_codes": [200]}
    reason = None
    for attempt in range(2):
        if attempt:
            time.sleep(0.5)
        ok, dummy_status, latency, reason = probe_http(probe, compiled, None)
        if ok:
            return True, "%s: healthy (%.0f ms)" % (current["version"], latency)
    return False, "%s: unhealthy: %s, 2 times in a row" % (current["version"], reason)


def check_config(module, layout, current):
    params = module.params
    if not params["config_test_command"]:
        return True, "not configured (app_config_test_command)"
    if current is None:
        return True, "no release is live yet"
    command = ["/bin/sh", "-c", params["config_test_command"]]
    if params["config_test_user"]:
        command = ["runuser", "-u", params["config_test_user"], "--"] + command
    rc, out, err = module.run_command(command, cwd=os.path.join(layout.root, "current"), check_rc=False,
                                      expand_user_and_vars=False)
    return rc == 0, "exit %d: %s" % (rc, short(err or out or "no output", 150))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app_root=dict(type="path", required=True),
            checks=dict(type="list", elements="str",
                        default=["prepared", "lock", "artifact", "disk", "fleet_healthy", "config_test"],
                        choices=["prepared", "lock", "artifact", "disk", "fleet_healthy", "config_test"]),
            artifact_url=dict(type="str"),
            checksum_url=dict(type="str"),
            artifact_sha256=dict(type="str"),
            url_username=dict(type="str"),
            url_password=dict(type="str", no_log=True),
            production=dict(type="bool", default=False),
            allow_unverified=dict(type="bool", default=False),
            disk_factor=dict(type="int", default=3),
            health_url=dict(type="str"),
            health_json=dict(type="list", elements="dict", default=[]),
            config_test_command=dict(type="str"),
            config_test_user=dict(type="str"),
            service=dict(type="str"),
            timeout=dict(type="float", default=15),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isabs(params["app_root"]):
        module.fail_json(msg="app_root must be an absolute path, not %r" % params["app_root"])
    needs_artifact = set(params["checks"]) & {"artifact", "disk"}
    if needs_artifact and not params["artifact_url"]:
        module.fail_json(msg="artifact_url is required for the %s check" % " and ".join(sorted(needs_artifact)))
    compiled = []
    if params["health_json"]:
        if not HAS_JMESPATH:
            module.fail_json(msg="health_json needs the jmespath library on the host (python3-jmespath)")
        try:
            compiled = compile_assertions(params["health_json"])
        except ValueError as exc:
            module.fail_json(msg="health_json: %s" % exc)

    layout = Layout(os.path.normpath(params["app_root"]))
    current_id = layout.current_id()
    manifest = read_manifest(layout.release_dir(current_id)) if current_id else None
    current = {"release_id": current_id, "version": (manifest or {}).get("version", "?")} if current_id else None
    artifact = artifact_state(params) if needs_artifact else {"found": None, "size": 0, "sha256": "", "where": ""}

    rows = []
    for check in params["checks"]:
        if check == "prepared":
            passed, summary = check_prepared(module, layout)
        elif check == "lock":
            passed, summary, held = check_lock(layout)
            if held is not None:
                rows.append({"check": check, "passed": passed, "summary": summary, "lock": held})
                continue
        elif check == "artifact":
            passed, summary = check_artifact(params, artifact)
        elif check == "disk":
            passed, summary = check_disk(params, artifact)
        elif check == "fleet_healthy":
            passed, summary = check_health(params, current, compiled, never_deployed(layout, manifest))
        else:
            passed, summary = check_config(module, layout, current)
        rows.append({"check": check, "passed": passed, "summary": summary})
    module.exit_json(changed=False, rows=rows, passed=all(row["passed"] for row in rows), artifact=artifact,
                     current=current)


if __name__ == "__main__":
    main()
