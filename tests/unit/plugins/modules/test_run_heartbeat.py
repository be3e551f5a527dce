"""The run_heartbeat module: one beat per run, every run's last beat read back on the load balancer's clock."""
import pytest

from ansible_collections.conveyor.deploy.plugins.modules import run_heartbeat

from ...conftest import ModuleFail


def test_a_run_beats_and_reads_every_runs_last_beat(run_module, tmp_path):
    first = run_module(run_heartbeat, dict(backend="shop", run_id="run-a", dir=str(tmp_path)))
    assert first["changed"] and first["beats"] == {"run-a": first["now"]}
    second = run_module(run_heartbeat, dict(backend="shop", run_id="run-b", dir=str(tmp_path)))
    assert second["beats"] == {"run-a": first["now"], "run-b": second["now"]}
    # Another backend (another application) has its own runs.
    assert run_module(run_heartbeat, dict(backend="api", dir=str(tmp_path)))["beats"] == {}


def test_check_mode_and_a_read_without_a_run_record_nothing(run_module, tmp_path):
    result = run_module(run_heartbeat, dict(backend="shop", run_id="run-a", dir=str(tmp_path)), check_mode=True)
    assert result["changed"] is False and result["beats"] == {} and result["now"].endswith("Z")
    assert run_module(run_heartbeat, dict(backend="shop", dir=str(tmp_path)))["changed"] is False
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_cannot_be_written_fails_naming_the_run_and_the_fix(run_module, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(ModuleFail) as caught:
        run_module(run_heartbeat, dict(backend="shop", run_id="run-a", dir=str(blocked)))
    assert caught.value.result["msg"].startswith("Could not record the heartbeat of run run-a in %s/shop" % blocked)
    assert "fix the directory's permissions" in caught.value.result["msg"]
