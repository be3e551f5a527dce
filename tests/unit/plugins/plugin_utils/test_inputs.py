# -*- coding: utf-8 -*-
"""The bad-input catalogue: each input refused on the controller, naming the variable and the fix."""

import pytest

from ansible_collections.conveyor.deploy.plugins.action import rollout_plan
from ansible_collections.conveyor.deploy.plugins.module_utils._release import app_root_problem
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _inputs, _rollout

HEALTH = {"url": "http://127.0.0.1:8000/health", "success_threshold": 3, "failure_threshold": 3, "timeout": 60,
          "interval": 1, "start_period": 3, "version_query": "version"}
GOOD = {"artifact_url": "https://artifacts.example.com/shop-2.0.0.tar.gz", "health": HEALTH, "lock_ttl": 3600,
        "shared_paths": ["logs", "var/uploads"], "change_id": "CHG-1", "version_type": "str"}


def args(inputs=None, **extra):
    values = {key: spec.get("default") for key, spec in rollout_plan.ARGUMENT_SPEC.items()}
    values.update(kind="deploy", version="2.0.0", app_root="/opt/shop", batches=[2], min_healthy_percent=50,
                  inputs=dict(GOOD, **(inputs or {})))
    values.update(extra)
    return values


def problems(inputs=None, hosts=("a", "b", "c", "d"), **extra):
    return rollout_plan.input_problems(args(inputs, **extra), list(hosts))


def test_good_inputs_pass():
    assert problems() == []


@pytest.mark.parametrize("proof", [
    dict(version_from="process"), dict(version_from="none"), dict(version_from="header"),
    dict(restart_strategy="reload"), dict(restart_strategy="none", version_from="json"),
    dict(version_from="body", version_regex=r"app (\S+)<", version_url="http://127.0.0.1:8000/"),
])
def test_every_proof_with_good_settings_passes(proof):
    assert problems({"health": dict(HEALTH, **proof)}) == []


@pytest.mark.parametrize("extra, inputs, text", [
    ({"version": "2.0.0\n"}, {}, "app_version (rolling_version) is '2.0.0\\n'"),
    ({"version": "2.0.0~rc1"}, {}, "'2.0.0~rc1': pass the version to deploy"),
    ({"version": "1" * 65}, {}, "app_version is 65 characters long"),
    ({"version": "1.1"}, {"version_type": "float"}, "was read as a number (YAML float)"),
    ({"batches": ["25.5%"]}, {}, "rolling_batches entry '25.5%': a percentage must be a whole number"),
    ({"min_healthy_percent": -5}, {}, "rolling_min_healthy_percent is -5: give a percentage from 0 to 100"),
    ({"min_healthy_percent": 150}, {}, "give a percentage from 0 to 100"),
    ({}, {"lock_ttl": 60}, "rolling_lock_ttl 60 s is shorter than this rollout may take (2 batch(es)"),
    ({"app_root": "//"}, {}, "app_root is '//': it must be a normalised path"),
    ({"app_root": "/"}, {}, "app_root is '/': it is a system directory"),
    ({"app_root": "/etc"}, {}, "app_root is '/etc': it is a system directory"),
    ({"app_root": "/usr/"}, {}, "it is a system directory"),
    ({"app_root": "/tmp"}, {}, "it is a system directory"),
    ({"app_root": "/var"}, {}, "it is a system directory"),
    ({"app_root": "/opt/shop/../../etc"}, {}, "must be a normalised path"),
    ({}, {"shared_paths": ["/var/log"]}, "app_shared_paths entry '/var/log': give a path relative"),
    ({}, {"shared_paths": ["../../etc"]}, "app_shared_paths entry '../../etc'"),
    ({}, {"artifact_url": "file:///srv/a.tgz"}, "it must be an http(s) URL or an absolute path"),
    ({}, {"artifact_url": "ftp://a.example/a.tgz"}, "it must be an http(s) URL"),
    ({}, {"artifact_url": "artifacts.example.com/a.tgz"}, "it must be an http(s) URL"),
    ({}, {"artifact_url": "http://a.example/a.tgz", "is_production": True}, "plain http in production"),
    ({}, {"artifact_sha256": "ab" * 31}, "must be 64 hex digits (optionally 'sha256:' first), not 62 characters"),
    ({}, {"health": dict(HEALTH, url="http://127.0.0.1:8000health")}, "its port is not a number"),
    ({}, {"health": dict(HEALTH, url="http://127.0.0.1:abc/health")}, "its port is not a number"),
    ({}, {"health": dict(HEALTH, success_threshold=0)}, "rolling_health_success_threshold is 0: it must be at least 1"),
    ({}, {"health": dict(HEALTH, failure_threshold=-1)}, "rolling_health_failure_threshold is -1"),
    ({}, {"health": dict(HEALTH, timeout=0)}, "rolling_health_timeout is 0: it must be more than 0"),
    ({}, {"health": dict(HEALTH, interval=-1)}, "rolling_health_interval is -1"),
    ({}, {"health": dict(HEALTH, version_query="version[")}, "is not a JMESPath expression"),
    ({}, {"change_id": "CHG-1\n{\"action\": \"forged\"}"}, "change_id contains a control character"),
    ({}, {"health": dict(HEALTH, version_from="pid")}, "app_health_version_from) is 'pid': choose one of json"),
    ({}, {"health": dict(HEALTH, restart_strategy="bounce")}, "app_restart_strategy) is 'bounce': choose restart"),
    ({}, {"health": dict(HEALTH, version_from="process", restart_strategy="reload")},
     "the process proof needs a restart (a new main process)"),
    ({}, {"health": dict(HEALTH, version_from="header", version_header=" ")}, "app_health_version_header) is empty"),
    ({}, {"health": dict(HEALTH, version_from="body", version_regex="v[0-9.]+")}, "version_regex) 'v[0-9.]+' has no group"),
    ({}, {"health": dict(HEALTH, version_from="body", version_regex="v(")}, "is not a regular expression"),
    ({}, {"health": dict(HEALTH, version_from="body", version_url="/version")}, "app_health_version_url) is '/version'"),
    ({"windows": {"allow": [{"days": []}]}}, {}, "deploy_windows.allow[0].days is []"),
    ({"windows": {"allow": [{"days": ["someday"]}]}}, {}, "'someday' is not a day"),
    ({"windows": {"timezone": 2}}, {}, "deploy_windows.timezone: 2 is not a timezone name"),
    ({"windows": {"allow": [{"start": 540, "end": "16:00"}]}}, {}, 'quote it ("09:00")'),
    ({"windows": {"freezes": [{"start": "2026-12-24T00:00", "end": "2026-12-20T00:00"}]}}, {}, "swap them"),
    ({"windows": ["mon 09:00-16:00"]}, {}, "deploy_windows is a list, not a mapping"),
    ({"window_now": "2026-12-08T10:00"}, {"is_production": True}, "deploy_window_now is 2026-12-08T10:00, but this is "
     "production"),
    ({"approval": {"url": "http://cm.example/api"}}, {}, "approval_url is 'http://cm.example/api': it must be an https"),
    ({"approval": {"url": "https://u:p@cm.example/api"}}, {}, "approval_url carries credentials"),
    ({"lb": {"enabled": True, "backend": "shop;disable server shop/a"}}, {},
     "app_lb_backend (rolling_lb_backend) is 'shop;disable server shop/a': a backend name is letters"),
    ({"lb": {"enabled": True, "backend": "shop"}}, {"lb_servers": {"a": "a", "b": "b c"}},
     "app_lb_server of b is 'b c': a server name is letters"),
])
def test_each_bad_input_is_refused_naming_the_variable(extra, inputs, text):
    found = problems(inputs, **extra)
    assert any(text in problem for problem in found), found


def test_credentials_in_the_artifact_url_are_refused_and_never_repeated():
    found = problems({"artifact_url": "https://deployer:hunter2-secret@a.example/a.tgz"})
    assert any("carries credentials" in problem for problem in found)
    assert not any("hunter2" in problem or "deployer" in problem for problem in found)
    with pytest.raises(_rollout.PlanError) as caught:
        rollout_plan.plan(args({"artifact_url": "https://deployer:hunter2-secret@a.example/a.tgz"}), ["a"], {},
                          run_id="RUN")
    assert "hunter2" not in str(caught.value)


def test_plain_http_in_production_needs_a_pinned_checksum():
    url = {"artifact_url": "http://a.example/a.tgz", "is_production": True}
    assert any("pin the checksum with app_artifact_sha256" in problem for problem in problems(url))
    assert problems(dict(url, artifact_sha256="ab" * 32)) == []
    assert problems(dict(url, is_production=False)) == []


def test_an_upper_case_checksum_prefix_is_accepted():
    assert problems({"artifact_sha256": "SHA256:" + "AB" * 32}) == []


def test_without_a_load_balancer_the_lock_ttl_must_outlive_the_whole_rollout_bakes_included():
    # 2 batches x (drain 60 + 2 gates of 60 + re-enable 60)
    assert problems({"lock_ttl": 480}) == []
    found = problems({"lock_ttl": 480}, bake_seconds=30)
    assert any("+ bake 30s) = 540 s; without a load balancer nothing renews" in problem for problem in found), found


LB = {"enabled": True, "host": "lb01", "backend": "shop", "socket": "/run/haproxy/admin.sock"}


def test_with_a_load_balancer_the_lock_ttl_covers_one_batch_its_heartbeats_renew_it():
    assert problems({"lock_ttl": 240}, lb=LB) == []
    assert problems({"lock_ttl": 240}, lb=LB, batches=[1]) == []  # four batches: still one at a time
    found = problems({"lock_ttl": 240}, lb=LB, bake_seconds=30)
    assert found == ["rolling_lock_ttl 240 s is shorter than one batch may take (drain 60s + 2 gates of 60s + "
                     "re-enable 60s + bake 30s = 270 s; the run's heartbeats on the load balancer renew its locks at "
                     "every batch): raise it to at least 270"], found


def test_a_rollback_names_its_own_lock_ttl():
    found = problems({"lock_ttl": 10}, kind="rollback", reason="bad build")
    assert any(problem.startswith("rollback_lock_ttl 10 s is shorter") for problem in found), found


def test_the_lock_policy_renews_with_a_load_balancer_and_bounds_by_the_whole_rollout():
    assert rollout_plan.lock_policy(args(), ["a", "b", "c", "d"]) == {"renewed": None, "bound_s": 0}
    policy = rollout_plan.lock_policy(args({"lock_ttl": 600}, lb=LB), ["a", "b", "c", "d"])
    # 2 batches x 240 s, plus one time to live for the checklist and staging.
    assert policy == {"renewed": {"host": "lb01", "backend": "shop"}, "bound_s": 2 * 240 + 600}


@pytest.mark.parametrize("root, fine", [
    ("/opt/shop", True), ("/srv/shop/", True), ("/opt", False), ("/usr/local", False), ("opt/shop", False),
    ("/opt//shop", False), ("/opt/./shop", False), ("/opt/sh op", False), ("/opt/shop\n", False),
])
def test_app_root_problem_is_the_same_on_the_controller_and_the_hosts(root, fine):
    assert (app_root_problem(root) is None) is fine
    assert (_inputs.app_root_problems(root) == []) is fine


def test_an_injected_time_is_only_refused_in_production():
    assert problems(window_now="2026-12-08T10:00") == []


def test_lb_names_are_only_checked_with_a_load_balancer():
    assert problems(lb={"enabled": False, "backend": "x y"}) == []
    assert problems({"lb_servers": {"a": "web-01.dc1:8080"}}, lb={"enabled": True, "backend": "shop_v2"}) == []


def test_a_host_s_server_name_comes_from_its_variables():
    hostvars = {"a": {"app_lb_server": "web-a"}, "b": {"rolling_lb_server": "web-b", "app_lb_server": "x"},
                "c": {"app_lb_server": "{{ inventory_hostname }}-web"}, "d": {}}
    assert [_rollout.lb_server_of(hostvars, host) for host in "abcd"] == ["web-a", "web-b", None, "d"]
    assert _rollout.lb_server_of(hostvars, "c", unknown="c") == "c"


@pytest.mark.parametrize("page, command, lb, text", [
    ("", "", False, None),
    ("Upgrading the database", "bin/migrate", True, None),
    ("Upgrading the database", "bin/migrate", False, "no load balancer to show the page"),
    ("Upgrading the database", " ", True, "there is no migration to show it for"),
    ("two\nlines", "bin/migrate", True, "rolling_migrate_maintenance must be one line of text"),
])
def test_a_maintenance_page_for_the_migration_needs_a_load_balancer_a_migration_and_one_line(page, command, lb, text):
    found = _inputs.maintenance_problems(page, command, lb)
    assert (found == []) if text is None else (len(found) == 1 and text in found[0]), found


def test_a_page_that_could_not_go_up_aborts_the_run_before_its_migration():
    run = {"run_id": "R", "work": ["app01"], "batches": [["app01"]], "migration": {"configured": True, "host": "app01"}}
    aborted = _rollout.aborted_for_maintenance(run, "HAProxy has no map /etc/haproxy/conveyor-maintenance.map")
    assert aborted["work"] == [] and aborted["batches"] == [] and aborted["migration"]["outcome"] == "not run"
    assert aborted["aborted"].startswith("Aborted before any cutover, nothing live changed: the load balancer could "
                                         "not show the maintenance page for the migration (HAProxy has no map")
    assert run["work"] == ["app01"]  # the run object it was given is left alone
