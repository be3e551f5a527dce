"""The hosts the verify scenario checked: 2.0.0 healthy, the 6.6.6 build answering 500."""
import json


def test_live_release_is_2_0_0_and_healthy(host):
    assert host.file("/opt/sample/current").linked_to == "/opt/sample/releases/r-2.0.0"
    assert host.service("sample").is_running
    answer = json.loads(host.check_output("curl -s http://127.0.0.1:8000/health"))
    assert answer == {**answer, "status": "ok", "version": "2.0.0"}


def test_broken_build_really_answers_500(host):
    code = host.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8001/health")
    assert code == "500"


def test_verification_left_the_releases_alone(host):
    history = host.file("/opt/sample/.conveyor/history.jsonl").content_string.splitlines()
    actions = [json.loads(line)["action"] for line in history]
    assert actions == ["stage", "stage", "activate"]
