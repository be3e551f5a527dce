#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollout_batch
short_description: Drain a batch, or re-enable it and judge it, in one load-balancer call
version_added: "0.2.0"
description:
  - Run once per serial batch, delegated to the load-balancer host (to the controller without one).
  - O(step=drain) re-checks the deployment window of a deploy (a closed window starts no new batch), then drains the
    batch's servers with M(conveyor.deploy.haproxy_server), whose capacity guard refuses to go below the run's
    minimum. It returns the hosts that move (RV(moving)); a refused drain moves none.
  - O(step=done) re-enables the servers that did not fail (setting the health of those whose gate passed up at once),
    judges every host of the batch from its registered M(conveyor.deploy.cutover) result (moved, reverted, failed,
    unreachable), prints one progress line (batch k of n, hosts moved, elapsed, an ETA, or the reason it stopped),
    bakes before the next batch, and returns RV(stop) when the rollout must stop.
  - When the rollout goes on, O(step=done) also drains the next batch in the same task (the window re-check and the
    capacity guard included) and returns that drain as RV(next_drain); the next batch's O(step=drain) then finds it
    and calls the load balancer only to put back a drained host that has left the play since. One load-balancer
    task per batch instead of two.
  - With C(rolling_pause_after), the O(step=done) of that batch, when it passed, drains no next batch and returns
    RV(paused) (C(after_batch), C(batches), C(at), C(canary_weight)); a canary keeps its reduced weight. The cutover
    play then ends, and the finish play keeps the run's locks. In a promoted run, the first batch's drain gives the
    canary its full weight back in the same call.
  - The run object comes from C(rolling_run); the batch is the run's batch that holds the play's current hosts.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: The load-balancer calls run in check mode and change nothing; there is no bake.
  diff_mode:
    support: full
    details: Returns the load balancer's diff.
options:
  step:
    description: V(drain) before the hosts move, V(done) after.
    type: str
    choices: [drain, done]
    required: true
  direction:
    description: V(forward) for the run's batches, V(recover) for a fleet recovery's.
    type: str
    choices: [forward, recover]
    default: forward
  drain_var:
    description: The variable holding this batch's drain result.
    type: str
    default: __rolling_drain
  cutover_var:
    description: The variable holding each host's cutover result.
    type: str
    default: __rolling_cutover
  record_var:
    description: The variable under which the done step's results of earlier batches are registered.
    type: str
    default: __rolling_batch
seealso:
  - module: conveyor.deploy.rollout_plan
  - module: conveyor.deploy.haproxy_server
"""

EXAMPLES = r"""
- name: Drain the batch
  conveyor.deploy.rollout_batch:
    step: drain
  delegate_to: lb01
  run_once: true
  register: __rolling_drain

- name: Re-enable the batch and judge it
  conveyor.deploy.rollout_batch:
    step: done
  delegate_to: lb01
  run_once: true
  register: __rolling_batch
"""

RETURN = r"""
moving:
  description: The hosts drained and to be moved.
  returned: with O(step=drain)
  type: list
  elements: str
closed:
  description: Why the window stopped the rollout before this batch, or empty.
  returned: always
  type: str
hosts:
  description: With O(step=done), each host's C(outcome), C(reason), C(gate_s), C(drain_s).
  returned: always
  type: dict
stop:
  description: Whether the rollout stops after this batch.
  returned: with O(step=done)
  type: bool
error:
  description: Why the batch did not come back (the enable call failed), or empty.
  returned: with O(step=done)
  type: str
figures:
  description: The progress figures - batch, batches, moved, hosts, elapsed_s, eta_s, stopped.
  returned: with O(step=done)
  type: dict
abort:
  description: Whether the run is an abort of a paused run (C(playbooks/abort.yml)), not an automatic rollback.
  returned: with O(step=drain)
  type: bool
paused:
  description: The pause (C(rolling_pause_after)) this batch ends the run with - C(after_batch), C(batches), C(at), C(canary_weight).
  returned: with O(step=done), when the run pauses after this batch
  type: dict
next_drain:
  description: The next batch's drain (as O(step=drain) returns it), made at the end of this one.
  returned: with O(step=done), when the rollout goes on to another batch
  type: dict
lb_window:
  description: When the load balancer was called for this batch (its drain, or its re-enable), as two epoch seconds.
  returned: always
  type: list
  elements: float
msg:
  description: The progress line.
  returned: always
  type: str
"""
