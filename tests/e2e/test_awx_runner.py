"""Runs as AWX makes them: ansible-runner with a private data dir laid out as AWX lays it out.

AWX syncs the project into ``project/``, writes the inventory to ``inventory/``, the survey's answers and its
own ``awx_*`` variables to ``env/extravars``, the credentials' environment to ``env/envvars`` and the job's
options to ``env/cmdline``, sets a collections path of its own, and runs the playbook from the project
directory. The project here is a plain copy of the tracked tree (tests/copy-tree.sh), so it finds
conveyor.deploy only through its committed ``collections/`` link.
"""
import json
import os
import subprocess
import sys
import time

import pytest

from .conftest import ROOT, VENV_BIN, Webhook, lb_servers, live_versions, locks

sys.path.insert(0, os.path.join(ROOT, "collections"))  # the committed link to this checkout
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _holder  # noqa: E402 pylint: disable=C0413

ansible_runner = pytest.importorskip("ansible_runner")

JOB = {"awx_job_id": 4242, "awx_job_template_name": "conveyor lab deploy", "awx_user_name": "alice",
       "awx_workflow_job_id": 4240}


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(data if isinstance(data, str) else json.dumps(data))


@pytest.fixture(scope="module")
def awx(tmp_path_factory):
    """A private data dir: project/, inventory/, env/; and the change log and webhook the job reports to."""
    private = tmp_path_factory.mktemp("awx-job")
    subprocess.run(["bash", os.path.join(ROOT, "tests", "copy-tree.sh"), str(private / "project")], check=True)
    # The lab's SSH key and known hosts are written by `make lab-up`, outside the tracked tree; AWX gets them
    # from a machine credential. Link the generated state in as the credential would provide it.
    for name in ("lab/.state", "inventories/lab/hosts.yml"):
        source, dest = os.path.join(ROOT, name), str(private / "project" / name)
        if os.path.exists(source) and not os.path.exists(dest):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.symlink(source, dest)
    inventory = subprocess.run([os.path.join(VENV_BIN, "ansible-inventory"), "-i",
                                str(private / "project" / "inventories" / "lab"), "--list"],
                               cwd=str(private / "project"), capture_output=True, text=True, check=True,
                               env=dict(os.environ, ANSIBLE_CONFIG=str(private / "project" / "ansible.cfg")))
    write(str(private / "inventory" / "hosts"), "#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n" % inventory.stdout)
    os.chmod(str(private / "inventory" / "hosts"), 0o755)
    hook = Webhook(str(private))
    empty = private / "awx_collections"
    empty.mkdir()
    write(str(private / "env" / "envvars"), {
        "PATH": VENV_BIN + os.pathsep + os.environ["PATH"],
        # AWX's own collections path: nothing of conveyor.deploy in it.
        "ANSIBLE_COLLECTIONS_PATHS": str(empty), "ANSIBLE_COLLECTIONS_PATH": str(empty),
        "ANSIBLE_FORCE_COLOR": "0",
        "CONVEYOR_CHANGELOG_PATH": str(private / "changelog.jsonl"),
        "CONVEYOR_CHANGELOG_REPORT_DIR": str(private / "reports"),
        # what the "conveyor tokens" credential type injects (playbooks/awx_configure.yml)
        "CONVEYOR_NOTIFY_URL": hook.url + "/generic", "CONVEYOR_NOTIFY_TOKEN": "awx-injected-token"})
    write(str(private / "env" / "cmdline"), "--diff")
    yield {"dir": str(private), "hook": hook}
    hook.close()


def launch(awx, playbook, survey):
    write(os.path.join(awx["dir"], "env", "extravars"), dict(JOB, **survey))
    return ansible_runner.run(private_data_dir=awx["dir"], playbook=playbook, quiet=True, timeout=900)


def stats_of(result):
    ends = [event for event in result.events if event.get("event") == "playbook_on_stats"]
    assert len(ends) == 1
    return ends[0]["event_data"].get("artifact_data") or {}


def records(awx):
    with open(os.path.join(awx["dir"], "changelog.jsonl")) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_a_deploy_launched_as_awx_launches_it(awx):
    target = "1.1.0" if "1.1.0" not in set(live_versions().values()) else "2.0.0"
    result = launch(awx, "deploy.yml", {"app_version": target, "change_id": "CHG-4242", "change_approver": "bob",
                                        "rolling_failure_policy": "rollback_fleet"})
    assert result.status == "successful" and result.rc == 0, result.stdout.read()[-3000:]
    assert set(live_versions().values()) == {target}
    events = list(result.events)
    plays = [event["event_data"].get("play") for event in events if event.get("event") == "playbook_on_play_start"]
    assert any(str(play).startswith("Rollout | Cut over") for play in plays), plays
    assert any(event.get("event") == "runner_on_ok" and event["event_data"].get("task_action", "").endswith("cutover")
               for event in events)
    summary = stats_of(result)["conveyor_deploy"]
    assert summary["version"] == target
    assert summary["actor"].startswith("alice@"), summary["actor"]  # AWX's launching user, not the runner's
    record = records(awx)[-1]
    assert record["kind"] == "deploy" and record["version"] == target
    assert record["actor"]["awx"] == {"job_id": "4242", "template": "conveyor lab deploy", "launched_by": "alice",
                                      "workflow_job_id": "4240"}
    assert record["change"]["change_id"] == "CHG-4242" and record["change"]["approver"] == "bob"
    posts = [post for post in awx["hook"].received() if post["path"] == "/generic"]
    assert posts and all(post["authorized"] for post in posts)
    assert {post["body"]["actor"]["awx"]["job_id"] for post in posts} == {"4242"}
    assert len({post["body"]["run_id"] for post in posts}) == 1
    assert posts[0]["body"]["run_id"] == record["run_id"]


def test_a_rollback_survey_answered_as_strings_rolls_every_host_back_at_once(awx):
    before = set(live_versions().values())
    assert len(before) == 1
    result = launch(awx, "playbooks/rollback.yml", {"rollback_to": "", "rollback_reason": "AWX drill",
                                                    "rollback_all_at_once": "true",
                                                    "rollback_not_release_fault": "true"})
    assert result.status == "successful", result.stdout.read()[-3000:]
    after = set(live_versions().values())
    assert len(after) == 1 and after != before
    summary = stats_of(result)["conveyor_rollback"]
    assert summary["actor"].startswith("alice@"), summary["actor"]
    plays = [event["event_data"].get("play") for event in result.events
             if event.get("event") == "playbook_on_play_start"]
    assert sum(1 for play in plays if str(play).startswith("Rollout | Cut over")) == 1, plays
    record = records(awx)[-1]
    assert record["kind"] == "rollback" and record["actor"]["awx"]["job_id"] == "4242"


def test_a_cancelled_job_is_repaired_and_recorded_by_the_next_job(awx):
    """AWX cancels a job through ansible-runner, which SIGKILLs the playbook's process group: nothing in the
    run can clean up or record it. The next job takes the dead run's locks over, puts those hosts through their
    batch again, and records the cancelled run as interrupted."""
    target = "1.1.0" if "1.1.0" not in set(live_versions().values()) else "1.0.0"
    switching = []

    def event_handler(event):
        if event.get("event") == "runner_on_start" and \
                (event.get("event_data") or {}).get("task", "").startswith("Cutover | Switch, restart and gate"):
            switching.append(event)
        return True

    write(os.path.join(awx["dir"], "env", "extravars"), dict(JOB, app_version=target, change_id="CHG-4243", change_approver="bob"))
    cancelled = ansible_runner.run(private_data_dir=awx["dir"], playbook="deploy.yml", quiet=True, timeout=900,
                                   event_handler=event_handler, cancel_callback=lambda: bool(switching))
    assert cancelled.status == "canceled", cancelled.stdout.read()[-3000:]
    held = locks()
    assert held, "the cancelled job left no lock: it was cancelled too late to test anything"
    dead = {json.loads(text)["run_id"] for text in held.values()}
    assert len(dead) == 1
    wait_until_idle(dead)
    result = launch(awx, "deploy.yml", {"app_version": target, "change_id": "CHG-4243", "change_approver": "bob"})
    assert result.status == "successful", result.stdout.read()[-3000:]
    assert locks() == {} and set(live_versions().values()) == {target}
    assert all(state == ("2", "0") for state in lb_servers().values()), lb_servers()
    found = {record["run_id"]: record for record in records(awx)}
    (dead_id,) = dead
    mine = records(awx)[-1]
    assert found[dead_id]["outcome"] == "interrupted" and found[dead_id]["found_by"] == mine["run_id"]
    assert mine["outcome"] == "succeeded" and mine["took_over"] == [dead_id]
    # The cancelled job's workers that finished their task wait for ever on a pipe nobody reads: end them.
    for pid in _holder.run_processes(dead_id):
        os.kill(pid, 9)


def wait_until_idle(run_ids, timeout=120):
    deadline = time.monotonic() + timeout
    while any(_holder.working(run_id) for run_id in run_ids):
        assert time.monotonic() < deadline, "the cancelled job's workers still work after %d s" % timeout
        time.sleep(0.2)
