"""After the loadbalancer role configured the backend of the app `shop` on a real HAProxy."""
import time

testinfra_hosts = ["lb-haproxy"]

STAT = ("python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('/run/haproxy/admin.sock');"
        " s.sendall(b'show stat\\n'); print(s.makefile().read())\"")


def servers(host):
    """{server: (status, check status)} of the shop backend, from HAProxy's runtime API."""
    lines = host.check_output(STAT).splitlines()
    header = lines[0][2:].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line.startswith("shop,")]
    return {row["svname"]: (row["status"], row["check_status"]) for row in rows
            if row["svname"] not in ("BACKEND",)}


def test_the_configuration_is_valid_and_haproxy_runs_it(host):
    assert host.run("haproxy -c -q -f /etc/haproxy/haproxy.cfg").rc == 0
    assert host.service("haproxy").is_running and host.service("haproxy").is_enabled
    config = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert "# BEGIN conveyor.deploy backend shop" in config and "frontend stats" in config
    assert "    server web1 127.0.0.1:8001 check\n" in config
    assert "    server web-two 127.0.0.1:8002 check\n" in config
    assert "    http-check send meth GET uri /up\n" in config
    assert "    http-check expect status 200-204\n" in config
    assert "    default-server inter 500ms rise 2 fall 2 weight 100\n" in config


def test_haproxy_checks_each_server_on_the_apps_health_path(host):
    for dummy in range(40):
        state = servers(host)
        if state.get("web1", ("",))[0] == "UP" and state.get("web-two", ("",))[0] == "DOWN":
            break
        time.sleep(0.25)
    assert state["web1"] == ("UP", "L7OK") and state["web-two"][0] == "DOWN", state
    assert host.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/up") == "200"
    assert host.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/nope") == "404"


def test_the_maintenance_maps_exist_and_the_reload_left_no_server_state_behind(host):
    for path in ("/etc/haproxy/conveyor-maintenance.map", "/etc/haproxy/conveyor-retry-after.map"):
        assert host.file(path).is_file and host.file(path).mode == 0o644
    # Kept for the reload only: a later start of HAProxy must not apply states saved before it.
    assert host.file("/var/lib/haproxy/conveyor-shop.state").content_string == "1\n"
