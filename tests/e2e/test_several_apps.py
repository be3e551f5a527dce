"""Two applications on the same machines (#15): the sample app and `other` (inventory names other-app01 and
other-app02 for app01 and app02, group_vars/other) are configured, deployed, rolled back, verified and drift-checked
independently, each with its own root, unit, backend, frontend, lock and change-log record."""
import json
import os
import threading
import urllib.request

from .conftest import ROOT, Traffic, app_hosts, live_versions, on_host, playbook

CHANGELOG = os.path.join(ROOT, "build", "conveyor", "changelog.jsonl")
OTHER = ("app01", "app02")


def other(*extra):
    return ("-e", "app_hosts=other") + extra


def other_versions():
    return {host: on_host(host, "cat /opt/other/current/VERSION 2>/dev/null") for host in OTHER}


def records():
    with open(CHANGELOG) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def version_through(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/version" % port, timeout=5) as answer:
        return answer.read().decode().strip()


def test_a_mistyped_app_group_is_refused_naming_the_groups_there_are():
    result = playbook("deploy.yml", "-e", "app_hosts=othr", "-e", "app_version=2.0.0")
    assert result.rc != 0
    assert "app_hosts is 'othr', which is not a group of this inventory" in result.output
    assert "groups with hosts: app, lab, other" in result.output


def test_the_second_app_gets_its_user_unit_and_backend_and_the_first_keeps_its_own():
    sample_block = on_host("lb", "sed -n '/BEGIN conveyor.deploy backend sample/,/END conveyor.deploy backend sample/p'"
                                 " /etc/haproxy/haproxy.cfg")
    result = playbook("playbooks/environment.yml", *other())
    assert result.rc == 0, result.output[-3000:]
    assert set(result.recap()) == {"other-app01", "other-app02", "lb01"}
    for host in OTHER:
        assert "ExecStart=/usr/bin/python3 /opt/other/current/app.py" in on_host(host, "systemctl cat other")
        assert on_host(host, "id -un other") == "other"
    config = on_host("lb", "cat /etc/haproxy/haproxy.cfg")
    assert "    server other-app01 app01:8100 check" in config and "    bind *:81" in config
    assert "other-app03" not in config
    assert on_host("lb", "sed -n '/BEGIN conveyor.deploy backend sample/,/END conveyor.deploy backend sample/p'"
                         " /etc/haproxy/haproxy.cfg") == sample_block


def test_both_apps_deploy_at_the_same_time_each_under_its_own_lock_and_record():
    sample_before = live_versions()
    sample_target = "1.1.0" if set(sample_before.values()) != {"1.1.0"} else "2.0.0"
    results = {}

    def deploy(name, *extra):
        results[name] = playbook("deploy.yml", *extra)

    before = len(records())
    with Traffic() as traffic:
        runs = [threading.Thread(target=deploy, args=("other",) + other("-e", "app_version=2.0.0")),
                threading.Thread(target=deploy, args=("sample", "-e", "app_version=" + sample_target))]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
    for name, result in results.items():
        assert result.rc == 0, (name, result.output[-3000:])
    assert other_versions() == {"app01": "2.0.0", "app02": "2.0.0"}
    assert set(live_versions().values()) == {sample_target}
    assert version_through(8082) == "2.0.0" and version_through(8080) == sample_target
    assert traffic.summary["failed"] == 0, traffic.summary
    new = records()[before:]
    assert sorted(r.get("application") for r in new) == ["other", "sample"]
    assert len({r["run_id"] for r in new}) == 2
    assert on_host("app01", "ls /opt/other/.conveyor/ /opt/sample/.conveyor/ | grep -c deploy.lock") == "0"


def test_the_second_app_rolls_back_verifies_and_drifts_alone():
    sample_before = live_versions()
    with Traffic(url="http://127.0.0.1:8082/version") as traffic:
        assert playbook("deploy.yml", *other("-e", "app_version=1.1.0")).rc == 0
        assert version_through(8082) == "1.1.0"
        result = playbook("playbooks/rollback.yml", *other())
        assert result.rc == 0, result.output[-3000:]
    assert other_versions() == {"app01": "2.0.0", "app02": "2.0.0"}
    assert traffic.summary["failed"] == 0 and traffic.summary["sent"] >= 200, traffic.summary
    assert live_versions() == sample_before
    assert records()[-1]["application"] == "other" and records()[-1]["kind"] == "rollback"
    verify = playbook("playbooks/verify.yml", *other())
    assert verify.rc == 0, verify.output[-3000:]
    on_host("app02", "echo 'DEBUG=\"1\"' >> /etc/other/other.env")
    try:
        drift = playbook("playbooks/drift.yml", *other())
        assert drift.rc != 0 and "other-app02: environment file" in drift.output
        assert "app02:" not in drift.output.split("Configuration drift:")[1].replace("other-app02:", "")
    finally:
        on_host("app02", "sed -i '/^DEBUG=\"1\"$/d' /etc/other/other.env")
    assert set(app_hosts()) >= set(OTHER)


def test_an_app_haproxy_does_not_serve_is_configured_and_deployed_without_the_load_balancer():
    config = on_host("lb", "md5sum /etc/haproxy/haproxy.cfg")
    no_lb = other("-e", "app_lb_enabled=false")
    configured = playbook("playbooks/loadbalancer.yml", *no_lb)
    assert configured.rc == 0 and configured.recap()["lb01"]["changed"] == 0
    result = playbook("deploy.yml", *no_lb, "-e", "app_version=1.1.0")
    assert result.rc == 0, result.output[-3000:]
    assert "no load balancer for this app (no lb group, or app_lb_enabled is false): nothing is drained" in result.output
    assert other_versions() == {"app01": "1.1.0", "app02": "1.1.0"}
    assert on_host("lb", "md5sum /etc/haproxy/haproxy.cfg") == config
