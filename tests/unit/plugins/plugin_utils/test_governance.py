"""Deployment windows, freezes and approvals, at chosen instants."""
import datetime

import pytest

from ansible_collections.conveyor.deploy.plugins.plugin_utils import _governance as gov

UTC = datetime.timezone.utc
PROD = {"timezone": "Europe/Berlin",
        "allow": [{"name": "business hours", "days": ["tue", "wed", "thu"], "start": "09:00", "end": "16:00"}],
        "freezes": [{"name": "year-end", "start": "2026-12-20T00:00", "end": "2027-01-04T00:00",
                     "reason": "holiday freeze"}]}


def at(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_inside_a_window_in_its_own_timezone():
    # Tuesday 2026-12-01 09:30 Berlin (CET, +01:00) is 08:30 UTC.
    result = gov.evaluate(PROD, at("2026-12-01T08:30Z"))
    assert result["open"] and result["rule"] == "window: business hours"
    assert result["closes_at"] == "2026-12-01T16:00+01:00"
    assert result["now"] == "2026-12-01T09:30+01:00"


def test_before_the_window_opens_the_next_opening_is_the_same_morning():
    result = gov.evaluate(PROD, at("2026-12-01T07:59Z"))  # 08:59 Berlin
    assert not result["open"] and result["rule"] == "outside every window"
    assert result["next_open"] == "2026-12-01T09:00+01:00"


def test_after_thursday_the_next_window_is_tuesday():
    result = gov.evaluate(PROD, at("2026-12-03T15:00Z"))  # Thursday 16:00 Berlin: the window has just closed
    assert not result["open"] and result["next_open"] == "2026-12-08T09:00+01:00"


def test_daylight_saving_time_moves_the_window_in_utc():
    spec = {"timezone": "Europe/Berlin", "allow": [{"name": "daily", "start": "09:00", "end": "16:00"}]}
    # Saturday 2026-03-28 is CET (+1); Sunday 2026-03-29 is CEST (+2) after 02:00.
    assert gov.evaluate(spec, at("2026-03-28T08:30Z"))["open"]      # 09:30 CET
    assert not gov.evaluate(spec, at("2026-03-29T06:30Z"))["open"]  # 08:30 CEST
    assert gov.evaluate(spec, at("2026-03-29T07:30Z"))["open"]      # 09:30 CEST
    closed = gov.evaluate(spec, at("2026-03-28T16:00Z"))            # Saturday 17:00 CET
    assert closed["next_open"] == "2026-03-29T09:00+02:00"          # that is 07:00 UTC, not 08:00
    # And back in autumn: Sunday 2026-10-25 09:00 is CET again.
    assert gov.evaluate(spec, at("2026-10-24T17:00Z"))["next_open"] == "2026-10-25T09:00+01:00"


def test_a_window_across_the_dst_gap_and_midnight():
    spec = {"timezone": "Europe/Berlin", "allow": [{"name": "night", "days": ["sat"], "start": "22:00", "end": "04:00"}]}
    # Saturday 22:00 CET to Sunday 04:00 CEST is 21:00Z to 02:00Z: five hours, not six.
    assert gov.evaluate(spec, at("2026-03-28T21:00Z"))["open"]
    inside = gov.evaluate(spec, at("2026-03-29T01:59Z"))
    assert inside["open"] and inside["closes_at"] == "2026-03-29T04:00+02:00"
    assert not gov.evaluate(spec, at("2026-03-29T02:00Z"))["open"]


def test_a_freeze_spanning_the_new_year_wins_over_the_window_and_names_the_next_opening():
    result = gov.evaluate(PROD, at("2026-12-22T09:00Z"))  # a Tuesday, inside business hours
    assert not result["open"] and result["rule"] == "freeze: year-end"
    assert result["reason"] == "frozen until 2027-01-04T00:00+01:00 (holiday freeze)"
    assert result["next_open"] == "2027-01-05T09:00+01:00"  # the 4th is a Monday
    assert gov.evaluate(PROD, at("2027-01-05T08:00Z"))["open"]


def test_a_window_closes_early_when_a_freeze_starts_inside_it():
    spec = {"timezone": "UTC", "allow": [{"name": "day", "start": "08:00", "end": "18:00"}],
            "freezes": [{"name": "launch", "start": "2026-12-01T12:00", "end": "2026-12-01T23:30"}]}
    assert gov.evaluate(spec, at("2026-12-01T10:00Z"))["closes_at"] == "2026-12-01T12:00+00:00"
    assert gov.evaluate(spec, at("2026-12-01T12:00Z"))["next_open"] == "2026-12-02T08:00+00:00"


def test_a_freeze_spanning_midnight_without_windows():
    spec = {"timezone": "America/New_York",
            "freezes": [{"name": "batch", "start": "2026-12-31T22:00", "end": "2027-01-01T02:00"}]}
    frozen = gov.evaluate(spec, at("2027-01-01T04:00Z"))  # 23:00 New York on the 31st
    assert not frozen["open"] and frozen["next_open"] == "2027-01-01T02:00-05:00"
    assert gov.evaluate(spec, at("2027-01-01T07:00Z"))["open"]  # 02:00 New York
    assert gov.evaluate({}, at("2027-01-01T07:00Z"))["rule"] == "no deployment windows defined"


def test_chained_freezes_push_the_next_opening_past_both():
    spec = {"timezone": "UTC", "freezes": [{"name": "a", "start": "2026-12-01T00:00", "end": "2026-12-02T00:00"},
                                           {"name": "b", "start": "2026-12-02T00:00", "end": "2026-12-03T06:00"}]}
    assert gov.evaluate(spec, at("2026-12-01T05:00Z"))["next_open"] == "2026-12-03T06:00+00:00"


@pytest.mark.parametrize("spec, field", [
    ({"timezone": "Mars/Olympus"}, "unknown timezone"),
    ({"allow": [{"days": ["funday"], "start": "09:00", "end": "10:00"}]}, "deploy_windows.allow[0].days"),
    ({"allow": [{"start": "9am", "end": "10:00"}]}, "deploy_windows.allow[0].start"),
    ({"freezes": [{"start": "2026-12-02", "end": "2026-12-01"}]}, "deploy_windows.freezes[0]: end"),
    ({"freezes": [{"start": "soon", "end": "2026-12-01"}]}, "deploy_windows.freezes[0].start"),
    ({"freezes": [{"end": "2026-12-01"}]}, "deploy_windows.freezes[0].start is missing"),
    ({"allow": [{"days": [], "start": "09:00", "end": "10:00"}]}, "deploy_windows.allow[0].days is []: list at least"),
    ({"allow": [{"days": ["monkey"], "start": "09:00", "end": "10:00"}]}, "'monkey' is not a day"),
    ({"allow": [{"days": ["Tuesdays"], "start": "09:00", "end": "10:00"}]}, "'Tuesdays' is not a day"),
    ({"timezone": 1}, "deploy_windows.timezone: 1 is not a timezone name"),
    ({"timezone": ["Europe/Berlin"]}, "is not a timezone name"),
    # YAML 1.1 reads an unquoted 16:00 as 960.
    ({"allow": [{"start": "09:00", "end": 960}]}, 'deploy_windows.allow[0].end: 960 is a number.*quote it ("16:00")'),
    ({"allow": {"start": "09:00"}}, "deploy_windows.allow is a dict, not a list"),
    ({"allow": ["09:00-16:00"]}, "deploy_windows.allow[0] is '09:00-16:00', not a mapping"),
    ({"freezes": [{"start": "2026-12-02T00:00", "end": "2026-12-01T00:00"}]}, "is not after start .*: swap them"),
])
def test_malformed_specs_name_the_field(spec, field):
    pattern = field.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(gov.SpecError, match=pattern):
        gov.evaluate(spec, at("2026-12-01T00:00Z"))
    assert gov.spec_problems(spec) and gov.spec_problems({"allow": [{"days": ["Tuesday", "wed"]}]}) == []


NOW = at("2026-12-01T10:00Z")


@pytest.mark.parametrize("approval, deployer, valid, text", [
    ({"change_id": "CHG-1", "approver": "carol"}, "alice", True, "change CHG-1 approved by carol"),
    ({"change_id": "CHG-1", "approver": "Alice"}, "alice", False, "four-eyes"),
    ({"change_id": "", "approver": "carol"}, "alice", False, "no change id"),
    ({"change_id": "CHG-1"}, "alice", False, "has no approver"),
    ({"change_id": "CHG-1", "approver": "carol", "status": "denied", "comment": "not during sales"}, "alice", False,
     "change CHG-1 is denied, not approved (not during sales)"),
    ({"change_id": "CHG-1", "approver": "carol", "status": "pending"}, "alice", False, "is pending"),
    ({"change_id": "CHG-1", "approver": "carol", "expires_at": "2026-12-01T09:59:59Z"}, "alice", False, "expired"),
    ({"change_id": "CHG-1", "approver": "carol", "expires_at": "2026-12-01T10:00:01Z"}, "alice", True, "approved"),
    ({"change_id": "CHG-1", "approver": "carol", "environments": ["staging"]}, "alice", False, "not for prod"),
    ({"change_id": "CHG-1", "approver": "carol", "status": ""}, "alice", False, "CHG-1 is without a status, not approved"),
    ({"change_id": "CHG-1", "approver": "carol", "status": None}, "alice", False, "without a status"),
    ({"change_id": "CHG-1", "approver": "carol", "status": True}, "alice", False, "of status True"),
    ({"change_id": "CHG-1", "approver": "carol", "status": " Approved "}, "alice", True, "approved by carol"),
    # A string is not a list: "prod" must not pass as a substring of "production".
    ({"change_id": "CHG-1", "approver": "carol", "environments": "production"}, "alice", False,
     "environments is 'production', not a list of environment names (write [production])"),
])
def test_approvals(approval, deployer, valid, text):
    ok, reason = gov.check_approval(approval, deployer, NOW, environment="prod")
    assert ok is valid and text in reason
