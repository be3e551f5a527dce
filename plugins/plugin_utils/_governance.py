# -*- coding: utf-8 -*-
# Copyright: conveyor.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment windows, freezes and approvals: pure functions of their inputs and the time.

A window spec (the inventory's ``deploy_windows``)::

    timezone: Europe/Berlin
    allow:                       # no allow list: always open (freezes still apply)
      - name: business hours
        days: [tue, wed, thu]    # the day the window starts; default every day
        start: "09:00"
        end: "16:00"             # an end at or before the start ends the next day
    freezes:
      - name: year-end
        start: "2026-12-20T00:00"    # local time in the timezone; an offset may be given
        end: "2027-01-04T00:00"
        reason: holiday freeze

Times are compared in UTC after placing each local time in the timezone, so windows
follow daylight saving time: 09:00 Berlin is 08:00 UTC in winter and 07:00 in summer.
"""

from __future__ import annotations

import datetime

try:
    import zoneinfo
except ImportError:  # pragma: no cover - Python < 3.9
    zoneinfo = None

UTC = datetime.timezone.utc
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 400


class SpecError(ValueError):
    """The window spec or an approval is malformed; the message names the field."""


def timezone(name):
    if zoneinfo is None:
        raise SpecError("deploy_windows.timezone needs Python 3.9 or later (zoneinfo)")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SpecError("deploy_windows.timezone: unknown timezone %r (use an IANA name such as Europe/Berlin)" % name)


def parse_instant(value, tz, field):
    """A datetime from an ISO 8601 string (local to tz when it has no offset) or a datetime."""
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        try:
            moment = datetime.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise SpecError("%s: %r is not an ISO 8601 date and time such as 2026-12-20T00:00" % (field, value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def _clock(value, field):
    try:
        hours, minutes = str(value).split(":")
        clock = datetime.time(int(hours), int(minutes))
    except ValueError:
        raise SpecError("%s: %r is not a time of day such as 09:00" % (field, value))
    return clock


def _normalise(spec):
    """(tz, windows, freezes) with every field checked."""
    spec = spec or {}
    tz = timezone(spec.get("timezone") or "UTC")
    windows = []
    for index, item in enumerate(spec.get("allow") or []):
        field = "deploy_windows.allow[%d]" % index
        days = [str(day).lower()[:3] for day in (item.get("days") or DAYS)]
        unknown = [day for day in days if day not in DAYS]
        if unknown:
            raise SpecError("%s.days: %s not a day (use mon..sun)" % (field, ", ".join(unknown)))
        windows.append({"name": item.get("name") or "window %d" % (index + 1),
                        "days": [DAYS.index(day) for day in days],
                        "start": _clock(item.get("start", "00:00"), field + ".start"),
                        "end": _clock(item.get("end", "00:00"), field + ".end")})
    freezes = []
    for index, item in enumerate(spec.get("freezes") or []):
        field = "deploy_windows.freezes[%d]" % index
        start = parse_instant(item.get("start"), tz, field + ".start")
        end = parse_instant(item.get("end"), tz, field + ".end")
        if end <= start:
            raise SpecError("%s: end %s is not after start %s" % (field, item.get("end"), item.get("start")))
        freezes.append({"name": item.get("name") or "freeze %d" % (index + 1), "start": start, "end": end,
                        "reason": item.get("reason") or ""})
    return tz, windows, freezes


def _occurrences(windows, tz, around):
    """Every window occurrence as (start_utc, end_utc, name), from the day before `around` onwards."""
    first = around.astimezone(tz).date() - datetime.timedelta(days=1)
    for offset in range(HORIZON_DAYS):
        day = first + datetime.timedelta(days=offset)
        for window in windows:
            if day.weekday() not in window["days"]:
                continue
            start = datetime.datetime.combine(day, window["start"], tzinfo=tz)
            end_day = day if window["end"] > window["start"] else day + datetime.timedelta(days=1)
            end = datetime.datetime.combine(end_day, window["end"], tzinfo=tz)
            yield start.astimezone(UTC), end.astimezone(UTC), window["name"]


def _freeze_at(freezes, moment):
    for freeze in freezes:
        if freeze["start"] <= moment < freeze["end"]:
            return freeze
    return None


def _past_freezes(freezes, moment):
    """The first instant at or after moment outside every freeze (freezes may chain)."""
    freeze = _freeze_at(freezes, moment)
    while freeze is not None:
        moment = freeze["end"]
        freeze = _freeze_at(freezes, moment)
    return moment


def _first_open(windows, freezes, tz, moment):
    """The first instant at or after moment inside a window (any time, without windows) and outside every freeze."""
    if not windows:
        return _past_freezes(freezes, moment)
    for start, end, dummy_name in sorted(_occurrences(windows, tz, moment)):
        if end <= moment:
            continue
        begin = _past_freezes(freezes, max(start, moment))
        if begin < end:
            return begin
    return None


def _local(moment, tz):
    return moment.astimezone(tz).isoformat(timespec="minutes")


def evaluate(spec, now):
    """Whether deploying is allowed at `now` (an aware datetime).

    Returns {open, rule, reason, timezone, now, next_open, closes_at}: ``rule`` names what
    decided; ``next_open`` (when closed) and ``closes_at`` (when open) are local ISO times.
    """
    tz, windows, freezes = _normalise(spec)
    now = now.astimezone(UTC)
    found = {"timezone": str(tz.key if hasattr(tz, "key") else tz), "now": _local(now, tz), "next_open": None,
             "closes_at": None}
    freeze = _freeze_at(freezes, now)
    if freeze is not None:
        following = _first_open(windows, freezes, tz, freeze["end"])
        why = (" (%s)" % freeze["reason"]) if freeze["reason"] else ""
        found.update(open=False, rule="freeze: %s" % freeze["name"],
                     reason="frozen until %s%s" % (_local(freeze["end"], tz), why),
                     next_open=_local(following, tz) if following else None)
        return found
    upcoming = [f["start"] for f in freezes if f["start"] > now]
    if not windows:
        found.update(open=True, rule="no deployment windows defined", reason="always open outside freezes",
                     closes_at=_local(min(upcoming), tz) if upcoming else None)
        return found
    for start, end, name in _occurrences(windows, tz, now):
        if start <= now < end:
            closes = min([end] + [f for f in upcoming if f < end])
            found.update(open=True, rule="window: %s" % name, reason="inside %s until %s" % (name, _local(closes, tz)),
                         closes_at=_local(closes, tz))
            return found
    following = _first_open(windows, freezes, tz, now)
    found.update(open=False, rule="outside every window",
                 reason="no deployment window is open at %s" % _local(now, tz),
                 next_open=_local(following, tz) if following else None)
    return found


def check_approval(approval, deployer, now, environment=None):
    """(valid, reason) for an approval {change_id, approver, status, expires_at, environments}.

    The approver must not be the deployer (four-eyes); the status must be approved; an
    expiry in the past or an environment list without this environment refuses it.
    """
    approval = approval or {}
    change_id = str(approval.get("change_id") or "").strip()
    approver = str(approval.get("approver") or "").strip()
    if not change_id:
        return False, "no change id: pass -e change_id=<id> (an AWX survey field), or use an approvals source"
    if not approver:
        return False, "change %s has no approver: pass -e change_approver=<name>, or record it in the approvals source" % change_id
    if deployer and approver.lower() == str(deployer).strip().lower():
        return False, "change %s is approved by %s, who is also deploying it: a second person must approve (four-eyes)" % (
            change_id, approver)
    status = str(approval.get("status") or "approved").lower()
    if status != "approved":
        return False, "change %s is %s, not approved%s" % (change_id, status, (
            " (%s)" % approval["comment"]) if approval.get("comment") else "")
    if approval.get("expires_at"):
        expires = parse_instant(approval["expires_at"], UTC, "approval expires_at")
        if expires <= now.astimezone(UTC):
            return False, "the approval of change %s by %s expired at %s" % (change_id, approver, expires.isoformat())
    environments = approval.get("environments")
    if environments and environment and environment not in environments:
        return False, "change %s is approved for %s, not for %s" % (change_id, ", ".join(environments), environment)
    return True, "change %s approved by %s" % (change_id, approver)
