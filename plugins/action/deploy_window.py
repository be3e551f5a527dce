# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of conveyor.deploy.deploy_window: the decision is made on the controller."""

from __future__ import annotations

import datetime
import time

from ansible.plugins.action import ActionBase

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _governance

ARGUMENT_SPEC = {
    "windows": {"type": "dict", "default": {}},
    "environment": {"type": "str", "default": "this environment"},
    "now": {"type": "str"},
    "clock_start": {"type": "float"},
    "override_reason": {"type": "str", "default": ""},
    "fail_when_closed": {"type": "bool", "default": True},
}


def effective_now(now, clock_start, wall=time.time):
    """The instant to evaluate: the controller's clock, or an injected one (advancing from clock_start)."""
    if not now:
        return datetime.datetime.now(_governance.UTC)
    moment = _governance.parse_instant(now, _governance.UTC, "now")
    if clock_start:
        moment += datetime.timedelta(seconds=max(wall() - clock_start, 0.0))
    return moment


def decide(args, wall=time.time):
    """The module's result for validated arguments (no Ansible objects: unit-testable)."""
    found = _governance.evaluate(args["windows"], effective_now(args["now"], args["clock_start"], wall))
    reason = (args["override_reason"] or "").strip()
    found["overridden"] = not found["open"] and bool(reason)
    found["allowed"] = found["open"] or found["overridden"]
    found["changed"] = False
    where = args["environment"]
    if found["open"]:
        found["msg"] = "deployment window open for %s: %s" % (where, found["reason"])
    elif found["overridden"]:
        found["msg"] = "deployment window closed for %s (%s; %s), overridden: %s" % (
            where, found["rule"], found["reason"], reason)
    else:
        found["msg"] = "deployment window closed for %s: %s (%s). Next window: %s. In an emergency, pass -e " \
                       "override_reason='<why>' (production also needs an approval)." % (
                           where, found["rule"], found["reason"], found["next_open"] or "none within 400 days")
        if args["fail_when_closed"]:
            found["failed"] = True
    return found


class ActionModule(ActionBase):
    """Evaluate the deployment window on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            result.update(decide(args))
        except _governance.SpecError as exc:
            result.update(failed=True, changed=False, msg="deploy_window: %s" % exc)
        return result
