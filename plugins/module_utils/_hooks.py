# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host hook commands of the rollout's extension points, shared by the cutover and host_steps modules."""

from __future__ import annotations

from ansible_collections.conveyor.deploy.plugins.module_utils._probe import short


def censored(text, secrets):
    """``text`` with every secret (of at least 4 characters) replaced by stars."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "********")
    return text


def run_commands(module, point, commands, cwd, env, timeout, secrets=()):
    """Run an extension point's commands in ``cwd``, each bounded by ``timeout`` seconds.

    Returns None when all exited 0, else one line naming the command, its exit status and its output (censored).
    """
    for command in commands:
        rc, out, err = module.run_command(
            ["timeout", "--kill-after=5", str(timeout), "/bin/sh", "-c", command], cwd=cwd, environ_update=env)
        if rc != 0:
            output = censored(short(err or out or "no output", 200), secrets)
            if rc == 124:
                return "%s hook %r did not finish within %s s: %s" % (point, command, timeout, output)
            return "%s hook %r exited %d: %s" % (point, command, rc, output)
    return None
