import pytest

from ansible_collections.conveyor.deploy.plugins.module_utils import _haproxy as hap

HEADER = ("# " + " ".join([
    "be_id", "be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state",
    "srv_admin_state", "srv_uweight", "srv_iweight", "srv_time_since_last_change", "srv_check_status", "srv_check_result",
    "srv_check_health", "srv_check_state", "srv_agent_state", "bk_f_forced_id", "srv_f_forced_id", "srv_fqdn",
    "srv_port", "srvrecord", "srv_use_ssl", "srv_check_port", "srv_check_addr", "srv_agent_addr",
    "srv_agent_port",
]) + "\n")
SERVERS_STATE = "1\n" + HEADER + """4 sample 1 app01 172.18.0.4 2 0 1 1 7 6 3 4 6 0 0 0 app01 8000 - 0 0 - - 0
4 sample 2 app02 172.18.0.5 2 8 1 1 7 6 3 4 6 0 0 0 app02 8000 - 0 0 - - 0
4 sample 3 app03 172.18.0.6 0 0 1 1 7 8 2 0 6 0 0 0 app03 8000 - 0 0 - - 0
4 sample 4 app04 172.18.0.7 2 1 1 1 7 6 3 4 6 0 0 0 app04 8000 - 0 0 - - 0
"""

STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status
www,FRONTEND,,,3,10,4096,100,0,0,0,0,0,,,,,OPEN
sample,app01,0,0,2,5,,50,0,0,,0,,0,0,0,0,UP
sample,app02,0,0,1,5,,50,0,0,,0,,0,0,0,0,DRAIN
sample,app03,0,0,0,5,,50,0,0,,0,,0,0,0,0,DOWN
sample,app04,0,0,0,5,,50,0,0,,0,,0,0,0,0,MAINT
sample,BACKEND,0,0,3,10,,200,0,0,0,0,,0,0,0,0,UP
"""


def view():
    states = hap.parse_servers_state(SERVERS_STATE)["sample"]
    stats = hap.parse_stat(STAT)
    return {name: hap.server_view(state, stats.get(("sample", name))) for name, state in states.items()}


def test_server_view_merges_admin_health_and_sessions():
    v = view()
    assert v["app01"] == {"name": "app01", "addr": "172.18.0.4", "admin": "ready", "health": "up",
                          "serving": True, "sessions": 2, "served": 50, "status": "UP", "check": "",
                          "check_detail": "", "check_failures": 0, "weight": 1,
                          "current_weight": 1}
    assert (v["app02"]["admin"], v["app02"]["serving"], v["app02"]["sessions"]) == ("drain", False, 1)
    assert (v["app03"]["health"], v["app03"]["serving"]) == ("down", False)
    assert (v["app04"]["admin"], v["app04"]["serving"]) == ("maint", False)


@pytest.mark.parametrize("server, before, expected", [
    pytest.param(dict(health="down", check="L7STS 404", check_detail="HTTP status check returned code <404>",
                      check_failures=5), 3, "L7STS 404 (HTTP status check returned code <404>), 2 failed checks",
                 id="refused-twice"),
    pytest.param(dict(health="down", check="L4CON", check_detail="Connection refused", check_failures=4), 2,
                 "L4CON (Connection refused)", id="unreachable-from-haproxy"),
    pytest.param(dict(health="down", check="L7STS 404", check_failures=4), 3, None, id="once-is-not-yet"),
    pytest.param(dict(health="down", check="L7OK 200", check_failures=9), 0, None, id="last-check-passed-rise-pending"),
    pytest.param(dict(health="up", check="L7STS 404", check_failures=9), 7, "L7STS 404, 2 failed checks",
                 id="still-up-from-the-old-release-but-refused"),
])
def test_check_disagrees(server, before, expected):
    found = hap.check_disagrees(dict(server, name="app03"), before)
    assert found is None if expected is None else expected in found


@pytest.mark.parametrize("server, refused_for, expected", [
    pytest.param(dict(health="down", check="L7STS 404", check_failures=0), 12, "refused for 12 s", id="down-refused-long"),
    pytest.param(dict(health="down", check="L7STS 404", check_failures=0), 3, None, id="down-refused-short"),
    pytest.param(dict(health="down", check="L4CON", check_failures=0), 60, None, id="down-unreachable-waits"),
])
def test_check_disagrees_for_a_server_already_down(server, refused_for, expected):
    found = hap.check_disagrees(dict(server, name="app03"), 0, refused_for)
    assert found is None if expected is None else expected in found


@pytest.mark.parametrize("total, pct, needed", [(4, 50, 2), (4, 75, 3), (10, 75, 8), (3, 50, 2), (4, 0, 0), (1, 100, 1)])
def test_required_serving_rounds_up(total, pct, needed):
    assert hap.required_serving(total, pct) == needed


def test_capacity_problem_counts_only_serving_backends():
    v = view()  # only app01 serves
    assert hap.capacity_problem(v, {"app03", "app04"}, 75) is None  # nothing serving is lost
    problem = hap.capacity_problem(v, {"app01"}, 25)
    assert "would leave 0 of 4 backends serving, below the minimum of 1" in problem


def test_capacity_allows_a_batch_that_keeps_the_minimum():
    states = {n: {"name": n, "addr": "", "op_state": 2, "admin_state": 0} for n in ("a", "b", "c", "d")}
    v = {n: hap.server_view(s, {"scur": 0}) for n, s in states.items()}
    assert hap.capacity_problem(v, {"a"}, 75) is None
    assert hap.capacity_problem(v, {"a", "b"}, 50) is None
    assert "below the minimum of 3" in hap.capacity_problem(v, {"a", "b"}, 75)


def test_capacity_counts_a_server_at_a_reduced_weight_for_its_share():
    states = {n: {"name": n, "addr": "", "op_state": 2, "admin_state": 0, "weight": 100, "current_weight": 100}
              for n in ("a", "b", "c", "d")}
    states["a"]["current_weight"] = 10  # a canary at 10 %
    v = {n: hap.server_view(s, {"scur": 0}) for n, s in states.items()}
    # Draining c and d leaves a (0.1) and b (1.0): 1.1 of 4 below 2.
    problem = hap.capacity_problem(v, {"c", "d"}, 50)
    assert "would leave 1.1 of 4 backends serving, below the minimum of 2" in problem
    assert "a at 10% of its weight" in problem
    # The same call giving the canary its full weight back restores the capacity.
    assert hap.capacity_problem(v, {"c", "d"}, 50, {"a": 100}) is None
    assert hap.capacity_problem(v, {"d"}, 50) is None  # 2.1 of 4 stay


def test_parse_stat_ignores_garbage():
    assert hap.parse_stat("") == {}
    assert hap.parse_stat("Unknown command\n") == {}
