"""After a rolling deploy of 2.0.0 over 1.0.0 behind HAProxy."""
import json
import os

import pytest

testinfra_hosts = ["rolling-app1", "rolling-app2", "rolling-app3", "rolling-lb"]

ROOT = "/opt/sample"

HAPROXY_STAT = (
    "python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('/run/haproxy/admin.sock');"
    " s.sendall(b'show stat\\n'); print(s.makefile().read())\""
)


def is_lb(host):
    return host.backend.host == "rolling-lb"


def releases(host):
    out = host.check_output("cat %s/releases/*/.conveyor-release.json | python3 -c "
                            "\"import json,sys; d=sys.stdin.read().replace('}\\n{', '}\\x00{');"
                            " print(json.dumps([json.loads(x) for x in d.split('\\x00')]))\"" % ROOT)
    return {r["version"]: r for r in json.loads(out)}


def test_app_hosts_run_2_0_0_from_a_good_release(host):
    if is_lb(host):
        pytest.skip("app hosts only")
    by_version = releases(host)
    assert by_version["2.0.0"]["state"] == "good"
    assert by_version["1.0.0"]["state"] == "good"
    current = host.file(ROOT + "/current").linked_to
    assert current == "%s/releases/%s" % (ROOT, by_version["2.0.0"]["release_id"])
    assert host.service("sample").is_running
    health = json.loads(host.check_output("curl -sf http://127.0.0.1:8000/health"))
    assert health["version"] == "2.0.0" and health["status"] == "ok"


def test_one_release_id_for_the_whole_run(host):
    if not is_lb(host):
        pytest.skip("checked once, from the load balancer's view")
    ids = set()
    for name in ("rolling-app1", "rolling-app2", "rolling-app3"):
        other = host.get_host("ansible://%s?ansible_inventory=%s" % (name, os.environ["MOLECULE_INVENTORY_FILE"]))
        ids.add(releases(other)["2.0.0"]["release_id"])
    assert len(ids) == 1


def test_no_lock_is_left_behind(host):
    if is_lb(host):
        pytest.skip("app hosts only")
    assert not host.file(ROOT + "/.conveyor/deploy.lock").exists


def test_every_backend_serves_again_and_answers_2_0_0(host):
    if not is_lb(host):
        pytest.skip("load balancer only")
    stat = host.check_output(HAPROXY_STAT)
    rows = [line.split(",") for line in stat.splitlines() if line.startswith("sample,rolling-app")]
    assert len(rows) == 3
    header = stat.splitlines()[0][2:].split(",")
    status = header.index("status")
    assert all(row[status] == "UP" for row in rows), rows
    versions = {host.check_output("curl -sf http://127.0.0.1:80/version") for dummy in range(6)}
    assert versions == {"2.0.0"}
