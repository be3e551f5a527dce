#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollout_plan
short_description: Build a run's plan (the run object) once, on the controller
version_added: "0.2.0"
description:
  - O(step=plan) (run once) validates the run's inputs and fixes its identity and policy - the run id (the UTC second
    and a random part; it is also the lock token and the id the change log and notify report), the kind, the actor
    (the AWX user when AWX launched the job, else the local user, at the controller), the release id of a deploy, the
    batches, the capacity guard, the failure policy, the bake, the deployment windows and the load balancer.
    It fails, before any host is touched, naming every bad input.
  - O(step=commit) (run once, after M(conveyor.deploy.rollout_host) prepared or resolved every host) completes the
    run object from what each host reported - its move (from, to and back), whether it moves, and the batches as
    host lists of the hosts that move. A host that could not be prepared, or hosts that disagree on a rollback
    target, abort the run (RV(aborted)); the finish play then releases the locks and fails the run.
  - Hosts whose lock was taken over from a run that died (RV(takeovers)) move first; when there are such hosts, the
    commit reads the backend once (the task is delegated to the load balancer) so that those the dead run left out of
    rotation go before the others.
  - Register the commit step as C(rolling_run); the rollout plays, the lookup M(conveyor.deploy.rollout) and the other
    rollout steps read it, and nothing rebuilds it.
  - With a load balancer, O(step=plan) runs delegated to it - M(conveyor.deploy.run_heartbeat) records the run's first
    heartbeat and reads every other run's last (RV(heartbeat)); a lock whose run has been silent for longer than its
    time to live is then taken over. A load balancer that does not answer refuses the run, naming it.
  - O(step=migrate) (run once, after the commit, delegated to the host in RV(migration)) runs the deploy's database
    migration there with M(conveyor.deploy.host_steps) (O(migrate)), and returns the run object again with its
    outcome (RV(migration)); a failed migration aborts the run (RV(aborted)), nothing live changed, and the release
    is then marked failed on every host that staged it. Without a migration it touches no host.
  - O(step=resume) (run once, after M(conveyor.deploy.rollout_host) O(conveyor.deploy.rollout_host#module:step=resume)
    on every host, delegated to the load balancer) rebuilds the paused run's object from what the hosts returned, to
    promote it (O(resume=promote), the batches after the pause) or abort it (O(resume=abort), the hosts it moved go
    back). It fails naming the problem when no paused run holds the hosts, when they hold different ones, or when a
    host of the run no longer does.
  - An action plugin that runs on the controller; it contacts no host but the load balancer and the migration host.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
attributes:
  check_mode:
    support: full
    details: It changes nothing anywhere, so it runs normally in check mode.
  diff_mode:
    support: none
options:
  step:
    description: V(plan) before the hosts are prepared, V(commit) after, V(migrate) after the commit; V(resume) to take back a paused run.
    type: str
    choices: [plan, commit, migrate, resume]
    default: plan
  kind:
    description: The kind of run.
    type: str
    choices: [deploy, rollback]
    default: deploy
  version:
    description: The version a deploy brings (letters, digits and C(.+_~-)).
    type: str
  release_id:
    description: The release directory's name; by default C(<UTC second>-<version>).
    type: str
  reason:
    description: Why (a rollback's reason, required in production; an abort's reason with O(step=resume)).
    type: str
    default: ""
  app_root:
    description: Absolute application root on the hosts.
    type: str
    default: ""
  batches:
    description: Batch sizes as for C(serial) (numbers or percentages; the last repeats).
    type: raw
    default: [1, "25%", "100%"]
  min_healthy_percent:
    description: Share of the load balancer's backends that must keep serving while a batch is drained.
    type: float
    default: 50
  failure_policy:
    description: After a failed batch, V(rollback_fleet) moves the earlier batches back; V(halt) leaves them.
    type: str
    choices: [rollback_fleet, halt]
    default: rollback_fleet
  bake_seconds:
    description: Seconds to wait after each batch but the last.
    type: float
    default: 0
  analysis:
    description:
      - The analysis of live traffic between batches (the role's C(rolling_analysis)). Keys C(enabled), C(seconds),
        C(min_requests), C(max_error_ratio), C(max_latency_ratio), C(min_latency_delta_ms), C(max_latency_ms) and
        C(inconclusive); an unknown key or a value out of range is refused, naming it. A deploy only.
    type: raw
    default: {}
  canary:
    description:
      - The canary (C(enabled), C(weight) in percent of the server's weight, C(seconds)). It turns the analysis on.
    type: dict
    default: {}
  watch_seconds:
    description: How long the analysis goes on over the whole fleet after the last batch (0 for none).
    type: raw
    default: 0
  pause_after:
    description:
      - V(canary) (the first batch; needs the canary) or the number of the batch after which the deploy pauses, its locks
        held (C(rolling_pause_after)); empty for none. Not in an emergency deploy.
    type: raw
    default: ""
  pause_ttl:
    description: Seconds a paused run keeps its locks (at least 60).
    type: int
    default: 86400
  resume:
    description: With O(step=resume), V(promote) or V(abort) the paused run.
    type: str
    choices: [promote, abort]
    default: promote
  run_id:
    description: With O(step=resume), the paused run wanted; empty for whichever holds the hosts.
    type: str
    default: ""
  fleet_size:
    description: How many backends the load balancer has (a run limited to some hosts counts the others as serving).
    type: int
  lb:
    description: The load balancer - C(enabled), C(host) (inventory host), C(backend), C(socket).
    type: dict
    default: {}
  drain_timeout:
    description: Seconds to wait for a drained batch's sessions to end.
    type: float
    default: 60
  up_timeout:
    description: Seconds to wait for a re-enabled batch to serve.
    type: float
    default: 60
  mark_up:
    description: Set the re-enabled servers' health up at once (their gate has just passed).
    type: bool
    default: true
  windows:
    description:
      - Deployment windows (M(conveyor.deploy.deploy_window)), re-checked before each batch of a deploy. A malformed
        spec (no day, an unknown day, an unquoted time, a freeze that ends before it starts) is refused here.
    type: raw
    default: {}
  window_now:
    description:
      - An injected time for the window; it advances with the run. Refused in production (C(is_production) in
        O(inputs)), whose window is judged by the controller's clock; elsewhere the change log records it.
    type: str
    default: ""
  approval:
    description:
      - Where a production deploy's approval is read from - the options C(change_id), C(approver), C(expires_at),
        C(source), C(path), C(url), C(url_token), C(ca_path) and C(timeout) of M(conveyor.deploy.approval).
      - In production the plan judges the window (at the controller's clock) and this approval itself and keeps the
        verdicts in RV(gates); every host refuses to prepare while either refuses, whatever the checklist ran.
    type: dict
    default: {}
  override_reason:
    description: An emergency override of the window.
    type: str
    default: ""
  environment:
    description: The environment's name, for messages.
    type: str
    default: this environment
  keep_releases:
    description: Releases each host keeps after a successful deploy.
    type: int
    default: 5
  smoke_url:
    description:
      - URL answering the bare version through the load balancer, requested after a rollback.
      - Empty with O(smoke.lb_url) set means the URL and the proof come from O(smoke).
    type: str
    default: ""
  smoke:
    description:
      - The smoke test after a rollback, proved as the health gate proves a host (see M(conveyor.deploy.cutover)'s
        O(conveyor.deploy.cutover#module:health.version_from)) but through the load balancer.
      - The request goes to O(smoke.lb_url) plus the health path (or the path of O(smoke.version_url) for the body
        proof); the process proof, which needs the host, is the status alone there.
    type: dict
    default: {}
    suboptions:
      lb_url:
        description: The load balancer's base URL, for example C(http://127.0.0.1:8080). Empty skips the smoke test.
        type: str
      health_path:
        description: The health path on every host.
        type: str
        default: /health
      version_from:
        description: As the gate's (V(json), V(header), V(body), V(process), V(none)).
        type: str
        default: json
      version_query:
        description: The JMESPath query of the version, for V(json).
        type: str
      version_header:
        description: The header carrying the version, for V(header).
        type: str
      version_regex:
        description: The regular expression whose first group is the version, for V(body).
        type: str
      version_url:
        description: The URL whose body names the version, for V(body); only its path is used.
        type: str
  smoke_requests:
    description: Requests of the smoke test.
    type: int
    default: 10
  not_release_fault:
    description: A rollback leaves the release it leaves unmarked (not failed).
    type: bool
    default: false
  inputs:
    description:
      - Values to validate, for messages that name the variable - C(artifact_url), C(artifact_sha256),
        C(is_production), C(allow_unverified), C(lb_host_known), C(migrate_maintenance).
    type: dict
    default: {}
  prepared:
    description: The variable under which each host registered its M(conveyor.deploy.rollout_host) result.
    type: str
    default: __rolling_prepare
  migrate:
    description:
      - The deploy's database migration - with O(step=plan) whether there is one (O(migrate.command)) and where it
        may run (O(migrate.group_hosts)); with O(step=migrate) how to run it.
    type: dict
    default: {}
    suboptions:
      command:
        description: The shell command; empty means no migration.
        type: str
        default: ""
      group_hosts:
        description: The hosts of the migration group; the first of them that moves runs it, else the first host of the first batch.
        type: list
        elements: str
        default: []
      user:
        description: The user it runs as.
        type: str
        default: root
      env_files:
        description: The service's environment files it reads.
        type: list
        elements: str
        default: []
      timeout:
        description: Seconds it may run.
        type: int
        default: 600
      censor:
        description: Values never shown in its output.
        type: list
        elements: str
        default: []
      maintenance:
        description: The maintenance page the load balancer showed while it ran (recorded with the migration).
        type: str
        default: ""
      maintenance_error:
        description: Why the load balancer could not show that page; the run then aborts before migrating.
        type: str
        default: ""
  hooks:
    description:
      - The extension points, each a list of shell commands (C(rolling_hooks)); unknown points are refused, naming them.
      - A rollback keeps only C(at_end), C(on_failure) and C(on_rollback). In check mode the commit step lists the
        hooks that would run.
    type: dict
    default: {}
  hook_tasks:
    description:
      - Ansible task files for the points C(after_batch), C(at_end), C(on_failure) and C(on_rollback)
        (C(rolling_hook_tasks)); a relative path is looked for in O(hook_task_dirs), in order. A missing file or
        another point is refused, naming it. The run object keeps their absolute paths (C(hook_tasks)).
    type: raw
    default: {}
  hook_task_dirs:
    description: Where a relative task file of O(hook_tasks) is looked for (the inventory's, then the playbook's directory).
    type: list
    elements: str
    default: []
  past_migration_reason:
    description:
      - With O(kind=rollback), why going back past a release whose database migration cannot be undone is fine; without
        it such a host refuses. Recorded in the run object (RV(past_migration)) and the change log.
    type: str
    default: ""
seealso:
  - module: conveyor.deploy.rollout_host
  - module: conveyor.deploy.rollout_batch
  - module: conveyor.deploy.rollout_report
"""

EXAMPLES = r"""
- name: Plan the run
  conveyor.deploy.rollout_plan:
    kind: deploy
    version: "{{ app_version }}"
    app_root: /opt/shop
    batches: [1, "25%"]
    lb: {enabled: true, host: lb01, backend: shop, socket: /run/haproxy/admin.sock}
  run_once: true
  register: __rolling_plan

- name: Prepare each host
  conveyor.deploy.rollout_host:
    step: prepare
    stage: {src: "https://artifacts.example.com/shop-{{ app_version }}.tar.gz"}
  register: __rolling_prepare

- name: Complete the plan
  conveyor.deploy.rollout_plan:
    step: commit
  run_once: true
  register: rolling_run
"""

RETURN = r"""
run:
  description: With O(step=plan), the run object so far (no moves or batches yet).
  returned: when O(step=plan)
  type: dict
run_id:
  description: The run's id (also its lock token).
  returned: when O(step=commit)
  type: str
  sample: 20261201T101500Z-3f9a1c2b
kind:
  description: deploy or rollback.
  returned: when O(step=commit)
  type: str
actor:
  description: Who runs it, C(user@controller).
  returned: when O(step=commit)
  type: str
  sample: alice@ci01
moves:
  description: Each host's move - C(from), C(to), C(back) (release_id and version), C(lb_name), C(skip_reason).
  returned: when O(step=commit)
  type: dict
takeovers:
  description: The runs that died whose locks this run took over - C(run_id), C(reason), C(owner), C(started_at), C(hosts).
  returned: when O(step=commit)
  type: list
  elements: dict
gates:
  description:
    - Production's window and approval as the plan judged them - C(enforced) (whether this is a production deploy),
      C(window) (C(allowed), C(overridden), C(rule), C(reason)), C(approval) (C(valid), C(reason), C(change_id),
      C(approver)) and C(refused) (why no host may prepare, or empty).
  returned: when O(step=commit)
  type: dict
changelog_anchor:
  description:
    - The change log's head when the run started (C(seq), C(sha256)), or null without the changelog callback. Every
      host the run locks keeps it in its history, where C(playbooks/changelog_verify.yml) finds it.
  returned: when O(step=commit)
  type: dict
migration:
  description:
    - The deploy's migration - C(configured), C(host) (where it runs, or null), and after O(step=migrate) its
      C(outcome) (C(succeeded), C(failed), C(would run)), C(rc), C(duration_s), C(irreversible) (why it cannot be
      undone, or empty) and C(error).
  returned: when O(step=commit) or O(step=migrate)
  type: dict
past_migration:
  description: A rollback that goes back past migrations that cannot be undone - C(reason) and C(releases) (with C(hosts)).
  returned: when such a rollback was allowed
  type: dict
lock:
  description: How the run's locks live - C(renewed) (C(host), C(backend) of the load balancer whose heartbeats renew them, or null) and C(bound_s).
  returned: always
  type: dict
heartbeat:
  description: Every run's last heartbeat on the load balancer when this run was planned - C(host), C(read_at), C(beats) (run id to time); null without one.
  returned: always
  type: dict
out_of_rotation:
  description:
    - A deploy's backend servers that were drained or in maintenance when it was planned (read on the load
      balancer). Such a host is not skipped when it already runs the version healthily - its batch puts it back.
  returned: always
  type: list
  elements: str
hook_tasks:
  description: The task files of the run's extension points (O(hook_tasks)), by point, as absolute paths.
  returned: always
  type: dict
controller:
  description: The ansible-playbook process of the run (C(host), C(boot_id), C(pid), C(pid_start)), as its locks record it.
  returned: when O(step=commit)
  type: dict
work:
  description: The hosts that move, in order.
  returned: when O(step=commit)
  type: list
  elements: str
batches:
  description: The batches, as lists of hosts.
  returned: when O(step=commit)
  type: list
  elements: list
  sample: [[app01], [app02, app03]]
aborted:
  description: Why the run stopped before any cutover, or empty.
  returned: when O(step=commit)
  type: str
policy:
  description: The policy the run follows (batches, capacity, failure policy, bake, windows, timeouts).
  returned: when O(step=commit)
  type: dict
msg:
  description: What will happen, in one line.
  returned: always
  type: str
"""
