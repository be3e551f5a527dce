"""conveyor.deploy.notify: the webhook sink against real HTTP endpoints, and every hook of the callback."""
import http.server
import json
import socket
import threading

import pytest
try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19: every string is a template
    def trust_as_template(value):
        return value

from ansible_collections.conveyor.deploy.plugins.callback import notify

from .conftest import Play, Playbook, Task, result, stats
from ...tlscert import self_signed

TOKEN = "CANARY-token-77"


class Receiver(object):
    """An HTTP endpoint on 127.0.0.1 that records each POST and answers with the next status given."""

    def __init__(self, statuses=()):
        self.requests = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                          "body": json.loads(body)})
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


@pytest.fixture
def silent_url():
    """An endpoint that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield "http://127.0.0.1:%d/hook" % listener.getsockname()[1]
    listener.close()


def closed_url():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return "http://127.0.0.1:%d/hook" % port


def test_sink_posts_json_with_the_token(receiver):
    ok, detail = notify.WebhookSink("generic", receiver.url + "/x", token=TOKEN).post({"event": "started"})
    assert (ok, detail) == (True, "HTTP 200")
    assert receiver.requests == [{"path": "/x", "auth": "Bearer " + TOKEN, "body": {"event": "started"}}]


def test_sink_retries_server_errors_then_succeeds(receiver):
    receiver.statuses = [503, 500]
    ok, _detail = notify.WebhookSink("generic", receiver.url, retries=2, backoff=0).post({"n": 1})
    assert ok and len(receiver.requests) == 3


def test_sink_gives_up_after_the_bounded_retries(receiver):
    receiver.statuses = [500, 500, 500, 500]
    ok, detail = notify.WebhookSink("generic", receiver.url, retries=1, backoff=0).post({})
    assert not ok and detail == "HTTP 500 after 2 attempts" and len(receiver.requests) == 2


def test_sink_does_not_retry_a_client_error(receiver):
    receiver.statuses = [403]
    assert notify.WebhookSink("generic", receiver.url, retries=3, backoff=0).post({}) == (False, "HTTP 403")
    assert len(receiver.requests) == 1


def test_sink_failures_never_reveal_the_url_or_token(silent_url):
    url = closed_url() + "?key=" + TOKEN
    for target in (url, silent_url + "?key=" + TOKEN):
        ok, detail = notify.WebhookSink("generic", target, token=TOKEN, timeout=0.2, retries=1, backoff=0).post({})
        assert not ok and "after 2 attempts" in detail
        assert TOKEN not in detail and "127.0.0.1" not in detail


@pytest.fixture
def garbage_url():
    """An endpoint that answers every connection with bytes that are not HTTP."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, dummy = listener.accept()
            except OSError:
                continue
            conn.recv(65536)
            conn.sendall(b"\x00\x01 not HTTP\r\n\r\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/hook" % listener.getsockname()[1]
    stop.set()
    thread.join(2)
    listener.close()


def test_an_answer_that_is_not_http_is_a_failed_post_and_later_posts_still_go(garbage_url, receiver):
    ok, detail = notify.WebhookSink("generic", garbage_url, timeout=1, retries=1, backoff=0).post({})
    assert not ok and detail == "BadStatusLine after 2 attempts"
    warnings = []
    dispatcher = notify.Dispatcher([notify.WebhookSink("generic", garbage_url, timeout=1, retries=0, backoff=0),
                                    notify.WebhookSink("generic", receiver.url, timeout=1, retries=0, backoff=0)],
                                   warnings.append)
    for event in ("started", "ended"):
        dispatcher.submit(event, {"event": event}, event)
    assert dispatcher.close(10)
    assert [request["body"]["event"] for request in receiver.requests] == ["started", "ended"]
    assert len(warnings) == 2 and "BadStatusLine" in warnings[0]


def test_a_silent_endpoint_costs_the_run_only_the_drain_timeout(load_callback, silent_url):
    plugin, display = load_callback("conveyor.deploy.notify", url=silent_url, timeout=5, retries=0, drain_timeout=0.3)
    plugin.v2_playbook_on_start(Playbook("deploy.yml"))
    plugin.v2_playbook_on_play_start(Play())
    plugin.v2_runner_on_start(None, Task("Lock", "conveyor.deploy.deploy_lock"))
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}}))
    assert display.warnings == ["conveyor.deploy.notify: notifications still queued after 0.3s were dropped"]


def drive_failed_deploy(plugin, **more_vars):
    plugin.v2_playbook_on_start(Playbook("playbooks/deploy.yml"))
    plugin.v2_playbook_on_play_start(Play(extra_vars={"app_version": "6.6.8"},
                                          host_vars=dict({"env_name": "lab", "app_name": "sample",
                                                          "conveyor_notify_token": trust_as_template("{{ vault_token }}"),
                                                          "vault_token": TOKEN}, **more_vars)))
    plugin.v2_runner_on_start(None, Task("Lock", "conveyor.deploy.deploy_lock"))
    plugin.v2_runner_on_start(None, Task("Lock", "conveyor.deploy.deploy_lock"))
    report = Task("Cutover | Report the batch", "ansible.builtin.debug", tags=["conveyor_notify_batch_done"])
    plugin.v2_runner_on_ok(result("app01", report, {"msg": "app01: deployed"}))
    gate = Task("Cutover | Switch, restart and gate the host", "conveyor.deploy.cutover")
    plugin.v2_runner_on_failed(result("app03", gate, {"failed": True, "msg": "answered 500", "outcome": "reverted"}))
    plugin.v2_runner_on_failed(result("app03", gate, {"failed": True, "msg": "again"}))
    plugin.v2_runner_on_failed(result("app04", gate, {"failed": True, "msg": TOKEN, "_ansible_no_log": True}),
                               ignore_errors=False)
    plugin.v2_runner_on_failed(result("app02", gate, {"failed": True, "msg": "ignored"}), ignore_errors=True)
    turn = Task("Recover | Turn", "ansible.builtin.set_fact", tags=["conveyor_notify_auto_rollback"])
    plugin.v2_runner_on_ok(result("app01", turn, {}))
    plugin.v2_runner_on_ok(result("app02", turn, {}))
    plugin.v2_runner_on_unreachable(result("app05", gate, {"unreachable": True, "msg": "ssh"}))
    summary = {"failed": True, "hosts": [{"host": "app01", "outcome": "rolled_back"},
                                         {"host": "app03", "outcome": "rolled_back"}]}
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 3}, "app03": {"ok": 3}}, {"conveyor_deploy": summary}))


def test_every_event_of_a_failed_deploy_reaches_both_webhooks(load_callback, receiver):
    plugin, display = load_callback("conveyor.deploy.notify", url=receiver.url + "/generic",
                                    slack_url=receiver.url + "/slack")
    drive_failed_deploy(plugin)
    generic = [r for r in receiver.requests if r["path"] == "/generic"]
    slack = [r for r in receiver.requests if r["path"] == "/slack"]
    events = [r["body"]["event"] for r in generic]
    assert events == ["started", "batch_done", "host_failed", "auto_rollback", "host_failed", "auto_rollback",
                      "host_failed", "ended"]
    assert [r["body"].get("host") for r in generic if r["body"]["event"] == "host_failed"] == ["app03", "app04", "app05"]
    assert generic[0]["body"]["text"] == "sample deploy of 6.6.8 to lab started by %s@%s (deploy)" % (
        generic[0]["body"]["actor"]["user"], generic[0]["body"]["actor"]["controller"])
    assert generic[-1]["body"]["outcome"] == "failed"
    assert generic[-1]["body"]["hosts"] == {"app01": "rolled_back", "app03": "rolled_back"}
    assert [r["body"].get("scope") for r in generic if r["body"]["event"] == "auto_rollback"] == ["host", "fleet"]
    assert all(r["auth"] == "Bearer " + TOKEN for r in generic)  # from the (vaulted) inventory variable
    assert all(r["auth"] is None and set(r["body"]) == {"text", "username"} for r in slack)
    assert len(slack) == len(generic)
    assert TOKEN not in json.dumps([r["body"] for r in receiver.requests])
    assert not display.warnings


CONTACTS = {"on_call": "Platform on-call +41 44 555 01 23", "owner": "#team-shop", "escalation": "Jane Roe"}


def test_routes_send_each_endpoint_its_events_and_severities_and_failures_name_the_contacts(load_callback, receiver):
    plugin, display = load_callback("conveyor.deploy.notify", url=receiver.url + "/generic",
                                    slack_url=receiver.url + "/slack")
    drive_failed_deploy(plugin, env_contacts=CONTACTS, conveyor_notify_routes={
        "generic": {"severities": ["critical"]}, "slack": {"events": ["started", "ended"]}})
    generic = [r["body"] for r in receiver.requests if r["path"] == "/generic"]
    slack = [r["body"]["text"] for r in receiver.requests if r["path"] == "/slack"]
    assert [body["event"] for body in generic] == ["host_failed", "auto_rollback", "host_failed", "auto_rollback",
                                                   "host_failed", "ended"]
    assert {body["severity"] for body in generic} == {"critical"}
    line = "Contacts: on call Platform on-call +41 44 555 01 23, escalation Jane Roe, owner #team-shop."
    assert all(body["text"].endswith(line) and body["contacts"] == CONTACTS for body in generic)
    assert len(slack) == 2 and slack[0].endswith("(deploy)") and line not in slack[0] and slack[1].endswith(line)
    assert not display.warnings


@pytest.mark.parametrize("routes, warning", [
    ({"pager": {}}, "conveyor_notify_routes names 'pager'; the endpoints are generic, slack"),
    ({"generic": {"severities": ["urgent"]}}, "conveyor_notify_routes.generic.severities has urgent; use info, "
                                              "warning, critical"),
    (["generic"], "conveyor_notify_routes must be a mapping"),
])
def test_a_wrong_route_is_named_in_a_warning(load_callback, receiver, routes, warning):
    plugin, display = load_callback("conveyor.deploy.notify", url=receiver.url)
    drive_failed_deploy(plugin, conveyor_notify_routes=routes)
    assert any(warning in text for text in display.warnings), display.warnings


def test_severities():
    assert notify.severity_of("started") == "info" and notify.severity_of("host_failed") == "critical"
    assert notify.severity_of("ended", "failed", "deploy") == "critical"
    assert notify.severity_of("ended", "succeeded", "rollback") == "warning"
    assert notify.severity_of("ended", "succeeded", "deploy") == "info"
    assert notify.severity_of("ended", "paused", "deploy") == "info"
    assert notify.severity_of("ended", "aborted", "deploy") == "warning"


def test_a_pause_says_how_to_continue_and_an_abort_is_no_automatic_rollback(load_callback, receiver):
    plugin, _display = load_callback("conveyor.deploy.notify", url=receiver.url)
    plugin.v2_playbook_on_start(Playbook("deploy.yml"))
    plugin.v2_playbook_on_play_start(Play(host_vars={"env_name": "prod"}))
    plugin.v2_runner_on_start(None, Task("Lock", "conveyor.deploy.deploy_lock"))
    paused = {"failed": False, "run_id": "RUN-1", "hosts": [{"host": "app01", "outcome": "deployed"}],
              "paused": {"after_batch": 1, "batches": 3, "until": "2026-12-08T10:00:00Z", "canary_weight": 10}}
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}}, {"conveyor_deploy": paused}))
    ended = receiver.requests[-1]["body"]
    assert ended["outcome"] == "paused" and ended["severity"] == "info"
    assert "paused (PAUSED after batch 1 of 3 with the canary at 10% weight" in ended["text"]
    assert "playbooks/promote.yml -e run_id=RUN-1" in ended["text"]
    plugin, _display = load_callback("conveyor.deploy.notify", url=receiver.url)
    plugin.v2_playbook_on_start(Playbook("abort.yml"))
    plugin.v2_playbook_on_play_start(Play(host_vars={"env_name": "prod"}))
    plugin.v2_runner_on_start(None, Task("Lock", "conveyor.deploy.deploy_lock"))
    drain = Task("Recover | Drain the batch", "conveyor.deploy.rollout_batch", tags=["conveyor_notify_auto_rollback"])
    plugin.v2_runner_on_ok(result("app01", drain, {"abort": True}))
    aborted = {"failed": False, "run_id": "RUN-1", "hosts": [{"host": "app01", "outcome": "rolled_back"}],
               "abort": {"by": "bob", "reason": "", "at": "x"}}
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}}, {"conveyor_deploy": aborted}))
    bodies = [r["body"] for r in receiver.requests[2:]]
    assert [body["event"] for body in bodies] == ["started", "ended"]
    assert bodies[-1]["outcome"] == "aborted" and bodies[-1]["severity"] == "warning"


def test_one_dispatcher_for_the_whole_run_even_without_variables(load_callback, receiver):
    plugin, _display = load_callback("conveyor.deploy.notify", url=receiver.url)
    plugin.v2_playbook_on_start(Playbook("deploy.yml"))
    plugin.v2_playbook_on_play_start(Play())
    first = plugin.dispatcher
    plugin.v2_playbook_on_play_start(Play())
    assert plugin.dispatcher is first


def test_the_events_option_filters(load_callback, receiver):
    plugin, _display = load_callback("conveyor.deploy.notify", url=receiver.url, events=["ended"])
    drive_failed_deploy(plugin)
    assert [r["body"]["event"] for r in receiver.requests] == ["ended"]


def test_a_manual_rollback_is_announced_as_such(load_callback, receiver):
    plugin, _display = load_callback("conveyor.deploy.notify", url=receiver.url)
    plugin.v2_playbook_on_start(Playbook("rollback.yml"))
    plugin.v2_playbook_on_play_start(Play(host_vars={"env_name": "prod"}))
    plugin.v2_runner_on_start(None, Task("Lock", "conveyor.deploy.deploy_lock"))
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}}, {"conveyor_rollback": {"failed": False, "hosts": []}}))
    assert receiver.requests[0]["body"]["text"].endswith("(manual rollback)")
    assert receiver.requests[-1]["body"]["text"] == "the application rollback to prod succeeded"


def test_a_run_that_names_no_environment_does_not_print_one(load_callback, receiver):
    plugin, _display = load_callback("conveyor.deploy.notify", url=receiver.url)
    plugin.v2_playbook_on_start(Playbook("rollback.yml"))
    plugin.v2_playbook_on_play_start(Play())
    plugin.v2_runner_on_start(None, Task("Lock", "conveyor.deploy.deploy_lock"))
    plugin.v2_playbook_on_stats(stats({"app01": {"ok": 1}}, {"conveyor_rollback": {"failed": False, "hosts": []}}))
    texts = [r["body"]["text"] for r in receiver.requests]
    assert texts[-1] == "the application rollback succeeded"
    assert not [text for text in texts if "?" in text]


def test_nothing_is_sent_for_runs_outside_the_collection_or_without_a_webhook(load_callback, receiver):
    plugin, _display = load_callback("conveyor.deploy.notify", url=receiver.url)
    plugin.v2_playbook_on_start(Playbook("site.yml"))
    plugin.v2_playbook_on_play_start(Play())
    plugin.v2_runner_on_start(None, Task("Ping", "ansible.builtin.ping"))
    plugin.v2_runner_on_failed(result("app01", Task("Ping", "ansible.builtin.ping"), {"failed": True}))
    plugin.v2_playbook_on_stats(stats({"app01": {"failures": 1}}))
    assert receiver.requests == []
    quiet, _display = load_callback("conveyor.deploy.notify")
    drive_failed_deploy(quiet)
    assert quiet.dispatcher is None


def test_the_dispatcher_keeps_order_and_leaves_no_thread_behind(receiver):
    dispatcher = notify.Dispatcher([notify.WebhookSink("generic", receiver.url, retries=0)], warn=pytest.fail)
    for number in range(12):
        dispatcher.submit("batch_done", {"n": number}, "batch %d" % number)
    assert dispatcher.close(10) is True
    assert [request["body"]["n"] for request in receiver.requests] == list(range(12))
    assert dispatcher.sent == 12
    # Idle between posts: no thread is left for the controller's forks to carry.
    assert not [thread for thread in threading.enumerate() if thread.name == "conveyor-notify"]
    dispatcher.submit("ended", {"n": 12}, "ended")
    assert dispatcher.close(10) is True
    assert receiver.requests[-1]["body"] == {"n": 12}


def test_close_reports_posts_left_behind_by_a_silent_endpoint(silent_url):
    warnings = []
    dispatcher = notify.Dispatcher([notify.WebhookSink("generic", silent_url, timeout=2, retries=0)], warnings.append)
    dispatcher.submit("started", {}, "one")
    dispatcher.submit("ended", {}, "two")
    assert dispatcher.close(0.3) is False


def test_https_endpoints_are_verified_with_one_context_per_sink(receiver, tmp_path, monkeypatch):
    import ssl
    cert, key = self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    receiver.server.socket = server_context.wrap_socket(receiver.server.socket, server_side=True)
    url = receiver.url.replace("http:", "https:") + "/hook"
    contexts = []
    real_make_context = notify.make_context

    def counting_make_context(*args, **kwargs):
        contexts.append(1)
        return real_make_context(*args, **kwargs)

    monkeypatch.setattr(notify, "make_context", counting_make_context)
    # Not trusted by the system CAs: refused, and the detail names neither the URL nor the token.
    ok, detail = notify.WebhookSink("generic", url, token=TOKEN, retries=0).post({"n": 0})
    assert ok is False and "127.0.0.1" not in detail and TOKEN not in detail
    assert receiver.requests == []
    # Trusted (the certificate is its own CA): delivered, and the CA bundle is loaded once for three posts.
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    contexts.clear()
    sink = notify.WebhookSink("generic", url, token=TOKEN, retries=0)
    assert [sink.post({"n": number})[0] for number in (1, 2, 3)] == [True, True, True]
    assert [request["body"]["n"] for request in receiver.requests] == [1, 2, 3]
    assert receiver.requests[0]["auth"] == "Bearer " + TOKEN
    assert len(contexts) == 1


def test_an_emergency_deploy_is_announced_as_one_and_every_event_says_so(load_callback, receiver):
    plugin, display = load_callback("conveyor.deploy.notify", url=receiver.url + "/generic")
    drive_failed_deploy(plugin, emergency=True, emergency_reason="CVE-2026-1234 hotfix")
    bodies = [r["body"] for r in receiver.requests]
    assert bodies[0]["event"] == "started" and bodies[0]["severity"] == "warning"
    assert bodies[0]["text"].startswith("EMERGENCY sample deploy of 6.6.8 to lab started by ")
    assert bodies[0]["text"].endswith(": CVE-2026-1234 hotfix")
    assert all(body["emergency"] == "CVE-2026-1234 hotfix" for body in bodies)
    assert bodies[-1]["severity"] == "critical"
    assert not display.warnings
