#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_heartbeat
short_description: Record that a run is alive, and read when every other run of a backend last was
version_added: "0.2.0"
description:
  - Runs on the load-balancer host. Each run of a backend keeps one small file there with the time of its last
    call; M(conveyor.deploy.haproxy_server) rewrites it at every drain and re-enable of a batch.
  - The locks a run takes on the app hosts have a short time to live that these beats renew. The rollout plan
    (M(conveyor.deploy.rollout_plan)) calls this module once per run to record the run's first beat and to
    read the others, so that a lock whose run has been silent for longer than its time to live is taken over
    (and the takeover recorded) instead of blocking deploys until a long time to live runs out.
  - Times are the load balancer's own clock (RV(now) is that clock), so a beat is compared with that clock only.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Reads the beats and records none.
  diff_mode:
    support: none
options:
  backend:
    description: The HAProxy backend (the application) whose runs' beats are read; one directory per backend.
    type: str
    required: true
  run_id:
    description: The run that is alive now. Without it, the beats are only read.
    type: str
  dir:
    description: Where the beats are kept on the load balancer (a directory per backend under it).
    type: path
    default: /var/lib/conveyor/heartbeats
notes:
  - Beats older than seven days are removed whenever a run beats.
seealso:
  - module: conveyor.deploy.haproxy_server
  - module: conveyor.deploy.host_steps
"""

EXAMPLES = r"""
- name: Record this run's beat and read the others
  conveyor.deploy.run_heartbeat:
    backend: shop
    run_id: 20261206T221500Z-1a2b3c4d
  delegate_to: "{{ groups['lb'][0] }}"
  run_once: true
  register: beats
"""

RETURN = r"""
beats:
  description: Every run of the backend with the time of its last beat (UTC, the load balancer's clock), this one included.
  returned: always
  type: dict
  sample: {20261206T221500Z-1a2b3c4d: "2026-12-06T22:15:03.120000Z"}
now:
  description: The load balancer's time when the beats were read.
  returned: always
  type: str
  sample: "2026-12-06T22:15:03.120000Z"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.conveyor.deploy.plugins.module_utils import _heartbeat
from ansible_collections.conveyor.deploy.plugins.module_utils._release import isoformat, utcnow


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type="str", required=True),
            run_id=dict(type="str"),
            dir=dict(type="path", default=_heartbeat.DEFAULT_DIR),
        ),
        supports_check_mode=True,
    )
    path = _heartbeat.directory(module.params["dir"], module.params["backend"])
    now = utcnow()
    changed = False
    if module.params["run_id"] and not module.check_mode:
        try:
            _heartbeat.beat(path, module.params["run_id"], now)
        except OSError as exc:
            module.fail_json(msg="Could not record the heartbeat of run %s in %s: %s. A run renews its locks there; "
                                 "free the space or fix the directory's permissions." % (
                                     module.params["run_id"], path, exc.strerror or exc))
        changed = True
    module.exit_json(changed=changed, beats=_heartbeat.read(path), now=isoformat(now))


if __name__ == "__main__":
    main()
