# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate a module's arguments against the real awx.awx spec, then record them (no controller is called)."""
from __future__ import annotations

import json
import os

from ansible.module_utils.basic import AnsibleModule


def run(name):
    with open(os.environ["CONVEYOR_AWX_STUB_SPECS"], encoding="utf-8") as handle:
        captured = json.load(handle)[name]
    module = AnsibleModule(argument_spec=captured["argument_spec"], supports_check_mode=True, **captured["options"])
    with open(os.environ["CONVEYOR_AWX_STUB_LOG"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"module": name, "params": module.params, "check_mode": module.check_mode}) + "\n")
    module.exit_json(changed=False)
