"""haproxy_server against a small stand-in for HAProxy's runtime API on a unix socket."""
import socket
import threading

import pytest

from ansible_collections.conveyor.deploy.plugins.module_utils import _heartbeat
from ansible_collections.conveyor.deploy.plugins.modules import haproxy_server

from ...conftest import ModuleFail

HEADER = ("# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
          "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
          "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord")


class FakeHAProxy(object):
    def __init__(self, path, servers):
        self.path = path
        self.servers = servers  # name -> dict(op=2, admin=0, scur=0)
        self.commands = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, dummy = self.sock.accept()
            except OSError:
                return
            with conn:
                line = conn.makefile().readline().strip()
                self.commands.append(line)
                conn.sendall(self.answer(line).encode())

    def answer(self, line):
        if line.startswith("show servers state"):
            rows = ["1", HEADER]
            for index, (name, s) in enumerate(sorted(self.servers.items()), start=1):
                rows.append("3 web %d %s 10.0.0.%d %d %d %d %d 5 6 3 4 6 0 0 0 %s 8000 -"
                            % (index, name, index, s["op"], s["admin"], s.get("uweight", s.get("weight", 1)),
                               s.get("weight", 1), name))
            return "\n".join(rows) + "\n\n"
        if line == "show stat":
            rows = ["# pxname,svname,scur,status,chkfail,check_status,check_code,last_chk,hrsp_2xx,hrsp_5xx,rtime"]
            for name, s in sorted(self.servers.items()):
                status, code, detail = s.get("check", ("L7OK", "200", ""))  # frozen: down, HAProxy counts no more
                if status != "L7OK" and not s.get("frozen"):
                    s["chkfail"] = s.get("chkfail", 0) + 1  # HAProxy checks again between two reads
                rows.append("web,%s,%d,%s,%d,%s,%s,%s,%d,%d,%d" % (
                    name, s["scur"], "UP" if s["op"] == 2 else "DOWN", s.get("chkfail", 0), status, code, detail,
                    s.get("ok", 0), s.get("errors", 0), s.get("rtime", 0)))
                # Traffic goes on between two reads.
                s["ok"] = s.get("ok", 0) + s.get("rate", 0)
            return "\n".join(rows) + "\n"
        if line.startswith("set weight web/"):
            name, percent = line[len("set weight web/"):].split(" ")
            self.servers[name]["uweight"] = self.servers[name].get("weight", 1) * int(percent.rstrip("%")) // 100
            return "\n"
        if line.startswith("set server web/") and line.endswith(" health up"):
            self.servers[line[len("set server web/"):-len(" health up")]]["op"] = 2
            return "\n"
        if line.startswith("set server web/"):
            name, state = line[len("set server web/"):].split(" state ")
            server = self.servers[name]
            server["admin"] = {"drain": 8, "maint": 1, "ready": 0}[state]
            if state != "ready":
                server["scur"] = 0  # sessions end once drained
            return "\n"
        return "Unknown command.\n"

    def close(self):
        self.sock.close()


@pytest.fixture
def haproxy(tmp_path):
    fakes = []

    def start(servers):
        fake = FakeHAProxy(str(tmp_path / "admin.sock"), servers)
        fakes.append(fake)
        return fake

    yield start
    for fake in fakes:
        fake.close()


def healthy(count):
    return {"app%02d" % i: dict(op=2, admin=0, scur=3) for i in range(1, count + 1)}


def test_drain_then_enable_a_batch(run_module, haproxy):
    fake = haproxy(healthy(4))
    result = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01"], state="drained",
                                             min_healthy_percent=75), diff=True)
    assert result["changed"] and result["changed_servers"] == ["app01"] and result["serving"] == 3
    assert "set server web/app01 state drain" in fake.commands
    assert result["diff"]["after"] == "web/app01: drain\n"
    again = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01"], state="drained"))
    assert again["changed"] is False
    result = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01"], state="enabled"))
    assert result["changed"] and result["serving"] == 4


def test_capacity_refusal_changes_nothing(run_module, haproxy):
    fake = haproxy(healthy(4))
    with pytest.raises(ModuleFail) as err:
        run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01", "app02"], state="drained",
                                        min_healthy_percent=75))
    assert "would leave 2 of 4 backends serving, below the minimum of 3" in err.value.result["msg"]
    assert not [c for c in fake.commands if c.startswith("set ")]


def test_check_mode_only_reads(run_module, haproxy):
    fake = haproxy(healthy(2))
    result = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app02"], state="maint"),
                        check_mode=True)
    assert result["changed"] and "would have" in result["msg"]
    assert not [c for c in fake.commands if c.startswith("set ")]


def test_enable_waits_for_health_and_times_out(run_module, haproxy):
    servers = healthy(2)
    servers["app02"].update(op=0, admin=8)
    fake = haproxy(servers)
    with pytest.raises(ModuleFail) as err:
        run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app02"], state="enabled",
                                        wait_timeout=1))
    assert "app02 are not up" in err.value.result["msg"]
    result = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app02"], state="enabled",
                                             wait_timeout=1, require_up=False))
    assert result["changed"] is False and result["serving"] == 1


def test_unknown_server_and_backend_and_socket(run_module, haproxy, tmp_path):
    fake = haproxy(healthy(2))
    with pytest.raises(ModuleFail) as err:
        run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["nope"], state="drained"))
    assert "no server named nope" in err.value.result["msg"]
    with pytest.raises(ModuleFail) as err:
        run_module(haproxy_server, dict(socket=fake.path, backend="api", servers=["app01"], state="drained"))
    assert "no backend named 'api'" in err.value.result["msg"]
    with pytest.raises(ModuleFail) as err:
        run_module(haproxy_server, dict(socket=str(tmp_path / "missing.sock"), backend="web", servers=["a"],
                                        state="drained"))
    assert "Could not talk to the HAProxy runtime API" in err.value.result["msg"]


def test_enable_with_mark_up_serves_at_once_instead_of_waiting_for_rise_checks(run_module, haproxy):
    servers = healthy(4)
    servers["app02"].update(op=0, admin=8)
    servers["app04"].update(op=0, admin=8)
    fake = haproxy(servers)
    result = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01", "app02", "app04"],
                                             state="enabled", wait_timeout=1, require_up=False,
                                             mark_up=["app01", "app02", "app03"]))
    assert "set server web/app02 health up" in fake.commands
    assert "set server web/app01 health up" not in fake.commands  # already up: left alone
    assert "set server web/app03 health up" not in fake.commands  # not one of the servers enabled
    assert "set server web/app04 health up" not in fake.commands  # its health was not proven: HAProxy decides
    assert result["serving"] == 3


def test_a_server_already_down_and_refused_fails_after_the_grace_not_the_timeout(run_module, haproxy):
    servers = healthy(3)
    servers["app02"].update(op=0, admin=8, check=("L7STS", "404", "HTTP status check returned code <404>"),
                            frozen=True)
    fake = haproxy(servers)
    with pytest.raises(ModuleFail) as err:
        run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app02"], state="enabled",
                                        wait_timeout=600, refused_grace=0.5))
    assert "L7STS 404" in err.value.result["msg"] and "refused for" in err.value.result["msg"]


def test_enable_fails_at_once_with_haproxys_own_check_when_it_disagrees_with_the_gate(run_module, haproxy):
    servers = healthy(3)
    servers["app02"].update(op=0, admin=8, check=("L7STS", "404", "HTTP status check returned code <404>"))
    fake = haproxy(servers)
    with pytest.raises(ModuleFail) as err:
        run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app02"], state="enabled",
                                        wait_timeout=600, mark_up=["app02"]))
    msg = err.value.result["msg"]
    assert "HAProxy's own health check fails for app02 although its gate passed: L7STS 404" in msg
    assert "HTTP status check returned code <404>" in msg and "Timed out" not in msg
    assert "set server web/app02 health up" not in fake.commands, "a server HAProxy refuses is never forced up"
    assert "set server web/app02 state ready" in fake.commands


def test_a_connection_refused_while_starting_is_waited_for_not_blamed(run_module, haproxy):
    servers = healthy(2)
    servers["app02"].update(op=0, admin=8, check=("L4CON", "", "Connection refused"))
    fake = haproxy(servers)
    result = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app02"], state="enabled",
                                             wait_timeout=600, mark_up=["app02"]))
    assert "set server web/app02 health up" in fake.commands and result["serving"] == 2


def test_a_server_still_up_from_its_old_release_that_haproxy_now_refuses_is_not_enabled_as_fine(run_module, haproxy):
    servers = healthy(3)
    servers["app02"].update(admin=8, check=("L7STS", "404", "HTTP status check returned code <404>"))
    fake = haproxy(servers)
    with pytest.raises(ModuleFail) as err:
        run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app02"], state="enabled",
                                        wait_timeout=600))
    assert "L7STS 404" in err.value.result["msg"]


def test_each_call_records_the_runs_heartbeat_except_in_check_mode(run_module, haproxy, tmp_path):
    fake = haproxy(healthy(4))
    beats = tmp_path / "beats"
    args = dict(socket=fake.path, backend="web", servers=["app01"], state="drained",
                heartbeat=dict(run_id="20261206T220000Z-aa", dir=str(beats)))
    run_module(haproxy_server, args, check_mode=True)
    assert not beats.exists()
    run_module(haproxy_server, args)
    assert _heartbeat.read(str(beats / "web")).keys() == {"20261206T220000Z-aa"}


def test_a_heartbeat_that_cannot_be_written_warns_and_the_call_goes_on(run_module, haproxy, tmp_path):
    fake = haproxy(healthy(4))
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    result = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01"], state="drained",
                                             heartbeat=dict(run_id="r", dir=str(blocked))))
    assert result["changed"] and "set server web/app01 state drain" in fake.commands


def test_a_canary_weight_is_set_before_the_enable_and_the_window_reads_the_counters_twice(run_module, haproxy):
    servers = healthy(3)
    for server in servers.values():
        server.update(weight=100, rate=40)
    servers["app01"].update(admin=8, scur=0)
    fake = haproxy(servers)
    result = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01"], state="enabled",
                                             weights={"app01": 10}, observe=0.1), diff=True)
    assert fake.commands.index("set weight web/app01 10%") < fake.commands.index("set server web/app01 state ready")
    assert servers["app01"]["uweight"] == 10 and "web/app01: weight 10%" in result["diff"]["after"]
    observed = result["observed"]
    assert observed["seconds"] == 0.1
    assert observed["after"]["app02"]["hrsp_2xx"] - observed["before"]["app02"]["hrsp_2xx"] == 40
    assert set(observed["before"]["app02"]) >= {"hrsp_5xx", "rtime", "econ"}
    restored = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01"], state="enabled",
                                               weights={"app01": 100}))
    assert restored["changed"] and servers["app01"]["uweight"] == 100 and "observed" not in restored
    sets = len([command for command in fake.commands if command.startswith("set weight")])
    again = run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01"], state="enabled",
                                            weights={"app01": 100}))
    assert again["changed"] is False
    assert len([command for command in fake.commands if command.startswith("set weight")]) == sets


def test_a_weight_that_rounds_to_nothing_or_is_not_a_percentage_is_refused(run_module, haproxy):
    fake = haproxy(healthy(2))  # HAProxy's default weight, 1
    with pytest.raises(ModuleFail, match="10% of web/app01's weight 1 rounds to 0"):
        run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01"], state="enabled",
                                        weights={"app01": 10}))
    for bad in (0, 101, "10%"):
        with pytest.raises(ModuleFail, match="must be a whole percentage from 1 to 100"):
            run_module(haproxy_server, dict(socket=fake.path, backend="web", servers=["app01"], state="enabled",
                                            weights={"app01": bad}))
    assert not [command for command in fake.commands if command.startswith("set ")]
