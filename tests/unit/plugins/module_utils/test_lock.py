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


def test_create_lock_writes_the_whole_lock_at_once_and_leaves_no_scratch(tmp_path, monkeypatch):
    path = str(tmp_path / "deploy.lock")
    seen = []
    real_link = _lock.os.link

    def link(source, target):
        # At the moment the name appears, the content is already complete.
        seen.append(_lock.read_lock(source))
        return real_link(source, target)

    monkeypatch.setattr(_lock.os, "link", link)
    lock = _lock.new_lock("run-1", "alice@ctl", 42, 60, T0, {"host": "ctl", "pid": 42})
    assert _lock.create_lock(path, lock) is True
    assert seen == [lock] and _lock.read_lock(path) == lock
    assert _lock.create_lock(path, dict(lock, run_id="run-2")) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy.lock"]


def test_remove_lock_compares_before_it_deletes(tmp_path):
    path = str(tmp_path / "deploy.lock")
    _lock.create_lock(path, {"run_id": "a"})
    assert _lock.remove_lock(path, {"run_id": "b"}) is False
    assert _lock.read_lock(path) == {"run_id": "a"}
    assert _lock.remove_lock(path, {"run_id": "a"}) is True
    assert _lock.read_lock(path) is None and _lock.remove_lock(path, {"run_id": "a"}) is False
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("params, now, expected", [
    pytest.param({"takeover": "dead", "reason": "gone"}, at(10), "gone", id="named-dead"),
    pytest.param({"takeover": "other", "reason": "gone"}, at(10), None, id="another-run-named"),
    pytest.param({}, at(10), None, id="live"),
    pytest.param({}, at(3600), "it expired at 2026-11-27T11:00:00.000000Z", id="expired"),
])
def test_takeover_reason(params, now, expected):
    held = _lock.new_lock("dead", "bob@ctl", 7, 3600, T0)
    assert _lock.takeover_reason(held, params, now) == expected


class Layout(object):
    def __init__(self, root):
        self.root = str(root)
        self.lock = str(root / "deploy.lock")
        self.history = str(root / "history.jsonl")
        self.meta = str(root)

    def ensure_dirs(self):
        pass


def params(run_id, **extra):
    return dict({"run_id": run_id, "owner": "a@ctl", "pid": 1, "ttl": 600, "force": False, "reason": None}, **extra)


def test_of_two_runs_started_together_the_older_waits_for_the_younger_to_go_and_the_younger_gives_up(tmp_path):
    layout = Layout(tmp_path)
    older, newer = "20261203T120000Z-aaaaaaaa", "20261203T120000Z-bbbbbbbb"
    assert _lock.younger({"run_id": newer}, older) and not _lock.younger({"run_id": older}, newer)
    _lock.acquire(layout, params(newer))
    waited = []

    def sleep(seconds):
        # The younger run aborts and releases its lock while the older one waits.
        waited.append(seconds)
        if len(waited) == 3:
            _lock.release(layout, params(newer))

    taken = _lock.acquire(layout, params(older, wait_younger=30), sleep=sleep)
    assert taken["lock"]["run_id"] == older and len(waited) == 3
    with pytest.raises(_lock.ReleaseError) as err:
        _lock.acquire(layout, params(newer, wait_younger=30), sleep=lambda s: pytest.fail("the younger run waited"))
    assert "held by run %s" % older in err.value.msg


def test_the_older_run_waits_only_so_long(tmp_path):
    layout = Layout(tmp_path)
    _lock.acquire(layout, params("20261203T120000Z-bbbbbbbb"))
    ticks = iter(range(0, 1000, 10))
    with pytest.raises(_lock.ReleaseError):
        _lock.acquire(layout, params("20261203T120000Z-aaaaaaaa", wait_younger=30), clock=lambda: next(ticks),
                      sleep=lambda s: None)


@pytest.mark.parametrize("held, is_younger", [
    pytest.param({"run_id": "20261203T120001Z-00000000"}, True, id="a-later-run-id"),
    pytest.param({"run_id": "20261203T115959Z-ffffffff"}, False, id="an-earlier-run-id"),
    pytest.param({"run_id": "deploy-in-progress", "started_at": "2026-12-03T11:59:00.000000Z"}, False,
                 id="a-foreign-id-started-before"),
    pytest.param({"run_id": "deploy-in-progress", "started_at": "2026-12-03T12:05:00.000000Z"}, True,
                 id="a-foreign-id-started-after"),
    pytest.param({"run_id": "deploy-in-progress"}, False, id="a-foreign-id-with-no-time"),
])
def test_younger_reads_a_foreign_run_id_by_its_start_not_as_text(held, is_younger):
    # As text, "deploy-in-progress" sorts after every run id: a rollback used to wait a minute for such a lock.
    assert _lock.younger(held, "20261203T120000Z-aaaaaaaa") is is_younger


def test_a_renewed_lock_has_a_short_ttl_and_expires_for_blind_readers_only_at_its_bound():
    lock = _lock.new_lock("run-1", "alice@ctl", 42, 60, T0, renewed={"host": "lb01", "backend": "shop"}, bound=900)
    assert lock["ttl"] == 60 and lock["renewed"] == {"host": "lb01", "backend": "shop"}
    assert lock["expires_at"] == "2026-11-27T10:15:00.000000Z"
    assert _lock.is_stale(lock, at(899)) is False
    assert _lock.is_stale(lock, at(900)) is True
    assert "renewed by its heartbeats" in _lock.describe(lock)
    # Without renewal the bound means nothing: the time to live is the whole story.
    plain = _lock.new_lock("run-1", "alice@ctl", 42, 60, T0, bound=900)
    assert "renewed" not in plain and _lock.is_stale(plain, at(60)) is True


def test_an_expires_at_earlier_than_the_ttl_does_not_shorten_a_lock():
    lock = dict(_lock.new_lock("run-1", "alice@ctl", 42, 600, T0), expires_at="2026-11-27T10:00:01.000000Z")
    assert _lock.is_stale(lock, at(599)) is False


def test_a_paused_run_keeps_its_lock_naming_no_process_and_another_run_is_told_to_promote_or_abort(tmp_path):
    layout = Layout(tmp_path)
    _lock.acquire(layout, params("RUN-1", renewed={"host": "lb", "backend": "b"}, controller={"host": "ctl"}))
    state = {"run": {"run_id": "RUN-1", "lock": {"bound_s": 900}}, "records": [{"index": 1}], "release_id": "R2",
             "version": "2.0.0", "after_batch": 1, "batches": 3, "canary": True}
    with pytest.raises(_lock.ReleaseError):
        _lock.pause(layout, "RUN-2", 3600, state)
    _lock.pause(layout, "RUN-1", 3600, state)
    held = _lock.read_lock(layout.lock)
    assert held["paused"]["after_batch"] == 1 and held["ttl"] == 3600
    # Nothing in it can prove the run dead: no process, no heartbeat; and the lock itself carries no state.
    assert "controller" not in held and "renewed" not in held and "state" not in held and held["pid"] is None
    assert oct(__import__("os").stat(_lock.state_path(layout)).st_mode & 0o777) == "0o600"
    with pytest.raises(_lock.ReleaseError) as err:
        _lock.acquire(layout, params("RUN-2"))
    assert "paused run RUN-1" in err.value.msg and "promote.yml" in err.value.msg and "abort.yml" in err.value.msg
    history = open(layout.history).read()
    assert '"action": "paused"' in history


def test_resume_hands_the_paused_lock_to_the_new_process_and_returns_the_state(tmp_path):
    layout = Layout(tmp_path)
    assert _lock.resume(layout, "", dict(params("x"), ttl=600))["paused"] is None
    _lock.acquire(layout, params("RUN-1"))
    # A live run's lock is not a paused one: resume leaves it alone.
    assert _lock.resume(layout, "", dict(params("x"), ttl=600))["paused"] is None
    state = {"run": {"run_id": "RUN-1", "lock": {"bound_s": 900}}, "records": [], "release_id": "R2",
             "version": "2.0.0", "after_batch": 1, "batches": 3, "canary": False}
    _lock.pause(layout, "RUN-1", 3600, state)
    with pytest.raises(_lock.ReleaseError) as err:
        _lock.resume(layout, "RUN-9", params("RUN-9"))
    assert "not by run RUN-9" in err.value.msg
    previewed = _lock.resume(layout, "", params("", pid=77, renewed={"host": "lb"}), check_mode=True)
    assert previewed["paused"]["run_id"] == "RUN-1" and _lock.read_lock(layout.lock)["paused"]
    answer = _lock.resume(layout, "RUN-1", params("", pid=77, renewed={"host": "lb"}, controller={"host": "c2"}))
    assert answer["state"]["run"]["run_id"] == "RUN-1" and answer["paused"]["after_batch"] == 1
    held = _lock.read_lock(layout.lock)
    assert held["run_id"] == "RUN-1" and held["pid"] == 77 and held["controller"] == {"host": "c2"}
    assert held["renewed"] == {"host": "lb"} and "paused" not in held and held["resumed"]["after_batch"] == 1
    # The bound the paused run planned still limits the lock for readers that cannot see the heartbeats.
    assert _lock.lock_expiry(held) > _lock.lock_expiry(dict(held, expires_at=None))
    # An expired pause is an expired lock: no promote takes it back (the next deploy takes it over).
    _lock.release(layout, params("RUN-1"))
    _lock.acquire(layout, params("RUN-1"))
    _lock.pause(layout, "RUN-1", 3600, state)
    expired = dict(_lock.read_lock(layout.lock), expires_at="2000-01-01T00:00:00Z", started_at="2000-01-01T00:00:00Z")
    _lock.remove_lock(layout.lock, _lock.read_lock(layout.lock))
    _lock.create_lock(layout.lock, expired)
    with pytest.raises(_lock.ReleaseError) as err:
        _lock.resume(layout, "", params(""))
    assert "The pause of run RUN-1" in err.value.msg and "expired" in err.value.msg
    assert _lock.acquire(layout, params("RUN-2"))["took_over"].startswith("it expired")
    # The run's own release removes what it left for its promote.
    _lock.release(layout, params("RUN-2"))
    _lock.acquire(layout, params("RUN-1"))
    _lock.pause(layout, "RUN-1", 3600, state)
    _lock.resume(layout, "RUN-1", params(""))
    _lock.release(layout, params("RUN-1"))
    assert not __import__("os").path.exists(_lock.state_path(layout))
