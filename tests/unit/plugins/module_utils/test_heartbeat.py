"""A run's heartbeats on the load-balancer host, and how long a run has been silent."""
import datetime
import os

from ansible_collections.conveyor.deploy.plugins.module_utils import _heartbeat

T0 = datetime.datetime(2026, 12, 6, 22, 0, 0, tzinfo=datetime.timezone.utc)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def test_a_beat_is_read_back_and_a_later_beat_replaces_it(tmp_path):
    path = _heartbeat.directory(str(tmp_path), "shop")
    assert _heartbeat.read(path) == {}
    _heartbeat.beat(path, "20261206T220000Z-aa", at(0))
    _heartbeat.beat(path, "20261206T220005Z-bb", at(5))
    _heartbeat.beat(path, "20261206T220000Z-aa", at(30))
    assert _heartbeat.read(path) == {"20261206T220000Z-aa": "2026-12-06T22:00:30.000000Z",
                                     "20261206T220005Z-bb": "2026-12-06T22:00:05.000000Z"}
    assert sorted(os.listdir(path)) == ["20261206T220000Z-aa", "20261206T220005Z-bb"]


def test_names_cannot_leave_the_directory(tmp_path):
    path = _heartbeat.directory(str(tmp_path / "beats"), "../..")
    assert os.path.dirname(path) == str(tmp_path / "beats")
    _heartbeat.beat(path, "../../../etc/passwd", at(0))
    assert os.listdir(path) == [".._.._.._etc_passwd"]
    assert _heartbeat.read(path) == {"../../../etc/passwd": "2026-12-06T22:00:00.000000Z"}


def test_unreadable_and_scratch_files_are_skipped_and_old_beats_pruned(tmp_path):
    path = _heartbeat.directory(str(tmp_path), "shop")
    os.makedirs(path)
    (tmp_path / "shop" / "garbage").write_text("{not json")
    (tmp_path / "shop" / "empty").write_text("")
    (tmp_path / "shop" / "run.123.tmp").write_text('{"run_id": "x", "at": "2026-12-06T22:00:00Z"}')
    old = tmp_path / "shop" / "old-run"
    old.write_text('{"run_id": "old-run", "at": "2026-11-01T00:00:00.000000Z"}')
    os.utime(old, (at(-8 * 86400).timestamp(),) * 2)
    _heartbeat.beat(path, "new-run", at(0))
    assert _heartbeat.read(path) == {"new-run": "2026-12-06T22:00:00.000000Z"}
    assert not old.exists()


def test_silence_is_measured_on_the_load_balancers_clock():
    view = {"read_at": "2026-12-06T22:10:00.000000Z", "beats": {"a": "2026-12-06T22:00:00.000000Z"}}
    assert _heartbeat.silent_for(view, "a") == 600.0
    assert _heartbeat.silent_for(view, "b") is None
    assert _heartbeat.silent_for(None, "a") is None
    assert _heartbeat.silent_for({"beats": view["beats"]}, "a") is None
    # A beat written after the view was read (clock steps) is no silence.
    assert _heartbeat.silent_for(dict(view, read_at="2026-12-06T21:59:00.000000Z"), "a") == 0.0
