"""The health gate's proofs on the lab, with a release that reports no version (3.0.0: /health says
plain "Ok", no header, no /version), as most third-party apps do: the default JSON proof refuses it
and says which setting to change, the process, header and body proofs each decide as they should,
the rollback's smoke test and the verify playbook prove the version the same way, and no request
through HAProxy fails meanwhile."""
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
