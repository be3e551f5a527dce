"""The app's HAProxy backend is configured by the collection (#15): hosts and settings come from the inventory,
and a reload for a change keeps a server that was taken out of rotation out of it and fails no request."""
import os
import tempfile

from .conftest import Traffic, lb_servers, on_host, playbook

SOCKET = "python3 -c \"import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect('/run/haproxy/admin.sock'); " \
         "s.sendall(sys.argv[1].encode() + b'\\n'); print(s.makefile().read())\" "


def runtime(command):
    return on_host("lb", SOCKET + "'%s'" % command)


def config():
    return on_host("lb", "cat /etc/haproxy/haproxy.cfg")


def test_a_reload_for_a_new_setting_keeps_a_disabled_server_out_and_fails_no_request():
    servers = lb_servers()
    assert servers and all(state == ("2", "0") for state in servers.values()), servers
    with Traffic() as traffic:
        runtime("set server sample/app02 state maint")
        result = playbook("playbooks/loadbalancer.yml", "-e", "loadbalancer_check_interval=400ms")
        assert result.rc == 0, result.output[-3000:]
        assert "RUNNING HANDLER [conveyor.deploy.loadbalancer : Reload HAProxy]" in result.output
        assert "    default-server inter 400ms rise 2 fall 2 weight 100" in config()
        assert lb_servers()["app02"][1] == "1", "the reload put app02 back into rotation"
        runtime("set server sample/app02 state ready")
        assert playbook("playbooks/loadbalancer.yml").rc == 0
    assert "    default-server inter 500ms rise 2 fall 2 weight 100" in config()
    assert traffic.summary["failed"] == 0 and traffic.summary["sent"] >= 200, traffic.summary
    again = playbook("playbooks/loadbalancer.yml")
    assert again.rc == 0 and again.recap()["lb01"]["changed"] == 0, again.output[-2000:]


def test_a_host_added_to_the_inventory_becomes_a_server_and_leaves_with_it():
    with tempfile.TemporaryDirectory() as directory:
        extra = os.path.join(directory, "extra.yml")
        with open(extra, "w") as handle:
            # A host that is not up yet: HAProxy keeps it out of rotation until its check passes.
            handle.write("app:\n  hosts:\n    app99: {app_lb_address: app01, app_port: 8099}\n")
        with Traffic() as traffic:
            check = playbook("playbooks/loadbalancer.yml", "-i", extra, "--check", "--diff")
            assert check.rc == 0 and "+    server app99 app01:8099 check" in check.output
            assert "app99" not in config()
            added = playbook("playbooks/loadbalancer.yml", "-i", extra)
            assert added.rc == 0, added.output[-3000:]
            assert "    server app99 app01:8099 check init-addr last,libc,none resolvers docker" in config()
            assert "app99" in lb_servers()
            assert playbook("playbooks/loadbalancer.yml").rc == 0
        assert "app99" not in config() and "app99" not in lb_servers()
        assert traffic.summary["failed"] == 0, traffic.summary
