# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of conveyor.deploy.approval: approvals are looked up and judged on the controller."""

from __future__ import annotations

import datetime
import getpass
import json
import urllib.parse

from ansible.errors import AnsibleError
from ansible.module_utils.urls import open_url
from ansible.plugins.action import ActionBase

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _governance, _inputs

ARGUMENT_SPEC = {
    "change_id": {"type": "str", "default": ""},
    "approver": {"type": "str", "default": ""},
    "expires_at": {"type": "str"},
    "source": {"type": "str", "choices": ["vars", "file", "url"], "default": "vars"},
    "path": {"type": "path"},
    "url": {"type": "str"},
    "url_token": {"type": "str", "no_log": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "float", "default": 10},
    "deployer": {"type": "str"},
    "environment": {"type": "str"},
    "required": {"type": "bool", "default": True},
    "now": {"type": "str"},
    "fail_on_invalid": {"type": "bool", "default": True},
}
AWX_USER_VARS = ("awx_user_name", "tower_user_name")


class ApprovalNotFound(Exception):
    """The source has nothing for this change id, or cannot be read; the message says which."""


def from_mapping(data, change_id, where):
    """The approval of change_id in a {id: approval} mapping or a [{change_id, ...}] list."""
    if isinstance(data, dict) and "approvals" in data:
        data = data["approvals"]
    if isinstance(data, dict):
        found = data.get(change_id)
    elif isinstance(data, list):
        found = next((item for item in data if isinstance(item, dict) and str(item.get("change_id")) == change_id), None)
    else:
        raise ApprovalNotFound("%s is neither a mapping of change ids nor a list of approvals" % where)
    if not isinstance(found, dict):
        raise ApprovalNotFound("%s has no approval for change %s" % (where, change_id))
    return dict(found, change_id=change_id)


def fetch_url(url, change_id, token, timeout, opener=open_url, ca_path=None):
    """The approval the endpoint returns for change_id: over https only, and never following a redirect.

    A redirect would carry the token to wherever the endpoint points, so it is an error that says where
    to point approval_url instead (without printing the target, which may carry a key).
    """
    problems = _inputs.approval_url_problems(url)
    if problems:
        raise ApprovalNotFound("; ".join(problems))
    quoted = urllib.parse.quote(change_id, safe="")
    target = url.replace("{change_id}", quoted) if "{change_id}" in url else url.rstrip("/") + "/" + quoted
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        with opener(target, headers=headers, timeout=timeout, method="GET", follow_redirects="none",
                    validate_certs=True, ca_path=ca_path) as response:
            body = json.loads(response.read().decode("utf-8"))
    except Exception as exc:  # pylint: disable=broad-except
        code = getattr(exc, "code", None)
        if code == 404:
            raise ApprovalNotFound("the approvals endpoint knows no change %s (HTTP 404)" % change_id)
        if isinstance(code, int) and 300 <= code < 400:
            raise ApprovalNotFound("the approvals endpoint answered change %s with a redirect (HTTP %s), which is "
                                   "not followed (the token would go with it): set approval_url to the final "
                                   "address" % (change_id, code))
        # Neither the URL (it may carry a key) nor the token is put in the message.
        raise ApprovalNotFound("the approvals endpoint did not answer for change %s (%s)"
                               % (change_id, ("HTTP %s" % code) if code else type(exc).__name__))
    if not isinstance(body, dict):
        raise ApprovalNotFound("the approvals endpoint answered for change %s with something that is not an "
                               "approval object" % change_id)
    return dict(body, change_id=change_id)


def judge(args, approval, deployer, now):
    valid, reason = _governance.check_approval(approval, deployer, now, args["environment"])
    shown = {key: approval.get(key) for key in ("change_id", "approver", "status", "expires_at", "comment")
             if approval.get(key) not in (None, "")}
    shown["source"] = args["source"]
    result = {"changed": False, "valid": valid, "reason": reason, "approval": shown, "deployer": deployer,
              "msg": ("approval: " if valid else "approval refused: ") + reason}
    if not valid and args["fail_on_invalid"]:
        result["failed"] = True
    return result


def decide(args, deployer, load_file):
    """The module's result for validated arguments; load_file reads an approvals file."""
    result = {}
    change_id = (args["change_id"] or "").strip()
    try:
        now = (_governance.parse_instant(args["now"], _governance.UTC, "now") if args["now"]
               else datetime.datetime.now(_governance.UTC))
        if not change_id and not args["required"]:
            result.update(changed=False, valid=True, reason="no approval required", approval={},
                          deployer=deployer, msg="approval: not required here")
            return result
        if args["source"] == "vars" or not change_id:
            approval = {"change_id": change_id, "approver": args["approver"], "expires_at": args["expires_at"]}
        elif args["source"] == "file":
            if not args["path"]:
                raise ApprovalNotFound("source=file needs path (the approvals file)")
            try:
                data = load_file(args["path"])
            except AnsibleError as exc:
                raise ApprovalNotFound("cannot read the approvals file %s: %s" % (args["path"], exc.message))
            approval = from_mapping(data, change_id, "the approvals file %s" % args["path"])
        else:
            if not args["url"]:
                raise ApprovalNotFound("source=url needs url (the approvals endpoint)")
            approval = fetch_url(args["url"], change_id, args["url_token"], args["timeout"],
                                 ca_path=args.get("ca_path"))
        result.update(judge(args, approval, deployer, now))
    except (ApprovalNotFound, _governance.SpecError) as exc:
        result.update(changed=False, valid=False, reason=str(exc), approval={"change_id": change_id},
                      deployer=deployer, msg="approval refused: %s" % exc)
        if args["fail_on_invalid"]:
            result["failed"] = True
    return result


def options_from(given, **overrides):
    """The module's options: its defaults, the non-empty values of ``given``, then ``overrides``."""
    options = {name: spec.get("default") for name, spec in ARGUMENT_SPEC.items()}
    options.update((name, value) for name, value in (given or {}).items() if value not in (None, ""))
    options.update(overrides)
    return options


def deployer_of(args, task_vars):
    if args.get("deployer"):
        return args["deployer"]
    for name in AWX_USER_VARS:
        if task_vars.get(name):
            return str(task_vars[name])
    return getpass.getuser()


class ActionModule(ActionBase):
    """Look an approval up and judge it on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    @staticmethod
    def _deployer(args, task_vars):
        return deployer_of(args, task_vars)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result.update(decide(args, self._deployer(args, task_vars or {}), self._loader.load_from_file))
        return result
