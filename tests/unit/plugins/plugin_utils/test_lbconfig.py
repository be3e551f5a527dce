"""The app's HAProxy backend rendered from the inventory: the lines, and every hostile value refused by name."""
import pytest

from ansible_collections.conveyor.deploy.plugins.filter.haproxy import haproxy_backend, haproxy_servers
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _lbconfig

from ansible.errors import AnsibleFilterError

HOSTVARS = {
    "app01": {"ansible_host": "10.0.0.11", "app_port": 8000},
    "app02": {"ansible_host": "10.0.0.12", "app_port": "8001", "app_lb_server": "web-2"},
    "app03": {"ansible_host": "127.0.0.1", "app_lb_address": "app03.internal"},
}


def block(**settings):
    servers = haproxy_servers(["app01", "app02", "app03"], HOSTVARS)
    return haproxy_backend(servers, dict({"backend": "shop"}, **settings))


def test_one_server_per_host_named_and_addressed_from_its_own_variables():
    lines = block().splitlines()
    assert lines[:6] == ["backend shop", "    balance roundrobin", "    option httpchk",
                         "    http-check send meth GET uri /health", "    http-check expect status 200",
                         "    default-server inter 2s rise 2 fall 2 weight 100"]
    assert lines[-3:] == ["    server app01 10.0.0.11:8000 check", "    server web-2 10.0.0.12:8001 check",
                          "    server app03 app03.internal:8000 check"]
    assert "    server-state-file-name /var/lib/haproxy/conveyor-shop.state" in lines
    assert "    load-server-state-from-file local" in lines
    rule = [line for line in lines if "http-request return status 503" in line]
    assert len(rule) == 1 and "be_name,map(/etc/haproxy/conveyor-maintenance.map)" in rule[0]
    assert "map(/etc/haproxy/conveyor-retry-after.map,120)" in rule[0]
    assert not [line for line in lines if line.startswith("frontend")]


def test_the_settings_reach_their_lines():
    text = block(check_path="/up?full=1", check_status="200-399,418", check_host="shop.example", check_interval=0.5,
                 rise=3, fall=4, balance="leastconn", server_options="maxconn 50", backend_options=["timeout server 5s"],
                 frontend_bind=["*:80", "*:8443 ssl crt /etc/ssl/shop.pem"], maintenance=False, state_dir="/srv/st/")
    lines = text.splitlines()
    assert lines[:5] == ["frontend shop-frontend", "    bind *:80", "    bind *:8443 ssl crt /etc/ssl/shop.pem",
                         "    default_backend shop", ""]
    assert "    http-check send meth GET uri /up?full=1 ver HTTP/1.1 hdr Host shop.example" in lines
    assert "    http-check expect status 200-399,418" in lines
    assert "    default-server inter 500ms rise 3 fall 4 weight 100" in lines
    assert "    balance leastconn" in lines and "    timeout server 5s" in lines
    assert "    server app01 10.0.0.11:8000 check maxconn 50" in lines
    assert "    server-state-file-name /srv/st/conveyor-shop.state" in lines
    assert "503" not in text


@pytest.mark.parametrize("settings, text", [
    (dict(backend="my shop"), "loadbalancer_backend (app_lb_backend) must be a name HAProxy accepts"),
    (dict(backend=""), "loadbalancer_backend (app_lb_backend) must be a name"),
    (dict(check_path="health"), "loadbalancer_check_path (app_health_path) must be a path starting with '/'"),
    (dict(check_path="/health\n    server evil 6.6.6.6:80"), "loadbalancer_check_path must fit on one line"),
    (dict(check_path="/a b"), "must be a path starting with '/' without spaces"),
    (dict(check_status="ok"), "loadbalancer_check_status must be HTTP status codes or ranges"),
    (dict(check_status="200-"), "loadbalancer_check_status must be HTTP status codes"),
    (dict(check_interval="fast"), "loadbalancer_check_interval must be a time such as 2s"),
    (dict(check_interval="0s"), "loadbalancer_check_interval must be a time"),
    (dict(check_interval=-1), "loadbalancer_check_interval must be a time"),
    (dict(rise=0), "loadbalancer_rise must be a whole number of at least 1"),
    (dict(fall=True), "loadbalancer_fall must be a whole number"),
    (dict(balance="weighted"), "loadbalancer_balance must be one of roundrobin"),
    (dict(check_host="a b"), "loadbalancer_check_host must be a host name"),
    (dict(server_options="check\nserver x"), "loadbalancer_server_options must fit on one line"),
    (dict(backend_options=["ok", "two\nlines"]), "loadbalancer_backend_options must fit on one line"),
    (dict(frontend_bind="*:80\r"), "loadbalancer_frontend_bind must fit on one line"),
])
def test_a_value_that_would_break_or_add_configuration_lines_is_refused_naming_the_variable(settings, text):
    with pytest.raises(AnsibleFilterError) as err:
        block(**settings)
    assert text in str(err.value)


@pytest.mark.parametrize("hostvars, text", [
    ({"a": {"ansible_host": "127.0.0.1"}, "b": {"ansible_host": "127.0.0.1"}},
     "a and b would both be served from 127.0.0.1:8000: set app_lb_address on each host"),
    ({"a": {"ansible_host": "10.0.0.1"}, "b": {"ansible_host": "10.0.0.2", "app_lb_server": "a"}},
     "a and b would both be the server 'a': give each host its own app_lb_server"),
    ({"a": {"app_lb_server": "web 1"}, "b": {}}, "app_lb_server of a must be a name HAProxy accepts"),
    ({"a": {"app_lb_address": "10.0.0.1 backup"}, "b": {}}, "app_lb_address of a must be a host name or an IP"),
    ({"a": {"app_port": 70000}, "b": {}}, "app_port of a must be a TCP port between 1 and 65535, got 70000"),
    ({"a": {"app_port": "http"}, "b": {}}, "app_port of a must be a TCP port"),
])
def test_hosts_that_would_make_a_wrong_backend_are_refused_naming_the_host(hostvars, text):
    with pytest.raises(AnsibleFilterError) as err:
        haproxy_servers(["a", "b"], hostvars)
    assert text in str(err.value)


def test_an_empty_group_names_the_group_and_the_variable():
    with pytest.raises(AnsibleFilterError) as err:
        haproxy_servers([], {}, 8000, "web")
    assert "The group 'web' has no hosts" in str(err.value) and "loadbalancer_app_group" in str(err.value)


def test_a_host_without_an_address_is_reached_at_its_inventory_name():
    assert _lbconfig.servers_of(["app09"], {"app09": {}}) == [
        dict(host="app09", name="app09", address="app09", port=8000)]
    assert _lbconfig.interval(2) == "2000ms" and _lbconfig.interval("250ms") == "250ms"
