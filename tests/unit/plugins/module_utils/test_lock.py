import datetime

import pytest

from ansible_collections.conveyor.deploy.plugins.module_utils import _lock

T0 = datetime.datetime(2026, 11, 27, 10, 0, 0, tzinfo=datetime.timezone.utc)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("now, stale", [
    pytest.param(at(0), False, id="just-taken"),
    pytest.param(at(3599), False, id="one-second-left"),
    pytest.param(at(3600), True, id="at-expiry"),
    pytest.param(at(7200), True, id="long-expired"),
])
def test_is_stale_follows_ttl(now, stale):
    lock = _lock.new_lock("run-1", "alice@ctl", 42, 3600, T0)
    assert _lock.is_stale(lock, now) is stale


@pytest.mark.parametrize("lock", [
    pytest.param({}, id="empty"),
    pytest.param({"started_at": "yesterday", "ttl": 10}, id="bad-time"),
    pytest.param({"started_at": "2026-11-27T10:00:00.000000Z", "ttl": "x"}, id="bad-ttl"),
])
def test_unreadable_lock_counts_as_stale(lock):
    assert _lock.is_stale(lock, T0) is True


def test_new_lock_records_expiry_and_owner():
    lock = _lock.new_lock("run-1", "alice@ctl", 42, 60, T0)
    assert lock["expires_at"] == "2026-11-27T10:01:00.000000Z"
    assert "alice@ctl" in _lock.describe(lock) and "run-1" in _lock.describe(lock)


def test_create_lock_is_exclusive(tmp_path):
    path = str(tmp_path / "deploy.lock")
    assert _lock.create_lock(path, {"run_id": "a"}) is True
    assert _lock.create_lock(path, {"run_id": "b"}) is False
    assert _lock.read_lock(path)["run_id"] == "a"
    assert _lock.read_lock(str(tmp_path / "none")) is None
    (tmp_path / "garbage").write_text("{not json")
    assert _lock.read_lock(str(tmp_path / "garbage")) == {}
