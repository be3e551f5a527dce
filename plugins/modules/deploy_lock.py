#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_lock
short_description: Take or release the per-host deploy lock of an application
version_added: "0.1.0"
description:
  - Keeps two deployment or rollback runs from working on the same host at once.
  - The lock is the file C(<app_root>/.conveyor/deploy.lock), created atomically (C(O_EXCL)). It records the
    owner (user and controller), the run id, the controller's process id, when it was taken and its time to live.
  - A lock held by another run makes O(state=present) fail with a message naming the holder and since when.
  - A lock past its time to live is stale and taken over; the takeover (with the lock it replaced) is recorded in
    C(<app_root>/.conveyor/history.jsonl). The rollout also takes over the lock of a run it proved dead (same
    controller, process gone).
  - Any other lock is broken only with O(force=true) and a O(reason), also recorded. The lock file is written
    atomically and removed only while it is still the lock that was read (compare and delete).
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the lock could be taken or released, without writing anything.
  diff_mode:
    support: none
options:
  app_root:
    description: Absolute path of the application's root directory.
    type: path
    required: true
  run_id:
    description: Identifier of the run taking or releasing the lock.
    type: str
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  owner:
    description: Who holds the lock, for example C(alice@controller).
    type: str
  pid:
    description: Process id of the controller's run, for the record.
    type: int
  ttl:
    description: Seconds after which the lock counts as stale.
    type: int
    default: 3600
  force:
    description:
      - With O(state=present), break a lock held by another run, live or not; use it only when you know that run
        is gone (a stale lock is taken over without it). With O(state=absent), release a lock held by another
        run. Requires O(reason).
    type: bool
    default: false
  reason:
    description: Why the lock is being forced; recorded in the host's history.
    type: str
seealso:
  - module: conveyor.deploy.release
"""

EXAMPLES = r"""
- name: Take the deploy lock for this run
  conveyor.deploy.deploy_lock:
    app_root: /opt/shop
    run_id: "{{ rolling_release_id }}"
    owner: "{{ lookup('ansible.builtin.env', 'USER') }}@{{ lookup('ansible.builtin.pipe', 'hostname') }}"
    ttl: 3600

- name: Break the lock of a run that died on another controller, before it expires
  conveyor.deploy.deploy_lock:
    app_root: /opt/shop
    run_id: manual-20261127
    force: true
    reason: "controller crashed during run 20261126T230000Z-2.0.0 (INC-881)"

- name: Release the lock
  conveyor.deploy.deploy_lock:
    app_root: /opt/shop
    run_id: "{{ rolling_release_id }}"
    state: absent
"""

RETURN = r"""
lock:
  description: The lock as it stands after the action (C(null) when there is none).
  returned: always
  type: dict
  sample:
    run_id: 20261127T101500Z-2.0.0
    owner: alice@controller
    pid: 41231
    ttl: 3600
    started_at: "2026-11-27T10:15:00.000000Z"
    expires_at: "2026-11-27T11:15:00.000000Z"
took_over:
  description: Why the lock in the way was taken over without force (it expired), or null.
  returned: with O(state=present)
  type: str
  sample: it expired at 2026-11-27T11:15:00.000000Z
previous:
  description: The lock that was broken or released, if any.
  returned: when a lock was broken or released
  type: dict
  sample: {run_id: 20261126T230000Z-2.0.0, owner: bob@ci, started_at: "2026-11-26T23:00:00.000000Z", ttl: 3600}
stale:
  description: Whether the lock found was past its time to live.
  returned: always
  type: bool
  sample: false
msg:
  description: What happened, in one sentence.
  returned: always
  type: str
  sample: took the deploy lock for run 20261127T101500Z-2.0.0
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.conveyor.deploy.plugins.module_utils._lock import acquire, release
from ansible_collections.conveyor.deploy.plugins.module_utils._release import Layout, ReleaseError, app_root_problem


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app_root=dict(type="path", required=True),
            run_id=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            owner=dict(type="str"),
            pid=dict(type="int"),
            ttl=dict(type="int", default=3600),
            force=dict(type="bool", default=False),
            reason=dict(type="str"),
        ),
        required_if=[("force", True, ("reason",))],
        supports_check_mode=True,
    )
    problem = app_root_problem(module.params["app_root"])
    if problem:
        module.fail_json(msg="Invalid app_root %r: it %s. Use a directory of the application's own, such as /opt/myapp."
                         % (module.params["app_root"], problem))
    if module.params["ttl"] < 1:
        module.fail_json(msg="Invalid ttl %d: give the lock's time to live in seconds (at least 1)." % module.params["ttl"])
    layout = Layout(os.path.normpath(module.params["app_root"]))
    try:
        if module.params["state"] == "present":
            result = acquire(layout, module.params, module.check_mode)
        else:
            result = release(layout, module.params, module.check_mode)
    except ReleaseError as exc:
        module.fail_json(msg=exc.msg, **exc.context)
    except (IOError, OSError) as exc:
        module.fail_json(msg="Could not %s under %s: %s. Run the task with become (root) and check the disk."
                         % (module.params["state"], module.params["app_root"], to_native(exc)))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
