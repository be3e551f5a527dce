# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # How the modules that run hooks on a host run them (module_utils/_hooks.py HOOK_OPTIONS).
    DOCUMENTATION = r"""
options:
  hook_timeout:
    description: Seconds each hook command may run; one that runs longer is killed and fails.
    type: int
    default: 300
  hook_user:
    description: The user the hooks run as (the app user); C(root) runs them as root.
    type: str
    default: root
  hook_env_files:
    description:
      - The service's environment files (systemd C(EnvironmentFile) syntax) whose variables the hooks get; a
        missing file is skipped. The values of a file whose name starts with C(secrets) are censored in the output.
    type: list
    elements: path
    default: []
  hook_env:
    description: More environment variables for the hooks (the engine names the host, the run's kind and the batch).
    type: dict
    default: {}
"""
