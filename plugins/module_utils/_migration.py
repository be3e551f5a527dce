# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A release's database migration: run once per run, on one host, from the staged release, as the app user.

It runs after every host staged and before the first switch, with the environment the service gets (its
EnvironmentFile lines, secrets included) and a time limit; its outcome goes into the host's history and the
release's manifest. Its output is censored of every secret value before it leaves the host.
"""

from __future__ import annotations

import time

from ansible_collections.conveyor.deploy.plugins.module_utils._hooks import failure, read_env, run_as_app
from ansible_collections.conveyor.deploy.plugins.module_utils._release import (
    ReleaseError, append_history, isoformat, read_manifest, write_manifest,
)


def run(module, layout, options, run_id, check_mode=False, clock=time.monotonic):
    """Run the migration of ``options["release_id"]`` (host_steps' ``migrate`` option); the outcome.

    Raises ReleaseError naming the command, its exit status or time limit and the end of its output.
    """
    release_id = options["release_id"]
    release_dir = layout.release_dir(release_id)
    manifest = read_manifest(release_dir)
    if manifest is None:
        raise ReleaseError("Cannot migrate: release %s is not staged on this host." % release_id)
    command = options["command"]
    outcome = {"run_id": run_id, "release_id": release_id, "version": manifest.get("version"),
               "irreversible": manifest.get("migration_irreversible") or ""}
    if check_mode:
        return dict(outcome, outcome="would run", duration_s=0.0)
    env, secrets = read_env(options["env_files"])
    secrets = secrets + list(options.get("censor") or [])
    env.update({"CONVEYOR_HOOK": "migrate", "CONVEYOR_RUN_ID": run_id, "CONVEYOR_RELEASE_ID": release_id,
                "CONVEYOR_VERSION": str(manifest.get("version") or ""),
                "CONVEYOR_PREVIOUS_VERSION": str(options.get("previous_version") or ""),
                "CONVEYOR_APP_ROOT": layout.root})
    rc, output, took = run_as_app(module, command, release_dir, env, options.get("user") or "root",
                                  options["timeout"], secrets, clock=clock)
    outcome.update(rc=rc, duration_s=took, finished_at=isoformat(), output=output,
                   outcome="succeeded" if rc == 0 else "failed")
    manifest["migration"] = {key: outcome[key] for key in ("run_id", "rc", "duration_s", "finished_at", "outcome")}
    write_manifest(layout, release_id, manifest)
    append_history(layout, "migrate", release_id, manifest.get("version"), result="ok" if rc == 0 else "failed",
                   run_id=run_id, rc=rc, duration_s=took, irreversible=bool(outcome["irreversible"]), output=output)
    if rc != 0:
        raise ReleaseError(failure("the migration", command, rc, took, output, options["timeout"], secrets,
                                   where=" of release %s" % release_id), migration=outcome)
    return outcome
