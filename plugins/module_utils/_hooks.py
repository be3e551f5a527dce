# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The app's own commands on a host: hooks at the rollout's extension points, and the migration.

Each runs in a release's directory, as the app user, with the environment the service gets (its
EnvironmentFile lines, secrets included) plus variables naming the run, bounded by a time limit. Its output
is censored of every secret value before it leaves the host, and kept in the host's history.
"""

from __future__ import annotations

import os
import re
import time

from ansible_collections.conveyor.deploy.plugins.module_utils._release import ReleaseError, append_history

# The options of the modules that run hooks (documented by the conveyor.deploy.hooks doc fragment).
HOOK_OPTIONS = dict(
    hook_timeout=dict(type="int", default=300),
    hook_user=dict(type="str", default="root"),
    hook_env_files=dict(type="list", elements="path", default=[]),
    hook_env=dict(type="dict", default={}),
)
LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def censored(text, secrets):
    """``text`` with every secret (of at least 4 characters) replaced by stars."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "********")
    return text


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
            with open(path, "r", encoding="utf-8", errors="replace") as handle:
                values = parse_env(handle.read())
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ReleaseError("Could not read the environment file %s: %s" % (path, exc.strerror))
        env.update(values)
        if os.path.basename(path).startswith("secrets"):
            secrets.extend(values.values())
    return env, secrets


def tail(text, lines=20, chars=2000):
    kept = "\n".join(text.strip().splitlines()[-lines:])
    return kept[-chars:]


def run_as_app(module, command, cwd, env, user, timeout, secrets, clock=time.monotonic):
    """Run ``command`` with /bin/sh in ``cwd`` as ``user`` (root runs it directly), bounded by ``timeout`` seconds.

    Returns (exit status, the end of its output censored of ``secrets``, seconds taken); 124: out of time.
    """
    argv = ["timeout", "--kill-after=5", str(timeout)]
    if user and user != "root":
        argv += ["runuser", "-u", user, "--"]
    argv += ["/bin/sh", "-c", command]
    started = clock()
    # The command's $VARIABLES are the shell's to expand, with the environment given here, not the module's
    # (run_command expands them in its own environment by default); PWD names the directory it runs in.
    rc, out, err = module.run_command(argv, cwd=cwd, environ_update=dict(env, PWD=cwd), expand_user_and_vars=False)
    output = censored(tail((out or "") + ("\n" + err if err else "")), secrets)
    return rc, output, round(clock() - started, 2)


def failure(what, command, rc, took, output, timeout, secrets, where=""):
    """One line: what failed, its command (censored), its exit status or time limit, its output's last line."""
    last = output.splitlines()[-1][:300] if output.strip() else "no output"
    why = "did not finish within %s s" % timeout if rc == 124 else "exited %d after %s s" % (rc, took)
    return "%s %r%s %s: %s" % (what, censored(command, secrets), where, why, last)


def run_point(module, layout, point, commands, release, options, env):
    """Run an extension point's commands in ``release``'s directory; None when all exited 0, else one line.

    ``options``: ``user``, ``env_files``, ``timeout``, ``censor`` (more secret values). ``release``:
    ``release_id``, ``version``. Each command's outcome goes into the host's history (action ``hook``).
    """
    service_env, secrets = read_env(options.get("env_files") or [])
    secrets = secrets + [str(s) for s in options.get("censor") or []]
    service_env.update(env, CONVEYOR_HOOK=point)
    service_env = {name: "" if value is None else str(value) for name, value in service_env.items()}
    for command in commands:
        rc, output, took = run_as_app(module, command, layout.release_dir(release["release_id"]), service_env,
                                      options.get("user"), options["timeout"], secrets)
        append_history(layout, "hook", release["release_id"], release.get("version"),
                       result="ok" if rc == 0 else "failed", run_id=env.get("CONVEYOR_RUN_ID") or None, point=point,
                       command=censored(command, secrets), rc=rc, duration_s=took, output=output)
        if rc != 0:
            return failure("%s hook" % point, command, rc, took, output, options["timeout"], secrets)
    return None
