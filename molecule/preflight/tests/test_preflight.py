"""The hosts after both checklists ran: nothing was written, locked, restarted or left behind."""
import json


def test_the_live_release_and_service_are_untouched(host):
    assert host.file("/opt/sample/current").linked_to == "/opt/sample/releases/r-2.0.0"
    assert host.service("sample").is_running
    assert json.loads(host.check_output("curl -s http://127.0.0.1:8000/health"))["version"] == "2.0.0"


def test_the_checklists_took_no_lock_and_recorded_nothing(host):
    assert not host.file("/opt/sample/.conveyor/deploy.lock").exists
    history = host.file("/opt/sample/.conveyor/history.jsonl").content_string.splitlines()
    assert [json.loads(line)["action"] for line in history] == ["stage", "activate"]


def test_nothing_was_staged_or_downloaded(host):
    assert host.check_output("ls /opt/sample/releases").split() == ["r-2.0.0"]
    # systemd's private /var/tmp directories of the service aside.
    listed = [name for name in host.check_output("ls /var/tmp").split() if not name.startswith("systemd-private-")]
    assert listed == ["sample-2.0.0.tar.gz", "sample-2.0.0.tar.gz.sha256"]
