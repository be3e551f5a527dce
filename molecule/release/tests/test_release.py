"""The release lifecycle on real hosts: what converge left, then locks, check mode and refusals."""
import json
import os
import subprocess

import pytest

ROOT = "/opt/sample"
URL = "http://127.0.0.1:8081"


def module(host, name, check=False, **args):
    """Run a conveyor.deploy module on the host ad hoc; return (ok, result).

    testinfra's host.ansible reads the tree callback, which in ansible-core 2.19 no
    longer carries "failed", so refusals would look like successes: use the json
    callback instead.
    """
    command = ["ansible", host.backend.host, "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-b",
               "-m", "conveyor.deploy." + name, "-a", json.dumps(args)] + (["--check"] if check else [])
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    output = json.loads(proc.stdout)
    result = output["plays"][0]["tasks"][0]["hosts"][host.backend.host]
    return not result.get("failed", False), result


def one_host_only(host):
    """Refusals, locks, check mode and pruning do not depend on the host: check them on the first one only."""
    if host.backend.host != "release-app1":
        pytest.skip("checked on release-app1")


def manifest(host, release_id):
    return json.loads(host.file("%s/releases/%s/.conveyor-release.json" % (ROOT, release_id)).content_string)


def test_converge_left_three_good_releases_and_2_0_0_live(host):
    assert host.file(ROOT + "/current").linked_to == ROOT + "/releases/r-2.0.0"
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        data = manifest(host, "r-" + version)
        assert data["state"] == "good" and data["version"] == version and data["verified"] is True
        assert data["staged_by"] == "molecule@controller" and data["change_id"] == "CHG-1"
    release = host.file(ROOT + "/releases/r-2.0.0")
    assert release.user == "root" and release.mode == 0o755
    assert host.file(ROOT + "/releases/r-2.0.0/app.py").mode == 0o755
    assert host.file(ROOT + "/releases/r-2.0.0/logs").linked_to == ROOT + "/shared/logs"
    assert host.run("sudo -u sample touch %s/releases/r-2.0.0/x" % ROOT).rc != 0


def test_history_records_every_action(host):
    lines = [json.loads(line) for line in host.file(ROOT + "/.conveyor/history.jsonl").content_string.splitlines()]
    actions = [(entry["action"], entry.get("release_id")) for entry in lines]
    assert actions[:3] == [("stage", "r-1.0.0"), ("stage", "r-1.1.0"), ("stage", "r-2.0.0")]
    assert ("activate", "r-2.0.0") in actions and ("mark_good", "r-2.0.0") in actions


def test_info_reports_live_and_rollback_target(host):
    ok, info = module(host, "release_info", app_root=ROOT, target="1.0.0")
    assert ok
    assert info["current"]["version"] == "2.0.0"
    assert info["previous_good"]["version"] == "1.1.0"
    assert info["target"]["release_id"] == "r-1.0.0" and info["target_problem"] is None


def test_lock_contention_and_stale_lock(host):
    one_host_only(host)
    ok, first = module(host, "deploy_lock", app_root=ROOT, run_id="run-a", owner="alice@ctl", ttl=6)
    assert ok and first["changed"]
    ok, second = module(host, "deploy_lock", app_root=ROOT, run_id="run-b", owner="bob@ctl")
    assert not ok and "held by run run-a by alice@ctl" in second["msg"]
    # A live lock is broken only with force and a reason, both recorded.
    ok, forced = module(host, "deploy_lock", app_root=ROOT, run_id="run-b", owner="bob@ctl", force=True,
                        reason="alice's run died", ttl=6)
    assert ok and forced["previous"]["run_id"] == "run-a" and forced["took_over"] is None
    assert "alice's run died" in host.file(ROOT + "/.conveyor/history.jsonl").content_string
    # An expired lock is taken over without force, and the takeover recorded.
    host.run("sleep 6")
    ok, taken = module(host, "deploy_lock", app_root=ROOT, run_id="run-c", owner="carol@ctl")
    assert ok and taken["stale"] is True and taken["previous"]["run_id"] == "run-b"
    assert taken["took_over"].startswith("it expired at")
    assert '"action": "lock_takeover"' in host.file(ROOT + "/.conveyor/history.jsonl").content_string
    ok, dummy = module(host, "deploy_lock", app_root=ROOT, run_id="run-c", state="absent")
    assert ok and not host.file(ROOT + "/.conveyor/deploy.lock").exists
    assert host.run("ls -A %s/.conveyor" % ROOT).stdout.split() == ["history.jsonl"]


def test_check_mode_writes_nothing(host):
    one_host_only(host)
    before = host.run("find %s -printf '%%p %%s %%T@\\n' | sort" % ROOT).stdout
    ok, staged = module(host, "release", check=True, app_root=ROOT, release_id="r-check", version="1.0.0",
                        src=URL + "/sample-1.0.0.tar.gz", checksum_url=URL + "/sample-1.0.0.tar.gz.sha256")
    assert ok and staged["changed"]
    ok, switched = module(host, "release", check=True, app_root=ROOT, release_id="r-1.0.0", state="active")
    assert ok and switched["changed"]
    ok, pruned = module(host, "release", check=True, app_root=ROOT, state="pruned", keep=1)
    assert ok and pruned["removed"] == ["r-1.0.0"]
    ok, dummy = module(host, "deploy_lock", check=True, app_root=ROOT, run_id="run-d")
    assert ok
    assert host.run("find %s -printf '%%p %%s %%T@\\n' | sort" % ROOT).stdout == before


def test_prune_keeps_live_and_rollback_target(host):
    one_host_only(host)
    ok, dummy = module(host, "release", app_root=ROOT, release_id="r-tmp", version="1.0.0",
                       src=URL + "/sample-1.0.0.tar.gz", checksum_url=URL + "/sample-1.0.0.tar.gz.sha256")
    assert ok
    host.run("mkdir -p %s/releases/.tmp-r-dead-abc" % ROOT)
    ok, pruned = module(host, "release", app_root=ROOT, state="pruned", keep=1)
    assert ok
    assert sorted(pruned["removed"]) == [".tmp-r-dead-abc", "r-1.0.0", "r-tmp"]
    remaining = sorted(host.run("ls %s/releases" % ROOT).stdout.split())
    assert remaining == ["r-1.1.0", "r-2.0.0"]  # live and rollback target survive keep=1


@pytest.mark.parametrize("archive, text", [
    ("absolute", "absolute path"),
    ("dotdot", "'..' in the path"),
    ("symlink", "symlink to absolute path /etc/shadow"),
    ("hardlink", "hard link pointing outside"),
])
def test_unsafe_archives_are_refused(host, archive, text):
    one_host_only(host)
    ok, result = module(host, "release", app_root=ROOT, release_id="r-bad", version="6.6.6",
                        src="%s/bad/%s.tar.gz" % (URL, archive), checksum_url="%s/bad/%s.tar.gz.sha256" % (URL, archive))
    assert not ok and text in result["msg"]
    assert not host.file(ROOT + "/releases/r-bad").exists
    assert not host.run("ls -a %s/releases | grep '^.tmp-'" % ROOT).stdout
    assert not host.file("/tmp/evil-absolute").exists and not host.file("/opt/evil-dotdot").exists


@pytest.mark.parametrize("args, text", [
    (dict(release_id="r-x", checksum="0" * 64), "sha256 mismatch"),
    (dict(release_id="a/b"), "path separator"),
    (dict(release_id=".."), "'..'"),
    (dict(release_id="has space"), "whitespace"),
    (dict(release_id="r-x", app_root="opt/sample"), "must be an absolute path"),
    (dict(release_id="r-x", src=URL + "/sample-9.9.9.tar.gz", checksum="a" * 64), "HTTP 404"),
    (dict(release_id="r-x", src="http://127.0.0.1:9/sample.tar.gz", checksum="a" * 64), "Could not fetch the artifact"),
])
def test_bad_input_is_refused_with_a_clear_message(host, args, text):
    one_host_only(host)
    call = dict(app_root=ROOT, version="1.0.0", src=URL + "/sample-1.0.0.tar.gz",
                checksum_url=URL + "/sample-1.0.0.tar.gz.sha256")
    call.update(args)
    if "checksum" in args:
        call.pop("checksum_url")
    ok, result = module(host, "release", **call)
    assert not ok and text in result["msg"]
    assert host.file(ROOT + "/current").linked_to == ROOT + "/releases/r-2.0.0"


def test_disk_full_while_unpacking_leaves_nothing(host):
    one_host_only(host)
    ok, result = module(host, "release", app_root="/srv/tiny/app", release_id="r-big", version="1.0.0",
                        src=URL + "/bad/big.tar.gz", checksum_url=URL + "/bad/big.tar.gz.sha256")
    assert not ok and "space" in result["msg"]
    assert host.run("ls -A /srv/tiny/app/releases").stdout.strip() == ""
    assert not host.file("/srv/tiny/app/current").exists
