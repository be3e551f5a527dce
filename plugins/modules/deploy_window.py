#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_window
short_description: Decide whether a deployment window is open, on the controller
version_added: "0.1.0"
description:
  - Evaluates an environment's allowed deployment windows (days of the week and time ranges in a named timezone)
    and freezes (date ranges with a reason) at the current time, or at an injected time.
  - Returns whether deploying is allowed, the rule that decided, and when the next window opens (or when the open one
    closes).
  - Outside a window or inside a freeze, the task fails unless O(override_reason) is given (an emergency override)
    or O(fail_when_closed=false). The playbooks record an override in the change log.
  - An action plugin that runs on the controller only; it contacts no host.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
  - conveyor.deploy.attributes.action
attributes:
  check_mode:
    support: full
    details: Reads only; the same decision is returned in check mode.
  diff_mode:
    support: none
  action:
    support: full
    details: Runs on the controller.
options:
  windows:
    description:
      - The spec, usually the inventory's C(deploy_windows) for the environment.
      - C(timezone) (an IANA name, default C(UTC)); C(allow), a list of windows with C(name), C(days)
        (C(mon)..C(sun), the day the window starts; default every day), C(start) and C(end) (C(HH:MM); an end at or
        before the start ends the next day); C(freezes), a list with C(name), C(start), C(end) (ISO 8601, local to the
        timezone unless an offset is given) and C(reason).
      - Without C(allow), deploying is allowed at any time outside the freezes.
    type: dict
    default: {}
  environment:
    description: The environment's name, for messages.
    type: str
    default: this environment
  now:
    description:
      - Evaluate at this instant (ISO 8601, with an offset or C(Z)) instead of the controller's clock. For tests and
        for asking "could I deploy at ...".
    type: str
  clock_start:
    description:
      - With O(now), the controller time (seconds since the epoch) at which O(now) was true; the injected clock then
        advances with real time. The rolling role uses it to re-check the window before each batch.
    type: float
  override_reason:
    description: Deploy although the window is closed, for this reason (an emergency override).
    type: str
    default: ''
  fail_when_closed:
    description: Fail the task when deploying is not allowed. With V(false), only report it.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Refuse to deploy outside the production window
  conveyor.deploy.deploy_window:
    environment: prod
    windows:
      timezone: Europe/Berlin
      allow:
        - {name: business hours, days: [tue, wed, thu], start: "09:00", end: "16:00"}
      freezes:
        - {name: year-end, start: "2026-12-20T00:00", end: "2027-01-04T00:00", reason: holiday freeze}
  run_once: true

- name: Would a deploy be allowed on Friday at 10:00 Berlin time?
  conveyor.deploy.deploy_window:
    windows: "{{ deploy_windows }}"
    now: "2026-12-04T10:00:00+01:00"
    fail_when_closed: false
  register: window
"""

RETURN = r"""
allowed:
  description: Whether deploying may go ahead (the window is open, or closed and overridden).
  returned: always
  type: bool
open:
  description: Whether a window is open and no freeze applies.
  returned: always
  type: bool
overridden:
  description: Whether a closed window was overridden with O(override_reason).
  returned: always
  type: bool
rule:
  description: "What decided, such as C(window: business hours), C(freeze: year-end) or C(outside every window)."
  returned: always
  type: str
reason:
  description: Why, in words, with the times involved.
  returned: always
  type: str
next_open:
  description: When the next window opens (local ISO time), when closed; null if none within 400 days.
  returned: always
  type: str
closes_at:
  description: When the open window closes (local ISO time); null when closed or never.
  returned: always
  type: str
now:
  description: The instant evaluated, local to the timezone.
  returned: always
  type: str
timezone:
  description: The timezone of the spec.
  returned: always
  type: str
"""
