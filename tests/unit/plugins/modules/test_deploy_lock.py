import json
import os

import pytest

from ansible_collections.conveyor.deploy.plugins.modules import deploy_lock

from ...conftest import ModuleFail


def lock(run_module, root, run_id, **extra):
    args = dict(app_root=root, run_id=run_id, owner="alice@ctl")
    args.update(extra)
    return run_module(deploy_lock, args)


def test_second_run_is_refused_with_the_holder(run_module, tmp_path):
    root = str(tmp_path / "app")
    assert lock(run_module, root, "run-1")["changed"] is True
    assert lock(run_module, root, "run-1")["changed"] is False
    with pytest.raises(ModuleFail) as err:
        lock(run_module, root, "run-2")
    assert "held by run run-1 by alice@ctl" in err.value.result["msg"]


def write_lock(root, **lock):
    os.makedirs(os.path.join(root, ".conveyor"), exist_ok=True)
    with open(os.path.join(root, ".conveyor", "deploy.lock"), "w") as handle:
        json.dump(dict({"owner": "bob@ci", "ttl": 60}, **lock), handle)


def history(root):
    return [json.loads(line) for line in open(os.path.join(root, ".conveyor", "history.jsonl"))]


def test_an_expired_lock_is_taken_over_and_the_takeover_recorded(run_module, tmp_path):
    root = str(tmp_path / "app")
    write_lock(root, run_id="old", started_at="2020-01-01T00:00:00.000000Z")
    preview = run_module(deploy_lock, dict(app_root=root, run_id="run-2"), check_mode=True)
    assert preview["changed"] and "taking over the lock of run old" in preview["msg"]
    assert json.load(open(os.path.join(root, ".conveyor", "deploy.lock")))["run_id"] == "old"
    result = lock(run_module, root, "run-2")
    assert result["previous"]["run_id"] == "old" and result["lock"]["run_id"] == "run-2" and result["stale"] is True
    assert "it expired at" in result["took_over"]
    assert history(root)[-1]["action"] == "lock_takeover" and history(root)[-1]["broken"]["run_id"] == "old"


def test_a_live_lock_is_broken_only_with_force_and_a_reason(run_module, tmp_path):
    root = str(tmp_path / "app")
    write_lock(root, run_id="old", started_at="2999-01-01T00:00:00.000000Z")
    with pytest.raises(ModuleFail) as err:
        lock(run_module, root, "run-2")
    assert "held by run old by bob@ci" in err.value.result["msg"] and err.value.result["stale"] is False
    with pytest.raises(ModuleFail) as err:
        lock(run_module, root, "run-2", force=True)
    assert "reason" in err.value.result["msg"]
    result = lock(run_module, root, "run-2", force=True, reason="ci died")
    assert result["previous"]["run_id"] == "old" and result["lock"]["run_id"] == "run-2"
    assert history(root)[-1]["action"] == "lock_break" and history(root)[-1]["reason"] == "ci died"


def test_release_only_by_the_same_run(run_module, tmp_path):
    root = str(tmp_path / "app")
    lock(run_module, root, "run-1")
    with pytest.raises(ModuleFail) as err:
        run_module(deploy_lock, dict(app_root=root, run_id="run-2", state="absent"))
    assert "belongs to run run-1" in err.value.result["msg"]
    assert run_module(deploy_lock, dict(app_root=root, run_id="run-1", state="absent"))["changed"] is True
    assert not os.path.exists(os.path.join(root, ".conveyor", "deploy.lock"))
    assert run_module(deploy_lock, dict(app_root=root, run_id="run-1", state="absent"))["changed"] is False


def test_check_mode_takes_no_lock(run_module, tmp_path):
    root = str(tmp_path / "app")
    assert run_module(deploy_lock, dict(app_root=root, run_id="run-1"), check_mode=True)["changed"] is True
    assert not os.path.exists(root)
