"""haproxy_state keeps a backend's server states for a reload (only those whose address and port stay) and forgets
them once the new HAProxy process answers."""
import os

import pytest

from ansible_collections.conveyor.deploy.plugins.modules import haproxy_state

from ...conftest import ModuleFail
from .test_haproxy_server import FakeHAProxy


class Reloading(FakeHAProxy):
    """Also answers ``show info`` with the process's PID, which a reload changes."""

    pid = 100

    def answer(self, line):
        if line == "show info":
            return "Name: HAProxy\nPid: %d\nUptime_sec: 3\n" % self.pid
        return super().answer(line)


@pytest.fixture
def lb(tmp_path):
    fake = Reloading(str(tmp_path / "admin.sock"), {"app01": dict(op=2, admin=8, scur=0),
                                                    "app02": dict(op=2, admin=0, scur=0)})
    yield fake, str(tmp_path / "conveyor-web.state")
    fake.close()


def test_saves_the_states_only_when_they_changed_and_check_mode_writes_nothing(run_module, lb):
    fake, path = lb
    params = dict(backend="web", path=path, socket=fake.path)
    result = run_module(haproxy_state, params, check_mode=True)
    assert result["changed"] and not os.path.exists(path)
    result = run_module(haproxy_state, params)
    assert result["changed"] and result["pid"] == 100
    assert result["servers"] == [dict(name="app01", admin="drain"), dict(name="app02", admin="ready")]
    saved = open(path).read()
    assert saved.startswith("1\n# be_id") and " web 1 app01 " in saved
    assert not run_module(haproxy_state, params)["changed"]
    fake.servers["app02"]["admin"] = 1
    assert run_module(haproxy_state, params)["servers"][1] == dict(name="app02", admin="maint")


def test_a_server_whose_port_or_address_changes_or_that_leaves_starts_from_the_configuration(run_module, lb):
    fake, path = lb
    servers = [dict(name="app01", address="app01", port=8000), dict(name="app02", address="app02", port=9000),
               dict(name="app03", address="10.0.0.3", port=8000)]
    result = run_module(haproxy_state, dict(backend="web", path=path, socket=fake.path, servers=servers))
    assert result["servers"] == [dict(name="app01", admin="drain")]
    saved = open(path).read()
    assert " app01 " in saved and " app02 " not in saved
    result = run_module(haproxy_state, dict(backend="web", path=path, socket=fake.path,
                                            servers=[dict(name="app02", address="10.0.0.2", port=8000)]))
    assert result["servers"] == [dict(name="app02", admin="ready")]


def test_cleared_once_another_process_answers_and_a_reload_that_never_came_is_an_error(run_module, lb):
    fake, path = lb
    run_module(haproxy_state, dict(backend="web", path=path, socket=fake.path))
    with pytest.raises(ModuleFail) as err:
        run_module(haproxy_state, dict(backend="web", path=path, socket=fake.path, state="cleared", pid=100,
                                       timeout=1))
    assert "HAProxy still answers from process 100 1s after the reload" in err.value.result["msg"]
    assert " app01 " in open(path).read()
    fake.pid = 101
    assert run_module(haproxy_state, dict(backend="web", path=path, socket=fake.path, state="cleared", pid=100))[
        "changed"]
    assert open(path).read() == "1\n"
    assert not run_module(haproxy_state, dict(backend="web", path=path, socket=fake.path, state="cleared",
                                              pid=100))["changed"]
    result = run_module(haproxy_state, dict(backend="web", path=path, socket=fake.path, state="cleared"),
                        check_mode=True)
    assert not result["changed"]


def test_nothing_to_keep_when_haproxy_does_not_run_or_lacks_the_backend(run_module, tmp_path, lb):
    fake, path = lb
    result = run_module(haproxy_state, dict(backend="web", path=path, socket=str(tmp_path / "none.sock")))
    assert not result["changed"] and "HAProxy does not run" in result["msg"] and not os.path.exists(path)
    result = run_module(haproxy_state, dict(backend="api", path=path, socket=fake.path))
    assert not result["changed"] and "HAProxy has no backend api yet" in result["msg"]
