#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_info
short_description: Report an application's releases, the live one, the rollback target and the deploy lock
version_added: "0.1.0"
description:
  - Read-only view of the layout managed by M(conveyor.deploy.release), in one module execution.
  - Returns the live release, the previous good release (the newest release marked good other than the live
    one, which is what a rollback goes back to), every release with its manifest and whether it is complete,
    and the deploy lock if one is held.
  - With O(target), resolves a version or release id to the release a rollback would activate, and verifies it.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: The module never changes anything, so it runs normally in check mode.
  diff_mode:
    support: none
options:
  app_root:
    description: Absolute path of the application's root directory.
    type: path
    required: true
  target:
    description:
      - A release id or a version. The result's RV(target) is the matching complete, non-failed release
        (for a version, the newest such release carrying it), with its content verified.
    type: str
  target_previous_good:
    description:
      - Without O(target), resolve RV(target) to the previous good release (the rollback target) and verify it.
    type: bool
    default: false
  owner:
    description:
      - The owner every file of a release must have (the release policy, as M(conveyor.deploy.release) enforces it).
        A RV(target) that breaks the policy (another owner, or group- or world-writable files) is refused, naming the
        files.
    type: str
    default: root
  verify:
    description: Recompute every release's content digest and report releases whose files changed as incomplete.
    type: bool
    default: false
seealso:
  - module: conveyor.deploy.release
"""

EXAMPLES = r"""
- name: Read the releases on each host
  conveyor.deploy.release_info:
    app_root: /opt/shop
  register: shop_releases

- name: Show the running version and the rollback target
  ansible.builtin.debug:
    msg: >-
      live {{ shop_releases.current.version | default('none') }},
      rollback target {{ shop_releases.previous_good.release_id | default('none') }}

- name: Resolve version 1.0.0 to a verified release
  conveyor.deploy.release_info:
    app_root: /opt/shop
    target: 1.0.0
  register: shop_target
"""

RETURN = r"""
current:
  description: Manifest of the live release (C(current)'s target), or C(null).
  returned: always
  type: dict
  sample: {release_id: 20261127T101500Z-2.0.0, version: 2.0.0, state: good}
previous_good:
  description: Manifest of the rollback target, or C(null) when there is none.
  returned: always
  type: dict
  sample: {release_id: 20261120T091000Z-1.0.0, version: 1.0.0, state: good}
releases:
  description: Every entry under C(releases/), oldest first, with its manifest fields, C(complete) and C(problems).
  returned: always
  type: list
  elements: dict
  sample: [{release_id: 20261120T091000Z-1.0.0, version: 1.0.0, state: good, complete: true}]
target:
  description: The release O(target) resolves to, or C(null).
  returned: when O(target) or O(target_previous_good) is given
  type: dict
  sample: {release_id: 20261120T091000Z-1.0.0, version: 1.0.0, state: good, complete: true}
target_problem:
  description: Why O(target) could not be resolved, or C(null).
  returned: when O(target) or O(target_previous_good) is given
  type: str
  sample: no complete, verified release carries version 0.9.0
lock:
  description: The deploy lock, or C(null) when none is held. C(stale) says whether its time to live has passed.
  returned: always
  type: dict
  sample: {run_id: 20261127T101500Z-2.0.0, owner: alice@controller, stale: false}
app_root_exists:
  description: Whether O(app_root) exists on the host.
  returned: always
  type: bool
  sample: true
"""

import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.conveyor.deploy.plugins.module_utils._lock import is_stale, read_lock
from ansible_collections.conveyor.deploy.plugins.module_utils._release import (
    Layout, app_root_problem, list_releases, policy_violations, previous_good, tree_digest, utcnow,
)


def _uid(module):
    try:
        return pwd.getpwnam(module.params["owner"]).pw_uid
    except KeyError:
        module.fail_json(msg="owner %s is not a user on this host" % module.params["owner"])


def resolve_target(releases, target, current_id):
    """Return (release, problem) for a release id or version."""
    by_id = [r for r in releases if r["release_id"] == target]
    matches = by_id or [r for r in releases if r.get("version") == target]
    if not matches:
        return None, "no release with id or version %s" % target
    usable = [r for r in matches if r.get("complete") and r.get("state") != "failed"]
    if not usable:
        states = ", ".join("%s (%s)" % (r["release_id"], "; ".join(r.get("problems", [])) or r.get("state"))
                           for r in matches)
        return None, "no complete, non-failed release for %s: %s" % (target, states)
    usable.sort(key=lambda r: (r.get("activated_at") or "", r.get("staged_at") or ""))
    return usable[-1], None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app_root=dict(type="path", required=True),
            target=dict(type="str"),
            target_previous_good=dict(type="bool", default=False),
            verify=dict(type="bool", default=False),
            owner=dict(type="str", default="root"),
        ),
        supports_check_mode=True,
    )
    problem = app_root_problem(module.params["app_root"])
    if problem:
        module.fail_json(msg="Invalid app_root: %s. Use an absolute path such as /opt/myapp." % problem)
    layout = Layout(os.path.normpath(module.params["app_root"]))
    releases = list_releases(layout, with_digest=module.params["verify"])
    current_id = layout.current_id()
    by_id = dict((r["release_id"], r) for r in releases)
    lock = read_lock(layout.lock)
    if lock is not None:
        lock = dict(lock, stale=is_stale(lock, utcnow()))
    result = dict(
        changed=False,
        app_root_exists=os.path.isdir(layout.root),
        current=by_id.get(current_id) if current_id else None,
        previous_good=previous_good(releases, current_id),
        releases=releases,
        lock=lock,
    )
    if current_id and current_id not in by_id:
        result["current"] = dict(release_id=current_id, complete=False, problems=["current points at a missing release"])
    target = module.params["target"]
    if target or module.params["target_previous_good"]:
        if target:
            release, problem = resolve_target(releases, target, current_id)
        elif result["previous_good"]:
            release, problem = result["previous_good"], None
        else:
            release, problem = None, "no previous good release to go back to (is this the first deployment?)"
        if release and not module.params["verify"] and tree_digest(release["path"]) != release.get("content_sha256"):
            release, problem = None, "release %s does not verify: its files changed since staging" % release["release_id"]
        if release:
            bad = policy_violations(release["path"], _uid(module))
            if bad:
                release, problem = None, ("release %s breaks the release policy (files owned by %s, not writable by "
                                          "group or others): %s" % (release["release_id"], module.params["owner"],
                                                                    ", ".join(bad)))
        result["target"] = release
        result["target_problem"] = problem
    module.exit_json(**result)


if __name__ == "__main__":
    main()
