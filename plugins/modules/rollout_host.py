#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollout_host
short_description: A host's run-wide work in one task - prepare, resolve a rollback target, or finish
version_added: "0.2.0"
description:
  - O(step=prepare) (deploy) runs one M(conveyor.deploy.host_steps) execution on the host - it reads the host's
    releases; when the live release is already the version, good, and answers its health URL, the host is left
    alone; otherwise it takes the deploy lock (recording the controller's process) and stages the release, then
    runs the C(after_stage) hook commands.
  - O(step=resolve) (rollback) resolves and verifies the host's target (O(rollback_to), else its previous good
    release), and takes the lock when the target is not the live release, in one M(conveyor.deploy.host_steps)
    execution. A host whose live release a rollback put there is left alone
    (a rerun is a retry); going further back needs O(rollback_to).
  - O(step=finish) marks the release good and prunes after a successful deploy, marks the abandoned release failed
    after a fleet recovery or a rollback, and releases the lock this run took, in one M(conveyor.deploy.host_steps)
    execution (none when there is nothing to do).
  - O(step=resume) (C(playbooks/promote.yml), C(playbooks/abort.yml)) reads what the paused run that holds the host
    (O(run_id), or whichever) left there (RV(paused), RV(state)) for M(conveyor.deploy.rollout_plan)'s
    O(conveyor.deploy.rollout_plan#module:step=resume), and changes nothing. It needs no run object.
  - O(step=adopt), once that step rebuilt the run object, hands the paused run's lock to this process (renewed by its
    heartbeats on the load balancer). A host the run does not move costs nothing; a host whose lock cannot be taken
    back fails the task, so that it takes no part in the run.
  - With a paused run (C(rolling_pause_after)), O(step=finish) keeps the lock instead of releasing it (see
    M(conveyor.deploy.host_steps)' O(conveyor.deploy.host_steps#module:pause)) and marks and prunes nothing.
  - Errors do not fail the task; they are returned (RV(error)) so that M(conveyor.deploy.rollout_plan) aborts the
    whole run with every host's reason at once.
  - The run object comes from the C(rolling_run) variable (or, while preparing, C(__rolling_plan)).
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Every module it runs runs in check mode; finish marks nothing.
  diff_mode:
    support: full
    details: Returns the diffs of the modules it runs.
options:
  step:
    description: What to do.
    type: str
    choices: [prepare, resolve, finish, resume, adopt]
    required: true
  app_root:
    description: Absolute application root; by default the run object's.
    type: str
  lb_name:
    description: The host's server name in the load balancer; by default the inventory hostname.
    type: str
  lock_ttl:
    description: Time to live of the deploy lock, in seconds.
    type: int
    default: 3600
  force:
    description: Redeploy where the version is already live and healthy.
    type: bool
    default: false
  probe:
    description: Arguments of M(conveyor.deploy.health_check) that prove a live release healthy (C(url), C(json_assertions)).
    type: dict
    default: {}
  stage:
    description: Arguments of M(conveyor.deploy.release) for staging (C(src), C(checksum) or C(checksum_url), ...).
    type: dict
    default: {}
  artifact_username:
    description: With O(step=prepare), the user to fetch the artifact and its checksum as (HTTP basic auth).
    type: str
    default: ""
  artifact_password:
    description: The password of O(artifact_username). Never logged, never stored in a manifest.
    type: str
    default: ""
  rollback_to:
    description: The version or release id a rollback goes to; empty means the previous good release.
    type: str
    default: ""
  prepared_var:
    description: The variable holding the host's prepare result (read by finish to know whether it holds the lock).
    type: str
    default: __rolling_prepare
  hooks:
    description:
      - How the run's C(after_stage) hooks run on the host (O(step=prepare)) - C(user) (the app user; default
        C(root)) and C(env_files) (the service's environment files), as M(conveyor.deploy.host_steps)' C(hook_user)
        and C(hook_env_files). They also get C(CONVEYOR_HOST) and C(CONVEYOR_KIND).
    type: dict
    default: {}
  censor:
    description: Values the hooks' output must never show (with the values of the C(secrets*) environment files).
    type: list
    elements: str
    default: []
  run_id:
    description: With O(step=resume), the paused run to take back; empty for whichever paused run holds the host.
    type: str
    default: ""
seealso:
  - module: conveyor.deploy.rollout_plan
  - module: conveyor.deploy.host_steps
"""

EXAMPLES = r"""
- name: Inspect, lock and stage
  conveyor.deploy.rollout_host:
    step: prepare
    probe: {url: "http://127.0.0.1:8000/health"}
    stage: {src: "https://artifacts.example.com/shop-2.0.0.tar.gz"}
  register: __rolling_prepare

- name: Mark, prune and unlock
  conveyor.deploy.rollout_host:
    step: finish
"""

RETURN = r"""
from:
  description: The live release's manifest when the host was read.
  returned: with O(step=prepare) or O(step=resolve)
  type: dict
to:
  description: The release the host goes to (release_id and version).
  returned: with O(step=prepare) or O(step=resolve)
  type: dict
back:
  description: The release the host goes back to when its gate fails.
  returned: with O(step=prepare) or O(step=resolve)
  type: dict
work:
  description: Whether the host moves.
  returned: with O(step=prepare) or O(step=resolve)
  type: bool
skip_reason:
  description: Why the host does not move.
  returned: when it does not
  type: str
locked:
  description: Whether this run holds the host's lock.
  returned: when the lock was taken
  type: bool
error:
  description: Why the host could not be prepared (the run aborts).
  returned: on error
  type: str
outcome:
  description: With O(step=finish), the host's outcome in the run.
  returned: with O(step=finish)
  type: str
paused:
  description: With O(step=resume), what the paused run's lock said (C(run_id), C(release_id), C(after_batch)...), or null.
  returned: with O(step=resume)
  type: dict
state:
  description: With O(step=resume), the state the paused run left on the host (its run object and batch records), or null.
  returned: with O(step=resume)
  type: dict
"""
