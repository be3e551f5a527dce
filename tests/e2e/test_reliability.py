"""Reliability and security on the lab: what a hostile or broken input cannot do to a fleet."""
import os
import subprocess

import pytest

from .conftest import HAPROXY_STATE, INVENTORY, ROOT, app_hosts, live_versions, on_host, playbook, run

PLANTED = {"/opt/sample/planted.txt": "planted by the test\n", "/opt/planted.txt": "planted by the test\n"}


def test_hostile_archive_writes_nothing_outside_its_release():
    """6.6.9 climbs out of its release through earlier symlinks and writes through a hard link."""
    hosts = app_hosts()
    before = live_versions()
    for host in hosts:
        for path, text in PLANTED.items():
            on_host(host, "printf '%s' > %s" % (text.strip() + "\\n", path))
        on_host(host, "rm -f /etc/conveyor-pwned")
    listing = {host: on_host(host, "ls -A /opt /opt/sample /opt/sample/releases") for host in hosts}
    try:
        result = playbook("deploy.yml", "-e", "app_version=6.6.9")
        assert result.rc != 0, result.output[-3000:]
        assert "Refusing the artifact" in result.output and "crosses the symlink" in result.output, \
            result.output[-3000:]
        for host in hosts:
            assert on_host(host, "test -e /etc/conveyor-pwned && echo pwned") == "", host
            for path, text in PLANTED.items():
                assert on_host(host, "cat %s" % path) == text.strip(), (host, path)
            assert on_host(host, "ls -A /opt /opt/sample /opt/sample/releases") == listing[host], host
            assert on_host(host, "test -e /opt/sample/.conveyor/deploy.lock && echo held") == "", host
        assert live_versions() == before
    finally:
        for host in hosts:
            on_host(host, "rm -f %s" % " ".join(PLANTED))


def test_a_changed_host_key_is_refused_even_with_checking_turned_off_as_awx_does(tmp_path):
    """The lab pins its hosts' keys; a host whose key does not match is unreachable, and nothing runs on it.

    ANSIBLE_HOST_KEY_CHECKING=False is what AWX puts in a job's environment; the pin in ansible_ssh_args (as the
    example inventories set it) still holds, because OpenSSH takes the first value of an option.
    """
    pinned = os.path.join(ROOT, "lab", ".state", "known_hosts")
    lines = open(pinned).read().splitlines()
    assert any(line.startswith("[127.0.0.1]:2201 ") for line in lines), lines
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "impostor")], check=True)
    impostor = open(str(tmp_path / "impostor.pub")).read().split()[:2]
    forged = str(tmp_path / "known_hosts")
    with open(forged, "w") as handle:
        for line in lines:
            host = line.split()[0]
            handle.write("%s %s %s\n" % (host, impostor[0], impostor[1]) if host == "[127.0.0.1]:2201" else line + "\n")
    marker = "/tmp/conveyor-host-key-test"
    on_host("app01", "rm -f %s" % marker)
    args = ("-o ControlMaster=no -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s" % forged)
    result = run(["ansible", "-i", INVENTORY, "app01:app02", "-m", "ansible.builtin.file",
                  "-a", "path=%s state=touch" % marker, "-e", "ansible_ssh_args='%s'" % args],
                 env={"ANSIBLE_HOST_KEY_CHECKING": "False"})
    assert result.rc != 0, result.output[-2000:]
    assert "app01 | UNREACHABLE" in result.output and "Host key verification failed" in result.output, \
        result.output[-2000:]
    assert "app02 | CHANGED" in result.output, result.output[-2000:]
    assert on_host("app01", "test -e %s && echo touched" % marker) == ""
    on_host("app02", "rm -f %s" % marker)
    # The lab's own inventory checks the same way, against the keys lab-up pinned.
    pinned_run = run(["ansible", "-i", INVENTORY, "app01", "-m", "ansible.builtin.ping"])
    assert pinned_run.rc == 0 and "StrictHostKeyChecking=no" not in open(os.path.join(INVENTORY, "hosts.yml")).read()


def fleet_state():
    """What a deploy changes: each host's releases, live link, lock and unit start, and each server's HAProxy
    operational and administrative state."""
    hosts = {host: on_host(host, "ls /opt/sample/releases; readlink /opt/sample/current; ls -A /opt/sample/.conveyor; "
                                 "systemctl show -p ActiveEnterTimestamp sample") for host in app_hosts()}
    lines = subprocess.run(["docker", "exec", "conveyor-lb", "python3", "-c", HAPROXY_STATE], capture_output=True,
                           text=True, check=False).stdout.splitlines()
    servers = sorted(tuple(line.split()[3:7:2]) + (line.split()[6],) for line in lines if line[:1].isdigit()
                     and len(line.split()) > 6)
    return hosts, servers


@pytest.mark.parametrize("extra, text", [
    (["-e", '{"app_version": "2.0.0\\n"}'], "is '2.0.0\\n': pass the version to deploy"),
    (["-e", '{"app_version": 1.10}'], "was read as a number (YAML float)"),
    (["-e", "app_version=2.0.0~rc1"], "pass the version to deploy"),
    (["-e", "app_version=1.1.0", "-e", "app_root=/etc"], "app_root is '/etc': it is a system directory"),
    (["-e", "app_version=1.1.0", "-e", '{"rolling_batches": ["25.5%"]}'], "a percentage must be a whole number"),
    (["-e", "app_version=1.1.0", "-e", "rolling_lock_ttl=30"], "rolling_lock_ttl 30 s is shorter than this rollout"),
    (["-e", "app_version=1.1.0", "-e", "app_artifact_url=file:///srv/sample-1.1.0.tar.gz"],
     "it must be an http(s) URL or an absolute path"),
    (["-e", "app_version=1.1.0", "-e", "app_health_path=health"], "app_health_path must start with '/'"),
    (["-e", "app_version=1.1.0", "-e", "rolling_health_success_threshold=0"], "rolling_health_success_threshold is 0"),
    (["-e", "app_version=1.1.0", "-e", '{"change_id": "CHG-1\\nforged"}'], "change_id contains a control character"),
], ids=["version-newline", "version-float", "version-tilde", "app-root-etc", "fractional-percent", "short-lock-ttl",
        "file-url", "health-path", "zero-threshold", "change-id-newline"])
def test_a_bad_input_is_refused_naming_the_variable_and_no_host_changes(extra, text):
    before = fleet_state()
    result = playbook("deploy.yml", *extra)
    assert result.rc != 0, result.output[-3000:]
    assert text in result.output, result.output[-3000:]
    assert "Traceback" not in result.output, result.output[-3000:]
    assert fleet_state() == before


def test_credentials_in_the_artifact_url_are_refused_and_never_printed():
    before = fleet_state()
    url = "http://deployer:hunter2-pw@artifacts:8000/sample-1.1.0.tar.gz"
    result = playbook("deploy.yml", "-e", "app_version=1.1.0", "-e", "app_artifact_url=" + url)
    assert result.rc != 0 and "carries credentials" in result.output, result.output[-3000:]
    assert "hunter2-pw" not in result.output
    assert fleet_state() == before


def test_a_required_change_log_whose_last_line_is_garbage_refuses_the_run_naming_the_line(tmp_path):
    log = tmp_path / "changelog.jsonl"
    log.write_text('{"seq": 1, "run_id": "cut short by a full disk\n')
    before = fleet_state()
    result = playbook("deploy.yml", "-e", "app_version=1.1.0",
                      env={"CONVEYOR_CHANGELOG_PATH": str(log), "CONVEYOR_CHANGELOG_REQUIRED": "true"})
    assert result.rc != 0, result.output[-3000:]
    assert "line 1 of %s, the last one, is not a sealed record" % log in result.output, result.output[-3000:]
    assert "Nothing was changed" in result.output and "Traceback" not in result.output
    assert fleet_state() == before
    # Not required: the run goes on, warning that it is not recorded.
    said = playbook("deploy.yml", "--check", "-e", "app_version=1.1.0", env={"CONVEYOR_CHANGELOG_PATH": str(log)})
    assert "line 1 of" in said.output and "will not be recorded" in said.output, said.output[-3000:]


@pytest.mark.parametrize("fault", ["garbage", "reset", "hang"])
def test_a_notify_endpoint_that_misbehaves_costs_a_warning_and_later_events_still_go_out(webhook, fault):
    """The first three POSTs (the started event and both its retries) meet the fault; the rest are taken."""
    target = "1.1.0" if "1.1.0" not in set(live_versions().values()) else "1.0.0"
    url = "%s/fault/%s/3/generic" % (webhook.url, fault)
    result = playbook("deploy.yml", "-e", "app_version=" + target,
                      env={"CONVEYOR_NOTIFY_URL": url, "CONVEYOR_NOTIFY_TOKEN": "t0ken-never-printed"})
    assert result.rc == 0, result.output[-3000:]
    assert set(live_versions().values()) == {target}
    assert "the generic webhook did not take the started notification" in result.output, result.output[-3000:]
    events = [post["body"]["event"] for post in webhook.received()]
    assert "started" not in events and events[-1] == "ended" and "batch_done" in events, events
    assert "t0ken-never-printed" not in result.output and "/fault/" not in result.output
