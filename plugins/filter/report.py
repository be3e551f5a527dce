# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn check results into tables a person can read in the play output."""

from __future__ import annotations


def check_table(rows, title="check", group=None):
    """``[{check, passed, summary}]`` -> aligned lines, failures marked FAIL.

    With ``group`` (a key such as ``host``), each row's check is prefixed with that key's value.
    """
    rows = [dict(row, check=("%s  %s" % (row.get(group, ""), row.get("check", ""))) if group else row.get("check", ""))
            for row in rows or []]
    width = max([len(title)] + [len(str(row["check"])) for row in rows])
    lines = ["%-*s  %-4s  %s" % (width, title, "ok?", "result")]
    for row in rows:
        lines.append("%-*s  %-4s  %s" % (width, row["check"], "ok" if row.get("passed") else "FAIL",
                                         row.get("summary", "")))
    return lines


SECRET_HINTS = ("vault", "secret", "password", "passwd", "token", "private_key")


def _is_secret(key, value):
    if isinstance(value, dict) and "__ansible_vault" in value:
        return True
    return any(hint in key.lower() for hint in SECRET_HINTS)


def env_diff(left, right, left_name="left", right_name="right"):
    """Keys whose values differ between two variable dicts, one line each.

    Values of secrets (vault-encrypted values, and keys that look like secrets, since
    ``ansible-inventory --export`` decrypts vaulted files) are never shown, only that
    they differ.
    """
    lines = []
    for key in sorted(set(left) | set(right)):
        if key not in right:
            lines.append("%s: only in %s" % (key, left_name))
        elif key not in left:
            lines.append("%s: only in %s" % (key, right_name))
        elif left[key] != right[key]:
            if _is_secret(key, left[key]) or _is_secret(key, right[key]):
                lines.append("%s: differs (secret, not shown)" % key)
            else:
                lines.append("%s: %s=%s, %s=%s" % (key, left_name, _show(left[key]), right_name, _show(right[key])))
    return lines


def _show(value):
    return repr(value) if isinstance(value, str) else str(value)


class FilterModule(object):
    def filters(self):
        return {"check_table": check_table, "env_diff": env_diff}
