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
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
HORIZON_DAYS = 400


class SpecError(ValueError):
    """The window spec or an approval is malformed; the message names the field."""


def timezone(name):
    if not isinstance(name, str):
        raise SpecError("deploy_windows.timezone: %r is not a timezone name: quote an IANA name such as "
                        "\"Europe/Berlin\"" % (name,))
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
    elif value in (None, ""):
        raise SpecError("%s is missing: give an ISO 8601 date and time such as 2026-12-20T00:00" % field)
    else:
        try:
            moment = datetime.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise SpecError("%s: %r is not an ISO 8601 date and time such as 2026-12-20T00:00" % (field, value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def _clock(value, field):
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 16:00 as the base-60 number 960.
        raise SpecError("%s: %r is a number, not a time of day: YAML read an unquoted %02d:%02d as a number; "
                        "quote it (\"%02d:%02d\")" % (field, value, value // 60, value % 60, value // 60, value % 60))
    try:
        hours, minutes = str(value).split(":")
        clock = datetime.time(int(hours), int(minutes))
    except ValueError:
        raise SpecError("%s: %r is not a time of day such as 09:00" % (field, value))
    return clock


def _day(value, field):
    """The weekday index of mon..sun or monday..sunday (any case)."""
    name = str(value).strip().lower()
    if name in DAYS:
        return DAYS.index(name)
    if name in DAY_NAMES:
        return DAY_NAMES.index(name)
    raise SpecError("%s: %r is not a day (use mon, tue, wed, thu, fri, sat, sun)" % (field, value))


def _items(spec, key):
    """The spec's list under key, each item a mapping."""
    items = spec.get(key)
    if items in (None, ""):
        return []
    if not isinstance(items, list):
        raise SpecError("deploy_windows.%s is a %s, not a list of mappings" % (key, type(items).__name__))
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise SpecError("deploy_windows.%s[%d] is %r, not a mapping with start and end" % (key, index, item))
    return items


def _normalise(spec):
    """(tz, windows, freezes) with every field checked."""
    spec = spec or {}
    if not isinstance(spec, dict):
        raise SpecError("deploy_windows is a %s, not a mapping (timezone, allow, freezes)" % type(spec).__name__)
    tz = timezone(spec.get("timezone") or "UTC")
    windows = []
    for index, item in enumerate(_items(spec, "allow")):
        field = "deploy_windows.allow[%d]" % index
        days = item.get("days", list(DAYS))
        if isinstance(days, str):
            days = [days]
        if not isinstance(days, (list, tuple)) or not days:
            raise SpecError("%s.days is %r: list at least one day (mon..sun), or leave days out for every day"
                            % (field, days))
        windows.append({"name": str(item.get("name") or "window %d" % (index + 1)),
                        "days": sorted({_day(day, field + ".days") for day in days}),
                        "start": _clock(item.get("start", "00:00"), field + ".start"),
                        "end": _clock(item.get("end", "00:00"), field + ".end")})
    freezes = []
    for index, item in enumerate(_items(spec, "freezes")):
        field = "deploy_windows.freezes[%d]" % index
        start = parse_instant(item.get("start"), tz, field + ".start")
        end = parse_instant(item.get("end"), tz, field + ".end")
        if end <= start:
            raise SpecError("%s: end %s is not after start %s: swap them" % (field, item.get("end"), item.get("start")))
        freezes.append({"name": str(item.get("name") or "freeze %d" % (index + 1)), "start": start, "end": end,
                        "reason": str(item.get("reason") or "")})
    return tz, windows, freezes


def spec_problems(spec):
    """What is wrong with a window spec, as a list of at most one message (the first problem found)."""
    try:
        _normalise(spec)
    except SpecError as exc:
        return [str(exc)]
    return []


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
    # An approval given on the command line has no status; a status that is there must say approved.
    status = approval.get("status", "approved")
    text = status.strip().lower() if isinstance(status, str) else ""
    if text != "approved":
        shown = text or ("without a status" if status in (None, "") else "of status %r" % (status,))
        return False, "change %s is %s, not approved%s" % (change_id, shown, (
            " (%s)" % approval["comment"]) if approval.get("comment") else "")
    if approval.get("expires_at"):
        expires = parse_instant(approval["expires_at"], UTC, "approval expires_at")
        if expires <= now.astimezone(UTC):
            return False, "the approval of change %s by %s expired at %s" % (change_id, approver, expires.isoformat())
    environments = approval.get("environments")
    named = isinstance(environments, list) and all(isinstance(item, str) for item in environments)
    if environments not in (None, []) and not named:
        return False, ("change %s: environments is %r, not a list of environment names (write [%s])"
                       % (change_id, environments, environments if isinstance(environments, str) else "..."))
    if environments and environment and environment not in environments:
        return False, "change %s is approved for %s, not for %s" % (change_id, ", ".join(environments), environment)
    return True, "change %s approved by %s" % (change_id, approver)
