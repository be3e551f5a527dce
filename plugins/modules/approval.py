#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: approval
short_description: Check a change's approval (four-eyes, status, expiry), on the controller
version_added: "0.1.0"
description:
  - Finds the approval of a change and checks it - a change id and an approver, the approver is not the person
    deploying (four-eyes), the status is C(approved), it has not expired, and it covers this environment.
  - The approval comes from one of three sources. V(vars) - the change id and approver given as arguments (an AWX
    survey, or an AWX approval node setting extra vars). V(file) - a YAML or JSON file (may be vault-encrypted) that a
    change-management system writes, mapping change ids to approvals. V(url) - an HTTP endpoint answering for a change
    id with a JSON approval.
  - An approval is a mapping with C(approver), C(status) (C(approved), C(denied), C(pending); default C(approved)),
    optionally C(expires_at) (ISO 8601), C(environments) (a list) and C(comment).
  - An action plugin that runs on the controller only.
author:
  - conveyor.deploy developers (@conveyor-deploy)
extends_documentation_fragment:
  - conveyor.deploy.attributes
  - conveyor.deploy.attributes.action
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
  action:
    support: full
    details: Runs on the controller.
options:
  change_id:
    description: The change being deployed.
    type: str
    default: ''
  approver:
    description: With O(source=vars), who approved it.
    type: str
    default: ''
  expires_at:
    description: With O(source=vars), when the approval expires (ISO 8601).
    type: str
  source:
    description: Where the approval comes from.
    type: str
    choices: [vars, file, url]
    default: vars
  path:
    description: With O(source=file), the approvals file.
    type: path
  url:
    description:
      - With O(source=url), the endpoint. C({change_id}) in it is replaced by the change id (URL-quoted); without it,
        C(/<change id>) is appended. It must answer 200 with the approval as JSON, or 404 for an unknown change.
      - It must be C(https://) and carry no user or password; a redirect is refused, not followed, since the token
        would go with it. The certificate is verified (O(ca_path) for a private CA).
    type: str
  url_token:
    description: With O(source=url), a bearer token for the endpoint. Never logged.
    type: str
  ca_path:
    description: With O(source=url), a PEM bundle of the CA that signs the endpoint's certificate.
    type: path
  timeout:
    description: With O(source=url), seconds to wait for the endpoint.
    type: float
    default: 10
  deployer:
    description:
      - Who is deploying. Default - the AWX user who launched the job (C(awx_user_name)), else the controller's user.
    type: str
  environment:
    description: The environment, checked against the approval's C(environments).
    type: str
  required:
    description: Whether an approval is required. When V(false) and no O(change_id) is given, the result is valid.
    type: bool
    default: true
  now:
    description: Check expiry at this instant (ISO 8601) instead of now. For tests.
    type: str
  fail_on_invalid:
    description: Fail the task when the approval is not valid. With V(false), only report it.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Production needs an approved change (from an AWX survey)
  conveyor.deploy.approval:
    change_id: "{{ change_id | default('') }}"
    approver: "{{ change_approver | default('') }}"
    environment: prod
  run_once: true

- name: The change-management system publishes approvals over HTTP
  conveyor.deploy.approval:
    source: url
    url: https://cm.example.com/api/approvals/{change_id}
    url_token: "{{ vault_cm_token }}"
    change_id: "{{ change_id }}"
"""

RETURN = r"""
valid:
  description: Whether the approval allows the deployment.
  returned: always
  type: bool
reason:
  description: Why it is valid or not, naming the change, the approver and what is wrong.
  returned: always
  type: str
approval:
  description: The approval found (change_id, approver, status, expires_at, source).
  returned: always
  type: dict
deployer:
  description: Who is deploying, as compared with the approver.
  returned: always
  type: str
"""
