"""haproxy_maintenance against the runtime API stand-in, with maps as HAProxy keeps them."""
import pytest

from ansible_collections.conveyor.deploy.plugins.module_utils import _maintenance
from ansible_collections.conveyor.deploy.plugins.modules import haproxy_maintenance

from ...conftest import ModuleFail
from .test_haproxy_server import FakeHAProxy


class FakeMaps(FakeHAProxy):
    """Also answers show/add/set/del map the way HAProxy 2.6 does (arguments split on unescaped spaces)."""

    def __init__(self, path, servers, maps):
        self.maps = maps  # file -> {key: value}
        super().__init__(path, servers)

    @staticmethod
    def split(line):
        args, word, escaped = [], "", False
        for char in line:
            if escaped:
                word, escaped = word + char, False
            elif char == "\\":
                escaped = True
            elif char == " ":
                args.append(word)
                word = ""
            else:
                word += char
        return args + [word]

    def answer(self, line):
        args = self.split(line)
        if args[1:2] == ["map"]:
            if args[2] not in self.maps:
                return "Unknown map identifier. Please use #<id> or <file>.\n\n"
            entries = self.maps[args[2]]
            if args[0] == "show":
                return "".join("0x55 %s %s\n" % item for item in entries.items()) + "\n"
            if args[0] in ("add", "set"):
                entries[args[3]] = " ".join(args[4:])
            elif args[0] == "del":
                entries.pop(args[3], None)
            return "\n"
        return super().answer(line)


@pytest.fixture
def lb(tmp_path):
    files = {name: str(tmp_path / name) for name in ("msg.map", "retry.map")}
    for path in files.values():
        open(path, "w").close()
    fake = FakeMaps(str(tmp_path / "admin.sock"), {"app01": dict(op=2, admin=0, scur=0)},
                    {files["msg.map"]: {}, files["retry.map"]: {}})
    yield fake, files
    fake.close()


def args(lb, **extra):
    fake, files = lb
    return dict(dict(backend="web", socket=fake.path, message_map=files["msg.map"], retry_map=files["retry.map"]),
                **extra)


def test_on_sets_both_maps_live_and_on_disk_and_a_rerun_changes_nothing(run_module, lb):
    fake, files = lb
    message = "Zurück um 14:00 UTC; sorry \\o/"
    result = run_module(haproxy_maintenance, args(lb, state="on", text=message, retry_after=900))
    assert result["changed"] and result["before"] == "" and result["message"] == message
    assert fake.maps[files["msg.map"]] == {"web": message} and fake.maps[files["retry.map"]] == {"web": "900"}
    assert open(files["msg.map"], encoding="utf-8").read() == "web %s\n" % message
    assert not run_module(haproxy_maintenance, args(lb, state="on", text=message, retry_after=900))["changed"]
    result = run_module(haproxy_maintenance, args(lb, state="off"))
    assert result["changed"] and result["before"] == message and fake.maps[files["msg.map"]] == {}
    assert open(files["msg.map"]).read() == "" and open(files["retry.map"]).read() == ""
    assert run_module(haproxy_maintenance, args(lb, state="off"))["msg"] == "web was not in maintenance"


def test_check_mode_reports_and_changes_nothing(run_module, lb):
    fake, files = lb
    result = run_module(haproxy_maintenance, args(lb, state="on", text="Upgrading"), check_mode=True, diff=True)
    assert result["changed"] and result["diff"]["after"] == "web: maintenance: Upgrading\n"
    assert fake.maps[files["msg.map"]] == {} and open(files["msg.map"]).read() == ""
    assert not [c for c in fake.commands if c.startswith(("add", "set", "del"))]


@pytest.mark.parametrize("extra, text", [
    (dict(state="on"), "maintenance_message is empty"),
    (dict(state="on", text="two\nlines"), "must be one line of text"),
    (dict(state="on", text="x" * 501), "keep it under 500"),
    (dict(state="on", text="ok", retry_after=-1), "retry_after is -1"),
    (dict(state="on", text="ok", backend="nope"), "HAProxy has no backend named 'nope'"),
    (dict(state="on", text="ok", message_map="/etc/haproxy/missing.map"), "has no map /etc/haproxy/missing.map"),
])
def test_bad_inputs_and_a_backend_without_the_rule_are_refused_naming_what_to_fix(run_module, lb, extra, text):
    with pytest.raises(ModuleFail) as err:
        run_module(haproxy_maintenance, args(lb, **extra))
    assert text in err.value.result["msg"]


def test_the_map_file_keeps_other_backends_lines_and_the_runtime_api_gets_one_argument_per_value(tmp_path):
    path = str(tmp_path / "m.map")
    with open(path, "w") as handle:
        handle.write("# by hand\napi Down for the api\n")
    assert _maintenance.write_map_file(path, "web", "Back soon") is True
    assert _maintenance.write_map_file(path, "web", "Back soon") is False
    assert open(path).read() == "# by hand\napi Down for the api\nweb Back soon\n"
    assert _maintenance.write_map_file(path, "web", None) is True
    assert open(path).read() == "# by hand\napi Down for the api\n"
    assert _maintenance.escape("a b;c\\d") == "a\\ b\\;c\\\\d"
    assert _maintenance.parse_map("0x1 web Back soon\n0x2 api x\n\n") == {"web": "Back soon", "api": "x"}
    assert _maintenance.parse_map("# kept by conveyor\nweb Back soon\n") == {"web": "Back soon"}
