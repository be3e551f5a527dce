# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A release's database migration: run once per run, on one host, from the staged release, as the app user.

It runs after every host staged and before the first switch, with the environment the service gets (its
EnvironmentFile lines, secrets included) and a time limit; its outcome goes into the host's history and the
release's manifest. Its output is censored of every secret value before it leaves the host.
"""

from __future__ import annotations

import os
import re
import time

from ansible_collections.conveyor.deploy.plugins.module_utils._hooks import censored
from ansible_collections.conveyor.deploy.plugins.module_utils._release import (
    ReleaseError, append_history, isoformat, read_manifest, write_manifest,
)

LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def parse_env(text):
    """``{name: value}`` of systemd EnvironmentFile lines (comments, blank lines and quotes handled)."""
    found = {}
    for line in text.splitlines():
        if line.lstrip().startswith(("#", ";")):
            continue
        match = LINE.match(line)
        if not match:
            continue
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[match.group(1)] = value
    return found


def read_env(paths):
    """(environment, secret values) of the service's environment files; a missing file is skipped.

    Every value of a file whose name starts with ``secrets`` is a secret, censored in the output.
    """
    env, secrets = {}, []
    for path in paths:
        try:
            with open(path, "r") as handle:
                values = parse_env(handle.read())
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ReleaseError("Could not read the environment file %s for the migration: %s" % (path, exc.strerror))
        env.update(values)
        if os.path.basename(path).startswith("secrets"):
            secrets.extend(values.values())
    return env, secrets


def tail(text, lines=20, chars=2000):
    kept = "\n".join(text.strip().splitlines()[-lines:])
    return kept[-chars:]


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
    argv = ["timeout", "--kill-after=5", str(options["timeout"])]
    user = options.get("user") or "root"
    if user != "root":
        argv += ["runuser", "-u", user, "--"]
    argv += ["/bin/sh", "-c", command]
    started = clock()
    rc, out, err = module.run_command(argv, cwd=release_dir, environ_update=env)
    took = round(clock() - started, 2)
    output = censored(tail((out or "") + ("\n" + err if err else "")), secrets)
    outcome.update(rc=rc, duration_s=took, finished_at=isoformat(), output=output,
                   outcome="succeeded" if rc == 0 else "failed")
    manifest["migration"] = {key: outcome[key] for key in ("run_id", "rc", "duration_s", "finished_at", "outcome")}
    write_manifest(layout, release_id, manifest)
    append_history(layout, "migrate", release_id, manifest.get("version"), result="ok" if rc == 0 else "failed",
                   run_id=run_id, rc=rc, duration_s=took, irreversible=bool(outcome["irreversible"]), output=output)
    if rc != 0:
        last = output.splitlines()[-1] if output else "no output"
        if rc == 124:
            why = "did not finish within %s s" % options["timeout"]
        else:
            why = "exited %d after %s s" % (rc, took)
        raise ReleaseError("the migration %r of release %s %s: %s" % (censored(command, secrets), release_id, why,
                                                                      last[:300]), migration=outcome)
    return outcome
