# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn check results into tables a person can read in the play output."""

from __future__ import annotations


def check_table(rows, title="check"):
    """``[{check, passed, summary}]`` -> aligned lines, failures marked FAIL."""
    rows = list(rows or [])
    width = max([len(title)] + [len(str(row.get("check", ""))) for row in rows])
    lines = ["%-*s  %-4s  %s" % (width, title, "ok?", "result")]
    for row in rows:
        lines.append("%-*s  %-4s  %s" % (width, row.get("check", ""), "ok" if row.get("passed") else "FAIL",
                                         row.get("summary", "")))
    return lines


class FilterModule(object):
    def filters(self):
        return {"check_table": check_table}
