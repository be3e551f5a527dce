"""Maintenance mode on the lab (#15): HAProxy itself answers the app's backend with a 503 page carrying the
operator's message and a Retry-After header, at once (runtime API) and across a reload (the map files), recorded in
the change log; a wrong input is refused naming the variable; --check and a rerun change nothing."""
import json
import os
import urllib.error
import urllib.request

import pytest

from .conftest import ROOT, playbook, run

CHANGELOG = os.path.join(ROOT, "build", "conveyor", "changelog.jsonl")
MESSAGE = "Upgrading the database; back at 14:00 UTC \\o/"


def through_lb(path="/"):
    """(status, body, Retry-After) of one request through the lab's load balancer."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:8080" + path, timeout=5) as answer:
            return answer.status, answer.read().decode(), answer.headers.get("Retry-After")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers.get("Retry-After")


def last_record():
    with open(CHANGELOG) as handle:
        return [json.loads(line) for line in handle if line.strip()][-1]


def reload_haproxy():
    import subprocess
    subprocess.run(["docker", "exec", "conveyor-lb", "systemctl", "reload", "haproxy"], check=True)
    import time
    time.sleep(2)


@pytest.fixture(scope="module", autouse=True)
def serving_afterwards():
    yield
    playbook("playbooks/maintenance.yml", "-e", "maintenance=off")


def test_wrong_inputs_are_refused_naming_the_variable():
    result = playbook("playbooks/maintenance.yml", "-e", "maintenance=maybe")
    assert result.rc != 0 and "maintenance is maybe: pass -e maintenance=on" in result.output
    result = playbook("playbooks/maintenance.yml", "-e", "maintenance=on")
    assert result.rc != 0 and "maintenance_message is empty" in result.output
    result = playbook("playbooks/maintenance.yml", "-e", "maintenance=on", "-e",
                      json.dumps({"maintenance_message": "two\nlines"}))
    assert result.rc != 0 and "must be one line of text" in result.output
    assert through_lb("/health")[0] == 200


def test_maintenance_on_answers_503_with_the_message_until_it_is_off_even_across_a_reload():
    on = ["-e", "maintenance=on", "-e", json.dumps({"maintenance_message": MESSAGE, "maintenance_retry_after": 900})]
    check = playbook("playbooks/maintenance.yml", "--check", "--diff", *on)
    assert check.rc == 0, check.output[-3000:]
    assert "+sample: maintenance: " + MESSAGE in check.output
    assert through_lb("/health")[0] == 200
    result = playbook("playbooks/maintenance.yml", *on)
    assert result.rc == 0, result.output[-3000:]
    assert through_lb("/") == (503, MESSAGE, "900")
    assert through_lb("/health") == (503, MESSAGE, "900")
    record = last_record()
    assert record["kind"] == "maintenance" and record["outcome"] == "succeeded"
    assert record["maintenance"]["state"] == "on" and record["maintenance"]["message"] == MESSAGE
    again = playbook("playbooks/maintenance.yml", *on)
    assert again.rc == 0 and again.recap()["lb01"]["changed"] == 0, again.output[-2000:]
    reload_haproxy()
    assert through_lb("/") == (503, MESSAGE, "900")
    off = playbook("playbooks/maintenance.yml", "-e", "maintenance=off")
    assert off.rc == 0, off.output[-3000:]
    assert through_lb("/health")[0] == 200
    assert last_record()["maintenance"]["before"] == MESSAGE
    reload_haproxy()
    assert through_lb("/health")[0] == 200


def test_a_deploy_shows_the_page_only_while_its_migration_runs_and_serves_again_after():
    from .conftest import Traffic, live_versions
    current = set(live_versions().values())
    target = "1.0.0" if current != {"1.0.0"} else "2.0.0"
    page = "Upgrading the database, back in a minute"
    with Traffic() as traffic:
        result = playbook("deploy.yml", "-e", "app_version=" + target, "-e",
                          json.dumps({"app_migrate_command": "sleep 4", "app_migrate_maintenance": page}))
    assert result.rc == 0, result.output[-3000:]
    assert set(live_versions().values()) == {target}
    assert through_lb("/health")[0] == 200
    # Only the page's 503s failed, for about the migration's 4 s (100 requests a second), nothing else.
    assert set(traffic.summary["reasons"]) == {"HTTP 503"}, traffic.summary
    assert 150 <= traffic.summary["failed"] <= 1000, traffic.summary
    record = last_record()
    assert record["migration"]["outcome"] == "succeeded" and record["migration"]["maintenance"] == page


def test_an_inventory_without_a_load_balancer_is_refused_not_silently_skipped(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    app:\n      hosts:\n        app01:\n")
    result = run(["ansible-playbook", "-i", str(inventory), "playbooks/maintenance.yml", "-e", "maintenance=off"])
    assert result.rc != 0 and "The inventory has no load balancer" in result.output, result.output[-2000:]
