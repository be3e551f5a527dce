"""Real applications on the lab. The health gate's proofs, with a release that reports no version (3.0.0: /health says
plain "Ok", no header, no /version), as most third-party apps do: the default JSON proof refuses it
and says which setting to change, the process, header and body proofs each decide as they should,
the rollback's smoke test and the verify playbook prove the version the same way, and no request
through HAProxy fails meanwhile. And a new server whose first deploy fails: it says how to recover,
and the fixed version is not refused for it."""
import pytest

from .conftest import Traffic, app_hosts, live_versions, on_host, playbook

PAGE = "http://127.0.0.1:8080/"
PLAIN = ["-e", '{"app_health_json": []}']  # the lab inventory asserts status == ok in a JSON body
PROCESS = PLAIN + ["-e", "app_health_version_from=process"]
BODY = PLAIN + ["-e", "app_health_version_from=body", "-e", "app_health_version_url=http://127.0.0.1:8000/"]


def deploy(version, *extra):
    return playbook("deploy.yml", "-e", "app_version=%s" % version, *extra)


def assert_fleet_on(version):
    versions = live_versions()
    assert set(versions.values()) == {version}, versions


@pytest.fixture(scope="module", autouse=True)
def on_2_0_0():
    result = deploy("2.0.0", "-e", "rolling_force=true")
    assert result.rc == 0, result.output[-3000:]
    yield
    # The checklist judges the live release as the inventory says, so leaving a plain-text release takes its settings.
    result = deploy("2.0.0", *PROCESS)
    assert result.rc == 0, result.output[-3000:]


def test_the_default_json_proof_refuses_a_plain_text_app_and_names_the_setting():
    with Traffic(url=PAGE) as traffic:
        result = deploy("3.0.0")
    assert result.rc != 0
    assert "body is not valid JSON" in result.output
    assert "set app_health_version_from: process" in result.output
    assert traffic.summary["failed"] == 0, traffic.summary
    assert set(traffic.summary["versions"]) == {"2.0.0"}, "a release that did not pass its gate served traffic"
    assert_fleet_on("2.0.0")


def test_the_process_proof_deploys_an_app_that_reports_no_version():
    with Traffic(url=PAGE) as traffic:
        result = deploy("3.0.0", *PROCESS)
    assert result.rc == 0, result.output[-3000:]
    assert traffic.summary["failed"] == 0, traffic.summary
    assert_fleet_on("3.0.0")
    pids = {host: on_host(host, "systemctl show -p MainPID --value sample") for host in app_hosts()}
    again = deploy("3.0.0", *PROCESS)
    assert again.rc == 0 and "Nothing to do" in again.output, again.output[-3000:]
    assert {host: on_host(host, "systemctl show -p MainPID --value sample") for host in app_hosts()} == pids
    verify = playbook("playbooks/verify.yml", *PROCESS)
    assert verify.rc == 0, verify.output[-3000:]
    # Tags that leave checks out report what ran, and say so when nothing did, instead of crashing.
    for tags, tables in ((["--tags", "verify_lb"], 1), (["--skip-tags", "verify_lb"], len(app_hosts())),
                         (["--tags", "nothing"], 0)):
        verify = playbook("playbooks/verify.yml", *(PROCESS + tags))
        assert verify.rc == 0 and "is undefined" not in verify.output, verify.output[-3000:]
        assert verify.output.count("ok?") == tables, verify.output[-3000:]
    assert "No check ran" in verify.output


def test_the_header_proof_passes_a_release_that_sends_it_and_refuses_one_that_does_not():
    header = PLAIN + ["-e", "app_health_version_from=header"]
    result = deploy("2.0.0", *header)
    assert result.rc == 0, result.output[-3000:]
    assert_fleet_on("2.0.0")
    result = deploy("3.0.0", *header)
    assert result.rc != 0
    assert "answered without an X-App-Version header" in result.output
    assert_fleet_on("2.0.0")


def test_the_body_proof_reads_another_url_and_the_rollback_smoke_test_proves_the_same_way():
    with Traffic(url=PAGE) as traffic:
        result = deploy("3.0.0", *BODY)
    assert result.rc == 0, result.output[-3000:]
    assert_fleet_on("3.0.0")
    result = playbook("playbooks/rollback.yml", *BODY)
    assert result.rc == 0, result.output[-3000:]
    assert "smoke test" in result.output and "10/10 consecutive successes" in result.output
    assert traffic.summary["failed"] == 0, traffic.summary
    assert_fleet_on("2.0.0")


def test_a_version_regex_passes_on_its_group_and_a_group_that_catches_something_else_fails():
    title = BODY + ["-e", r'{"app_health_version_regex": "<title>sample (\\S+)</title>"}']
    result = deploy("1.1.0", *title)
    assert result.rc == 0, result.output[-3000:]
    assert_fleet_on("1.1.0")
    hostname = BODY + ["-e", r'{"app_health_version_regex": "host ([^,]+),"}']
    result = deploy("2.0.0", *hostname)
    assert result.rc != 0
    assert "names version 'app" in result.output and "expected '2.0.0'" in result.output
    # The same proof cannot prove 1.1.0 either, so the first host is stopped (out of HAProxy); the rest never moved.
    first = app_hosts()[0]
    assert "going back to 1.1.0 failed too" in result.output
    assert {host: version for host, version in live_versions().items() if host != first} == \
        {host: "1.1.0" for host in app_hosts() if host != first}
    on_host(first, "systemctl start sample")  # what the operator does once the setting is fixed


def test_the_reload_strategy_moves_hosts_without_a_new_main_process():
    reload_unit = ["-e", '{"environment_extra_unit_options": {"ExecReload": "/bin/kill -HUP $MAINPID"}}']
    result = playbook("playbooks/environment.yml", *reload_unit)
    assert result.rc == 0, result.output[-3000:]
    moving = [host for host, version in live_versions().items() if version != "2.0.0"]
    pids = {host: on_host(host, "systemctl show -p MainPID --value sample") for host in moving}
    with Traffic() as traffic:
        result = deploy("2.0.0", *PLAIN, "-e", "app_restart_strategy=reload")
    assert result.rc == 0, result.output[-3000:]
    assert traffic.summary["failed"] == 0, traffic.summary
    assert_fleet_on("2.0.0")
    assert {host: on_host(host, "systemctl show -p MainPID --value sample") for host in moving} == pids
    refused = deploy("1.1.0", *PROCESS, "-e", "app_restart_strategy=reload")
    assert refused.rc != 0 and "the process proof needs a restart" in refused.output
    result = playbook("playbooks/environment.yml")
    assert result.rc == 0, result.output[-3000:]


def test_when_haproxy_disagrees_with_the_gate_the_run_says_why_without_waiting_out_the_timeout():
    before = live_versions()
    with Traffic() as traffic:
        # The gate reads the page at / (it names the version); HAProxy checks /health, which 6.7.0 no longer answers.
        result = deploy("6.7.0", *PLAIN, "-e", "app_health_path=/", "-e", "app_health_version_from=body",
                        "-e", "rolling_lb_up_timeout=300")
    assert result.rc != 0
    assert "HAProxy's own health check fails for" in result.output and "L7STS 404" in result.output
    assert "Timed out" not in result.output
    assert traffic.summary["failed"] == 0, traffic.summary
    assert live_versions() == before


def test_a_failed_first_deploy_says_how_to_recover_and_the_fixed_version_is_not_refused():
    fresh = app_hosts()[-1]
    # A new server: the environment is prepared, nothing was ever deployed to it.
    on_host(fresh, "systemctl stop sample; rm -rf /opt/sample/releases/* /opt/sample/current")
    result = deploy("6.6.7", "--limit", fresh)
    assert result.rc != 0
    assert "no previous release to return to (first deployment on this host)" in result.output
    assert "until a fixed version is deployed" in result.output
    assert "rolled back to its previous release" not in result.output
    assert on_host(fresh, "systemctl is-active sample") != "active"
    fixed = deploy("2.0.0", "--limit", fresh)
    assert fixed.rc == 0, fixed.output[-3000:]
    assert "not deployed: 6.6.7 failed its first deploy here" in fixed.output
    assert live_versions()[fresh] == "2.0.0"
