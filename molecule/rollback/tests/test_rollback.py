"""After 1.0.0, 2.0.0 and a rollback: 1.0.0 live and healthy, 2.0.0 marked failed."""
import json

import pytest

ROOT = "/opt/sample"


def manifests(host):
    text = host.check_output("cat %s/releases/*/.conveyor-release.json" % ROOT)
    decoder, found, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        obj, index = decoder.raw_decode(text, index)
        found.append(obj)
    return {m["version"]: m for m in found}


def test_app_hosts_are_back_on_1_0_0(host):
    if host.backend.host == "rollback-lb":
        pytest.skip("app hosts only")
    by_version = manifests(host)
    assert host.file(ROOT + "/current").linked_to == "%s/releases/%s" % (ROOT, by_version["1.0.0"]["release_id"])
    assert by_version["1.0.0"]["state"] == "good"
    assert by_version["1.0.0"]["activated_reason"] == "rollback: molecule says 2.0.0 is bad"
    assert by_version["2.0.0"]["state"] == "failed"
    assert by_version["2.0.0"]["reason"] == "rolled back: molecule says 2.0.0 is bad"
    health = json.loads(host.check_output("curl -sf http://127.0.0.1:8000/health"))
    assert health["version"] == "1.0.0"
    assert not host.file(ROOT + "/.conveyor/deploy.lock").exists


def test_load_balancer_serves_1_0_0_on_every_backend(host):
    if host.backend.host != "rollback-lb":
        pytest.skip("load balancer only")
    versions = {host.check_output("curl -sf http://127.0.0.1:80/version") for dummy in range(6)}
    assert versions == {"1.0.0"}
