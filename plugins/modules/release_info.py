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
  description:
    - The deploy lock, or C(null) when none is held. C(stale) says whether its time to live has passed, C(described)
      says who holds it in words, and C(paused) is there when a paused run (C(rolling_pause_after)) holds it.
  returned: always
  type: dict
  sample: {run_id: 20261127T101500Z-2.0.0, owner: alice@controller, stale: false}
app_root_exists:
  description: Whether O(app_root) exists on the host.
  returned: always
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.conveyor.deploy.plugins.module_utils._release import ReleaseError, app_root_problem
from ansible_collections.conveyor.deploy.plugins.module_utils._release_ops import inspect


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
        module.fail_json(msg="Invalid app_root %r: it %s. Use a directory of the application's own, such as /opt/myapp."
                         % (module.params["app_root"], problem))
    try:
        result = inspect(module.params)
    except ReleaseError as exc:
        module.fail_json(msg=exc.msg, **exc.context)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
