"""Reliability and security on the lab: what a hostile or broken input cannot do to a fleet."""
import hashlib
import io
import os
import subprocess
import tarfile

import pytest

from .conftest import HAPROXY_STATE, INVENTORY, ROOT, app_hosts, live_versions, locks, on_host, playbook, run

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
    (["-e", "app_version=1.1.0", "-e", "rolling_lock_ttl=30"], "rolling_lock_ttl 30 s is shorter than one batch may take"),
    (["-e", "app_version=1.1.0", "-e", "app_artifact_url=file:///srv/sample-1.1.0.tar.gz"],
     "it must be an http(s) URL or an absolute path"),
    (["-e", "app_version=1.1.0", "-e", "app_health_path=health"], "app_health_path must start with '/'"),
    (["-e", "app_version=1.1.0", "-e", "rolling_health_success_threshold=0"], "rolling_health_success_threshold is 0"),
    (["-e", "app_version=1.1.0", "-e", '{"change_id": "CHG-1\\nforged"}'], "change_id contains a control character"),
    (["-e", "app_version=1.1.0", "-e", '{"deploy_windows": {"allow": [{"days": [], "start": "09:00", "end": "17:00"}]}}'],
     "deploy_windows.allow[0].days is []"),
    (["-e", "app_version=1.1.0", "-e", '{"deploy_windows": {"allow": [{"days": ["moonday"]}]}}'],
     "deploy_windows.allow[0].days: 'moonday' is not a day"),
    (["-e", "app_version=1.1.0", "-e", '{"deploy_windows": {"timezone": 1, "allow": [{"start": "09:00"}]}}'],
     "deploy_windows.timezone: 1 is not a timezone name"),
    (["-e", "app_version=1.1.0", "-e", "@" + os.path.join(ROOT, "tests", "e2e", "data", "unquoted-window.yml")],
     'YAML read an unquoted 16:00 as a number; quote it ("16:00")'),
    (["-e", "app_version=1.1.0", "-e", '{"deploy_windows": {"freezes": [{"start": "2027-01-04T00:00", '
      '"end": "2026-12-20T00:00"}]}}'], "deploy_windows.freezes[0]: end 2026-12-20T00:00 is not after start"),
    (["-e", "app_version=1.1.0", "-e", '{"app_lb_backend": "sample;shutdown sessions"}'],
     "app_lb_backend (rolling_lb_backend) is 'sample;shutdown sessions'"),
    (["-e", "app_version=1.1.0", "-e", "app_lb_backend=nosuch"], "HAProxy has no backend named 'nosuch'"),
    (["-e", "app_version=1.1.0", "-e", "app_lb_server=web"], "backend sample has no server web (host app01)"),
], ids=["version-newline", "version-float", "version-tilde", "app-root-etc", "fractional-percent", "short-lock-ttl",
        "file-url", "health-path", "zero-threshold", "change-id-newline", "window-no-days", "window-unknown-day",
        "window-timezone-number", "window-unquoted-time", "freeze-reversed", "lb-backend-semicolon",
        "lb-backend-unknown", "lb-server-unknown"])
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


@pytest.fixture
def roomy_artifact():
    """sample-6.4.0: a healthy release plus 64 MiB of zeros, which compress to almost nothing: a small download
    that needs far more room unpacked."""
    artifacts = os.path.join(ROOT, "lab", ".state", "artifacts")
    path = os.path.join(artifacts, "sample-6.4.0.tar.gz")
    with tarfile.open(os.path.join(artifacts, "sample-1.1.0.tar.gz")) as source, tarfile.open(path, "w:gz") as out:
        for member in source.getmembers():
            out.addfile(member, source.extractfile(member) if member.isfile() else None)
        zeros = tarfile.TarInfo("static/zeros.bin")
        zeros.size = 64 << 20
        zeros.mode = 0o644
        out.addfile(zeros, io.BytesIO(bytes(zeros.size)))
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    with open(path + ".sha256", "w") as handle:
        handle.write("%s  sample-6.4.0.tar.gz\n" % digest)
    yield "6.4.0"
    for name in (path, path + ".sha256"):
        os.unlink(name)


@pytest.fixture
def small_releases_disk():
    """app01's releases/ on a tmpfs with 8 MiB to spare, holding a copy of its releases (current still resolves)."""
    host = "app01"
    used = int(on_host(host, "du -sm /opt/sample/releases | cut -f1"))
    on_host(host, "cp -a /opt/sample/releases /tmp/releases-copy && mount -t tmpfs -o size=%dm tmpfs "
                  "/opt/sample/releases && cp -a /tmp/releases-copy/. /opt/sample/releases/ && rm -rf /tmp/releases-copy"
            % (used + 8))
    yield host
    on_host(host, "umount -l /opt/sample/releases")


def test_a_disk_that_fills_while_unpacking_leaves_no_partial_files_and_names_the_space(
        roomy_artifact, small_releases_disk):
    host = small_releases_disk
    before = live_links()
    servers = fleet_state()[1]
    result = playbook("deploy.yml", "-e", "app_version=" + roomy_artifact)
    assert result.rc != 0, result.output[-3000:]
    assert "no space left on device in /opt/sample/releases" in result.output, result.output[-3000:]
    assert "while unpacking (needs about" in result.output and "MiB free" in result.output, result.output[-3000:]
    # Nothing of the attempt is left on the full disk; no host was switched, locked or drained (the others may
    # keep the release they staged for a later attempt).
    assert on_host(host, "ls -A /opt/sample/releases | grep '^.tmp-' || true") == ""
    assert on_host(host, "ls /opt/sample/releases | grep -c 6.4.0 || true") == "0"
    assert live_links() == before and locks() == {}
    assert fleet_state()[1] == servers


def live_links():
    return {host: on_host(host, "readlink /opt/sample/current") for host in app_hosts()}


def test_a_host_on_the_version_but_out_of_rotation_is_put_back_and_the_others_are_left_alone():
    """A crashed or killed run (or a hand) left app01 drained while it serves the fleet's version: a deploy of that
    version must not skip it as "already live" and leave it out for good."""
    from .conftest import lb_servers
    versions = set(live_versions().values())
    assert len(versions) == 1, versions
    version = versions.pop()
    subprocess.run(["docker", "exec", "conveyor-lb", "python3", "-c", HAPROXY_STATE.replace(
        "show servers state sample", "set server sample/app01 state drain")], check=True, capture_output=True)
    assert lb_servers()["app01"][1] == "8", lb_servers()
    started = {host: on_host(host, "systemctl show -p ExecMainStartTimestampMonotonic sample") for host in app_hosts()}
    result = playbook("deploy.yml", "-e", "app_version=%s" % version)
    assert result.rc == 0, result.output[-3000:]
    assert "app01 out of the load balancer's rotation when the run started: it is put back by its batch." \
        in result.output
    assert all(admin == "0" for dummy, admin in lb_servers().values()), lb_servers()
    assert set(live_versions().values()) == {version} and locks() == {}
    now = {host: on_host(host, "systemctl show -p ExecMainStartTimestampMonotonic sample") for host in app_hosts()}
    assert [host for host in app_hosts() if now[host] != started[host]] == ["app01"]
