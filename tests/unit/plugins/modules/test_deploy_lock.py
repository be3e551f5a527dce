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


def test_stale_lock_needs_force_and_reason(run_module, tmp_path):
    root = str(tmp_path / "app")
    os.makedirs(os.path.join(root, ".conveyor"))
    with open(os.path.join(root, ".conveyor", "deploy.lock"), "w") as handle:
        json.dump({"run_id": "old", "owner": "bob@ci", "started_at": "2020-01-01T00:00:00.000000Z", "ttl": 60}, handle)
    with pytest.raises(ModuleFail) as err:
        lock(run_module, root, "run-2")
    assert "stale lock" in err.value.result["msg"] and err.value.result["stale"] is True
    with pytest.raises(ModuleFail) as err:
        lock(run_module, root, "run-2", force=True)
    assert "reason" in err.value.result["msg"]
    preview = run_module(deploy_lock, dict(app_root=root, run_id="run-2", force=True, reason="ci died"), check_mode=True)
    assert preview["changed"] and json.load(open(os.path.join(root, ".conveyor", "deploy.lock")))["run_id"] == "old"
    result = lock(run_module, root, "run-2", force=True, reason="ci died")
    assert result["previous"]["run_id"] == "old" and result["lock"]["run_id"] == "run-2"
    history = [json.loads(line) for line in open(os.path.join(root, ".conveyor", "history.jsonl"))]
    assert history[-1]["action"] == "lock_break" and history[-1]["reason"] == "ci died"


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
