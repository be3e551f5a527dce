#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_steps
short_description: A host's steps around a rollout (inspect, probe, lock, stage, hooks; mark, prune, unlock) in one execution
version_added: "0.1.0"
description:
  - Runs, in this order and in one module execution, the steps it is given; the first step that fails ends the
    execution, and RV(failed_step) names it. Each step is what the module of the same job does
    (M(conveyor.deploy.release_info), M(conveyor.deploy.health_check), M(conveyor.deploy.deploy_lock),
    M(conveyor.deploy.release)), with the same checks and messages.
  - C(inspect) always runs first and returns the live release (RV(current)); with O(target) or
    O(target_previous_good) it also resolves and verifies a rollback target, as M(conveyor.deploy.release_info) does
    (RV(target), RV(target_problem)), and O(lock) is then taken only when the target resolved and is not the live
    release.
  - With O(skip_if_live), when the live release already is that version, is marked good and answers its health URL,
    nothing else runs and RV(skipped) says so; except when another run's lock is on the host (a run that died there
    may have left it half done), which RV(foreign_lock) returns.
  - With O(lock) and a lock of another run on the host, the lock is taken over when it expired or when
    O(lock.takeover) names its run (the controller proved that run dead), and the takeover is recorded in the host's
    history (RV(took_over)). The lock is then taken even when a rollback target is the live release, so that the
    run repairs the host. Otherwise the lock step fails and RV(lock_held) is the lock in the way.
  - M(conveyor.deploy.rollout_host) runs it once per host to prepare a deploy and once to finish it; each task costs a
    round-trip per host, so one execution instead of four is what makes those steps cheap.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
  - conveyor.deploy.hooks
attributes:
  check_mode:
    support: full
    details: Every step reports what it would do; hooks do not run.
  diff_mode:
    support: full
    details: Returns the diffs of the staging and pruning steps.
options:
  app_root:
    description: Absolute application root.
    type: path
    required: true
  run_id:
    description: The run the steps belong to (the lock token, and recorded in the history).
    type: str
    required: true
  target:
    description: A release id or version to resolve as a rollback target.
    type: str
  target_previous_good:
    description: Resolve the previous good release as the rollback target.
    type: bool
    default: false
  owner:
    description: The user that must own a rollback target's files.
    type: str
    default: root
  skip_if_live:
    description: Leave the host alone when its live release is this version, good and healthy.
    type: dict
    suboptions:
      version:
        description: The version that would be deployed.
        type: str
        required: true
      url:
        description: The health URL that must answer 200.
        type: str
        required: true
      json_assertions:
        description: JMESPath assertions on the health body, as in M(conveyor.deploy.health_check).
        type: list
        elements: dict
        default: []
  lock:
    description: Take the deploy lock for O(run_id) (as M(conveyor.deploy.deploy_lock) with O(ignore:state=present)).
    type: dict
    suboptions:
      owner:
        description: Who runs the deploy (user@controller).
        type: str
      pid:
        description: The controller process holding the run.
        type: int
      controller:
        description:
          - The controller that holds the run (C(host), C(boot_id), C(pid), C(pid_start)), recorded in the lock so
            that a later run on that controller can prove this one dead.
        type: dict
      ttl:
        description:
          - Time to live in seconds. With O(lock.renewed), the longest a live run stays silent (its heartbeats
            renew the lock), and the controller of another run takes it over once the run has been silent that long.
        type: int
        default: 3600
      renewed:
        description:
          - Where the run's heartbeats renew the lock (C(host), C(backend); M(conveyor.deploy.run_heartbeat)),
            recorded in the lock. Readers that cannot see the heartbeats judge the lock by its C(expires_at),
            O(lock.bound) seconds after it was taken.
        type: dict
      bound:
        description: With O(lock.renewed), the longest in seconds the whole run may hold the lock (its C(expires_at)).
        type: int
        default: 0
      takeover:
        description: Take over the lock of this run id (its holder is provably dead); compare-and-delete.
        type: str
      wait_younger:
        description:
          - Seconds to wait for a lock held by a run that started after this one (a run id that sorts after
            O(run_id)) to go. Of two runs started together, the younger gives up at once and releases its locks,
            the older waits and proceeds.
        type: int
        default: 0
      reason:
        description: Why O(lock.takeover) is safe, recorded in the history with the takeover.
        type: str
      resume:
        description:
          - The lock of a paused run (M(conveyor.deploy.rollout_batch)'s pause, C(rolling_pause_after)); nothing else
            runs. V(peek) returns that run's state (RV(paused), RV(state)) and changes nothing; V(take) hands the lock
            to this process (the lock's other options), once the controller has checked every host. O(run_id) names
            the paused run wanted, or is empty (V(peek) only) for whichever paused run holds the host. A host no paused
            run holds is left alone (RV(paused) is null); one held by another paused run fails, naming it.
        type: str
        choices: [peek, take]
      changelog_anchor:
        description:
          - The change log's head as the run found it (C(seq) and C(sha256) of its last record). When the lock is
            taken, a C(changelog_anchor) line with them goes into the host's history, where the log's owner cannot
            rewrite it; C(tools/conveyor-changelog verify --anchors) checks the log against it.
        type: dict
        suboptions:
          seq:
            description: The last record's sequence number (0 for an empty log).
            type: int
            required: true
          sha256:
            description: The last record's C(record_sha256).
            type: str
            required: true
  stage:
    description:
      - Stage a release, given the options of M(conveyor.deploy.release) with
        O(conveyor.deploy.release#module:state=staged) - C(release_id), C(version), C(src), C(checksum) or
        C(checksum_url), C(shared_paths) and the others - without C(app_root).
    type: dict
  artifact_username:
    description: With O(stage), the user to fetch the artifact and its checksum as (HTTP basic auth).
    type: str
  artifact_password:
    description: The password of O(artifact_username). Never logged.
    type: str
  after_stage:
    description:
      - Commands run after staging, in the staged release's directory (the after_stage extension point), as
        O(hook_user) with the variables of O(hook_env_files) and O(hook_env), and C(CONVEYOR_HOOK),
        C(CONVEYOR_RUN_ID), C(CONVEYOR_RELEASE_ID), C(CONVEYOR_VERSION) and C(CONVEYOR_APP_ROOT).
      - Each command's exit status, duration and output (censored) go into the host's history. In check mode none
        runs.
    type: list
    elements: str
    default: []
  censor:
    description: Values to replace with stars in hook and migration output.
    type: list
    elements: str
    default: []
  migrate:
    description:
      - Run the release's database migration (once per run, on one host; M(conveyor.deploy.rollout_plan) chooses
        it), in the staged release's directory, as O(migrate.user), with the service's environment files (every
        value of a file named C(secrets*) is censored in the output), bounded by O(migrate.timeout). Its outcome
        goes into the host's history (C(migrate)) and the release's manifest (C(migration)); RV(migration) returns it.
      - A migration that fails or times out fails the execution (C(failed_step=migrate)), naming the command, its
        exit status and the last line of its output. In check mode it does not run.
    type: dict
    suboptions:
      release_id:
        description: The staged release to migrate to.
        type: str
        required: true
      command:
        description: The shell command, run by C(/bin/sh -c).
        type: str
        required: true
      user:
        description: The user to run it as (the app user).
        type: str
        default: root
      env_files:
        description: The service's environment files (C(KEY=value) lines), read in order; a missing one is skipped.
        type: list
        elements: path
        default: []
      timeout:
        description: Seconds the migration may run.
        type: int
        default: 600
      previous_version:
        description: The version live before this run (C(CONVEYOR_PREVIOUS_VERSION) in its environment).
        type: str
  marks:
    description: Releases to mark, in order (as M(conveyor.deploy.release) with O(conveyor.deploy.release#module:state=good) or C(failed)).
    type: list
    elements: dict
    default: []
    suboptions:
      release_id:
        description: The release.
        type: str
        required: true
      state:
        description: Its new state.
        type: str
        choices: [good, failed]
        required: true
      reason:
        description: Why, recorded in its manifest and the history.
        type: str
  prune:
    description: After marking, keep this many releases and remove the older ones (0 prunes nothing).
    type: int
    default: 0
  unlock:
    description: Release the deploy lock held by O(run_id) (a lock of another run is left alone and reported).
    type: bool
    default: false
  pause:
    description:
      - Keep the lock of O(run_id) while the run is paused, instead of O(unlock). The lock then names no process
        and no heartbeat, so no run takes it over before it expires; the checklist and C(verify.yml) report it.
    type: dict
    suboptions:
      ttl:
        description: Seconds the pause holds the lock (C(rolling_pause_ttl)); after that it expires like any lock.
        type: int
        required: true
      state:
        description:
          - What C(playbooks/promote.yml) and C(playbooks/abort.yml) continue from (the run object and its batch
            records), kept next to the lock in a file only root reads.
        type: dict
        required: true
seealso:
  - module: conveyor.deploy.rollout_host
  - module: conveyor.deploy.release
  - module: conveyor.deploy.deploy_lock
"""

EXAMPLES = r"""
- name: Prepare - inspect, lock and stage in one round-trip
  conveyor.deploy.host_steps:
    app_root: /opt/shop
    run_id: 20261202T010000Z-2.0.0-1a2b3c
    skip_if_live: {version: 2.0.0, url: "http://127.0.0.1:8000/health"}
    lock: {owner: deploy@ci, ttl: 900}
    stage:
      release_id: 20261202T010000Z-2.0.0
      version: 2.0.0
      src: https://artifacts.example.com/shop-2.0.0.tar.gz
      checksum_url: https://artifacts.example.com/shop-2.0.0.tar.gz.sha256

- name: Finish - mark good, prune and unlock
  conveyor.deploy.host_steps:
    app_root: /opt/shop
    run_id: 20261202T010000Z-2.0.0-1a2b3c
    marks: [{release_id: 20261202T010000Z-2.0.0, state: good}]
    prune: 5
    unlock: true
"""

RETURN = r"""
current:
  description: The live release's manifest when the host was read (empty when none).
  returned: always
  type: dict
target:
  description: The resolved rollback target's manifest, or null.
  returned: with O(target) or O(target_previous_good)
  type: dict
target_problem:
  description: Why no target resolved.
  returned: with O(target) or O(target_previous_good)
  type: str
target_crosses:
  description:
    - The releases that going back to RV(target) would go back past and whose database migration cannot be undone
      (C(release_id), C(version), C(why)); they went live here after the target last did.
  returned: with O(target) or O(target_previous_good)
  type: list
  elements: dict
migration:
  description:
    - The migration's outcome (C(outcome) C(succeeded), C(failed) or C(would run), C(rc), C(duration_s),
      C(output) censored, C(irreversible) why its migration cannot be undone or empty, C(release_id), C(version)).
  returned: with O(migrate)
  type: dict
skipped:
  description: Why nothing else ran (the live release already is the version and healthy).
  returned: when O(skip_if_live) matched
  type: str
locked:
  description: Whether the lock is now held by this run.
  returned: with O(lock)
  type: bool
foreign_lock:
  description: The lock of another run found on the host before this run's lock step.
  returned: with O(lock), when another run's lock was there
  type: dict
took_over:
  description: The lock that was taken over (C(run_id), C(reason), C(lock)).
  returned: when a lock was taken over
  type: dict
lock_held:
  description: The lock of another run that could not be taken over.
  returned: when the lock step failed on another run's lock
  type: dict
paused:
  description:
    - With O(lock.resume), what the lock of the paused run said (C(run_id), C(release_id), C(version),
      C(after_batch), C(batches), C(at)), or null when no paused run held the host. With O(pause), whether the lock
      is now kept for the paused run.
  returned: with O(lock.resume) or O(pause)
  type: raw
state:
  description: With O(lock.resume), the paused run's state (its run object and batch records), or null.
  returned: with O(lock.resume)
  type: dict
release:
  description: The staged release's manifest.
  returned: with O(stage)
  type: dict
steps:
  description: Each step that ran, with offsets in seconds from the module's start and whether it failed.
  returned: always
  type: list
  elements: dict
  sample: [{name: inspect, start_s: 0.0, end_s: 0.004, failed: false}, {name: stage, start_s: 0.01, end_s: 0.2, failed: false}]
failed_step:
  description: The step that failed.
  returned: on failure
  type: str
problems:
  description: What went wrong in a finishing step that did not stop the others (a mark, the prune, the unlock).
  returned: always
  type: list
  elements: str
msg:
  description: What happened, one clause per step.
  returned: always
  type: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.conveyor.deploy.plugins.module_utils._health import HAS_JMESPATH, compile_assertions
from ansible_collections.conveyor.deploy.plugins.module_utils._hooks import HOOK_OPTIONS, run_point
from ansible_collections.conveyor.deploy.plugins.module_utils._lock import acquire, read_lock, release as release_lock
from ansible_collections.conveyor.deploy.plugins.module_utils._probe import probe_http
from ansible_collections.conveyor.deploy.plugins.module_utils._release import (
    Layout, ReleaseError, app_root_problem, append_history,
)
from ansible_collections.conveyor.deploy.plugins.module_utils import _lock, _migration, _release_ops


class StepFailed(Exception):
    def __init__(self, step, msg):
        super().__init__(msg)
        self.step = step
        self.msg = msg


class Steps(object):
    """The steps of one execution, timed, with what each returned."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.layout = Layout(os.path.normpath(self.params["app_root"]))
        self.origin = time.monotonic()
        self.timeline = []
        self.result = dict(changed=False, current={}, problems=[], steps=self.timeline)
        self.said = []
        self.diffs = []

    def timed(self, name, func, *args):
        start = time.monotonic()
        failed = True
        try:
            value = func(*args)
            failed = False
            return value
        except ReleaseError as exc:
            raise StepFailed(name, exc.msg)
        except (IOError, OSError) as exc:
            raise StepFailed(name, "could not %s under %s: %s. Run the task with become (root) and check the disk."
                             % (name, self.layout.root, to_native(exc)))
        finally:
            self.timeline.append(dict(name=name, start_s=round(start - self.origin, 3),
                                      end_s=round(time.monotonic() - self.origin, 3), failed=failed))

    def took(self, answer):
        if answer.get("changed"):
            self.result["changed"] = True
        if answer.get("diff"):
            self.diffs.append(answer["diff"])
        if answer.get("msg"):
            self.said.append(answer["msg"])
        return answer

    def inspect(self):
        params = self.params
        found = _release_ops.inspect(dict(app_root=self.layout.root, target=params["target"],
                                          target_previous_good=params["target_previous_good"], owner=params["owner"]))
        self.result["current"] = found["current"] or {}
        if "target" in found:
            self.result.update(target=found["target"], target_problem=found["target_problem"],
                               target_crosses=found["target_crosses"])

    def moving(self):
        """Whether a rollback target resolved and differs from the live release (no target asked: True)."""
        if "target" not in self.result:
            return True
        target = self.result["target"] or {}
        return bool(target) and target.get("release_id") != self.result["current"].get("release_id")

    def live_and_healthy(self, wanted):
        current = self.result["current"]
        if current.get("version") != wanted["version"] or current.get("state") != "good":
            return None
        probe = dict(url=wanted["url"], method="GET", headers={}, body=None, request_timeout=5.0, validate_certs=True,
                     ca_path=None, status_codes=[200], body_regex=None)
        try:
            compiled = compile_assertions(wanted["json_assertions"])
        except ValueError as exc:
            raise ReleaseError("Invalid skip_if_live.%s." % exc)
        ok, dummy_status, latency, reason = probe_http(probe, compiled, None)
        if ok:
            return "already runs %s and is healthy" % wanted["version"]
        self.said.append("live %s does not answer its health URL (%s): deploying it again" % (wanted["version"], reason))
        return None

    def foreign_lock(self):
        """The lock of another run on this host, or None."""
        held = read_lock(self.layout.lock)
        if held is None or held.get("run_id") == self.params["run_id"]:
            return None
        self.result["foreign_lock"] = held
        return held

    def lock(self, options):
        params = dict(options, run_id=self.params["run_id"], force=False)
        anchor = params.pop("changelog_anchor", None)
        try:
            answer = self.took(acquire(self.layout, params, self.module.check_mode))
        except ReleaseError as exc:
            if exc.context.get("lock"):
                self.result["lock_held"] = exc.context["lock"]
            raise
        if anchor and answer.get("changed") and not self.module.check_mode:
            # The change log's head as this run found it, kept where the log's owner cannot rewrite it.
            append_history(self.layout, "changelog_anchor", run_id=self.params["run_id"], seq=anchor["seq"],
                           sha256=anchor["sha256"])
        if answer.get("took_over"):
            self.result["took_over"] = {"run_id": (answer.get("previous") or {}).get("run_id"),
                                        "reason": answer["took_over"], "lock": answer.get("previous")}
        self.result["locked"] = not self.module.check_mode

    def stage(self, options):
        if self.params["artifact_username"]:
            options = dict(options, url_username=self.params["artifact_username"],
                           url_password=self.params["artifact_password"])
        params = staging_params(options, self.layout.root, self.params["run_id"])
        if params.get("validate_certs") is False:
            # fetch_url reads validate_certs from the module's own options.
            self.module.params["validate_certs"] = False
        answer = self.took(_release_ops.run(self.module, params))
        self.result["release"] = answer.get("release")
        return params

    def after_stage(self, staged):
        params = self.params
        env = dict(params["hook_env"], CONVEYOR_RUN_ID=params["run_id"], CONVEYOR_VERSION=staged["version"],
                   CONVEYOR_RELEASE_ID=staged["release_id"], CONVEYOR_APP_ROOT=self.layout.root,
                   CONVEYOR_PREVIOUS_VERSION=(self.result.get("current") or {}).get("version") or "")
        options = dict(user=params["hook_user"], env_files=params["hook_env_files"], timeout=params["hook_timeout"],
                       censor=params["censor"])
        problem = run_point(self.module, self.layout, "after_stage", params["after_stage"], staged, options, env)
        if problem:
            raise ReleaseError(problem)

    def migrate(self, options):
        options = dict(options, censor=self.params["censor"])
        try:
            self.result["migration"] = _migration.run(self.module, self.layout, options, self.params["run_id"],
                                                      self.module.check_mode)
        except ReleaseError as exc:
            if exc.context.get("migration"):
                self.result["migration"] = exc.context["migration"]
            raise
        if not self.module.check_mode:
            self.result["changed"] = True
        self.said.append("migration of %s %s in %s s" % (
            options["release_id"], self.result["migration"]["outcome"], self.result["migration"]["duration_s"]))

    def finishing(self, name, func, *args):
        """A finishing step: its failure is reported and the next steps still run (the lock is still released)."""
        try:
            return self.timed(name, func, *args)
        except StepFailed as exc:
            self.result["problems"].append("%s: %s" % (name, exc.msg))
            return None

    def mark(self, mark):
        params = dict(_release_ops_defaults(), app_root=self.layout.root, state=mark["state"],
                      release_id=mark["release_id"], reason=mark["reason"], run_id=self.params["run_id"])
        self.took(_release_ops.run(self.module, params))

    def prune(self):
        params = dict(_release_ops_defaults(), app_root=self.layout.root, state="pruned", keep=self.params["prune"],
                      run_id=self.params["run_id"])
        self.took(_release_ops.run(self.module, params))

    def unlock(self):
        params = dict(run_id=self.params["run_id"], force=False, reason=None)
        self.took(release_lock(self.layout, params, self.module.check_mode))

    def pause(self, options):
        self.took(_lock.pause(self.layout, self.params["run_id"], options["ttl"], options["state"],
                              self.module.check_mode))
        self.result["paused"] = not self.module.check_mode

    def resume(self, options):
        peek = options["resume"] == "peek"
        answer = _lock.resume(self.layout, self.params["run_id"], options, self.module.check_mode or peek)
        if not peek:
            self.took(answer)
        self.result.update(paused=answer.get("paused"), state=answer.get("state") if peek else None,
                           locked=bool(answer.get("paused")) and not self.module.check_mode and not peek)

    def run(self):
        params = self.params
        self.timed("inspect", self.inspect)
        foreign = self.foreign_lock() if params["lock"] is not None else None
        if params["skip_if_live"] and foreign is None:
            reason = self.timed("probe", self.live_and_healthy, params["skip_if_live"])
            if reason:
                self.result["skipped"] = reason
                self.said.append(reason)
                return
        if params["lock"] is not None and params["lock"]["resume"]:
            # promote.yml and abort.yml: read the paused run's state, then take back its lock.
            self.timed("lock", self.resume, params["lock"])
            return
        if params["lock"] is not None and (self.moving() or foreign is not None):
            self.timed("lock", self.lock, params["lock"])
        if params["stage"] is not None:
            staged = self.timed("stage", self.stage, params["stage"])
            if params["after_stage"] and self.module.check_mode:
                self.said.append("would run the after_stage hooks (%d commands)" % len(params["after_stage"]))
            elif params["after_stage"]:
                self.timed("after_stage", self.after_stage, staged)
        if params["migrate"] is not None:
            self.timed("migrate", self.migrate, params["migrate"])
        for mark in params["marks"]:
            self.finishing("mark", self.mark, mark)
        if params["prune"]:
            self.finishing("prune", self.prune)
        if params["pause"] is not None:
            # A paused run keeps its lock (its finish does not unlock): a failure here fails the task.
            self.timed("pause", self.pause, params["pause"])
        elif params["unlock"]:
            self.finishing("unlock", self.unlock)


def _release_ops_defaults():
    return dict((name, spec.get("default")) for name, spec in _release_ops.ARGUMENT_SPEC.items())


def staging_params(options, app_root, run_id):
    """The release module's options for staging, from ``options``, checked as that module checks its own."""
    given = dict(options, app_root=app_root, state="staged")
    given.setdefault("run_id", run_id)
    validator = ArgumentSpecValidator(_release_ops.ARGUMENT_SPEC, mutually_exclusive=[("checksum", "checksum_url")],
                                      required_if=[("state", "staged", ("release_id", "src", "version"))])
    checked = validator.validate(given)
    if checked.error_messages:
        raise ReleaseError("Could not stage: %s." % "; ".join(checked.error_messages))
    return checked.validated_parameters


def main():
    module = AnsibleModule(
        argument_spec=dict(
            app_root=dict(type="path", required=True),
            run_id=dict(type="str", required=True),
            target=dict(type="str"),
            target_previous_good=dict(type="bool", default=False),
            owner=dict(type="str", default="root"),
            skip_if_live=dict(type="dict", options=dict(
                version=dict(type="str", required=True),
                url=dict(type="str", required=True),
                json_assertions=dict(type="list", elements="dict", default=[]),
            )),
            lock=dict(type="dict", options=dict(
                owner=dict(type="str"),
                pid=dict(type="int"),
                controller=dict(type="dict"),
                ttl=dict(type="int", default=3600),
                renewed=dict(type="dict"),
                bound=dict(type="int", default=0),
                takeover=dict(type="str"),
                wait_younger=dict(type="int", default=0),
                reason=dict(type="str"),
                resume=dict(type="str", choices=["peek", "take"]),
                changelog_anchor=dict(type="dict", options=dict(
                    seq=dict(type="int", required=True),
                    sha256=dict(type="str", required=True),
                )),
            )),
            stage=dict(type="dict"),
            artifact_username=dict(type="str"),
            artifact_password=dict(type="str", no_log=True),
            after_stage=dict(type="list", elements="str", default=[]),
            **HOOK_OPTIONS,
            censor=dict(type="list", elements="str", default=[], no_log=True),
            migrate=dict(type="dict", options=dict(
                release_id=dict(type="str", required=True),
                command=dict(type="str", required=True),
                user=dict(type="str", default="root"),
                env_files=dict(type="list", elements="path", default=[]),
                timeout=dict(type="int", default=600),
                previous_version=dict(type="str"),
            )),
            marks=dict(type="list", elements="dict", default=[], options=dict(
                release_id=dict(type="str", required=True),
                state=dict(type="str", choices=["good", "failed"], required=True),
                reason=dict(type="str"),
            )),
            prune=dict(type="int", default=0),
            unlock=dict(type="bool", default=False),
            pause=dict(type="dict", options=dict(
                ttl=dict(type="int", required=True),
                state=dict(type="dict", required=True),
            )),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = app_root_problem(params["app_root"])
    if problem:
        module.fail_json(msg="Invalid app_root %r: it %s. Use a directory of the application's own, such as /opt/myapp."
                         % (params["app_root"], problem))
    if params["lock"] is not None and params["lock"]["ttl"] < 1:
        module.fail_json(msg="Invalid lock.ttl %d: give the lock's time to live in seconds (at least 1)."
                         % params["lock"]["ttl"])
    if params["prune"] < 0:
        module.fail_json(msg="Invalid prune %d: give how many releases to keep (0 prunes nothing)." % params["prune"])
    if (params["skip_if_live"] or {}).get("json_assertions") and not HAS_JMESPATH:
        module.fail_json(msg="skip_if_live.json_assertions need jmespath on the host: install python3-jmespath.")
    steps = Steps(module)
    try:
        steps.run()
    except StepFailed as exc:
        # A hook's message names its extension point already.
        steps.result.update(failed_step=exc.step, msg=exc.msg if exc.step == "after_stage" else "%s: %s" % (exc.step, exc.msg))
        module.fail_json(**steps.result)
    result = steps.result
    result["msg"] = "; ".join(steps.said + result["problems"]) or "nothing to do"
    if steps.diffs and module._diff:
        result["diff"] = steps.diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
