"""health_check against real HTTP servers on 127.0.0.1 started by the tests."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.conveyor.deploy.plugins.modules import health_check

from ...conftest import ModuleFail


class Script(object):
    """Answers to serve in order (the last one repeats): (status, body, delay_s)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            answer = self.answers[min(self.calls, len(self.answers) - 1)]
            self.calls += 1
            return answer


@pytest.fixture
def server():
    servers = []

    def start(answers):
        script = Script(answers)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                status, body, delay = script.next()
                if delay:
                    time.sleep(delay)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return "http://127.0.0.1:%d/health" % httpd.server_address[1], script

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


OK = (200, json.dumps({"status": "ok", "version": "2.0.0"}), 0)
ERR = (500, json.dumps({"status": "error", "version": "2.0.0"}), 0)


def probe(run_module, url, **extra):
    args = dict(url=url, interval=0.01, timeout=10, success_threshold=3, failure_threshold=3)
    args.update(extra)
    return run_module(health_check, args)


def test_passes_after_consecutive_successes_with_json(run_module, server):
    url, script = server([OK])
    result = probe(run_module, url, json_assertions=[{"query": "status", "equals": "ok"},
                                                     {"query": "version", "equals": "2.0.0"}])
    assert result["passed"] is True and script.calls == 3
    assert result["summary"].startswith("3/3 consecutive successes in ")
    assert [a["ok"] for a in result["attempts"]] == [True, True, True]


def test_500s_stop_early_with_the_body_in_the_message(run_module, server):
    url, script = server([ERR])
    with pytest.raises(ModuleFail) as err:
        probe(run_module, url, failure_threshold=5, timeout=30)
    assert script.calls == 5
    assert "answered 500" in err.value.result["msg"] and "5 times in a row" in err.value.result["msg"]
    assert '"status": "error"' in err.value.result["msg"]
    assert err.value.result["elapsed_s"] < 5


def test_flapping_resets_the_count(run_module, server):
    url, script = server([OK, ERR, OK, OK, ERR, OK, OK, OK])
    result = probe(run_module, url, failure_threshold=0)
    assert result["passed"] and script.calls == 8


def test_flapping_forever_times_out(run_module, server):
    url, dummy = server([OK, ERR] * 1000)
    with pytest.raises(ModuleFail) as err:
        probe(run_module, url, failure_threshold=0, timeout=1)
    assert "no 3 consecutive successes within" in err.value.result["msg"]


def test_slow_answers_time_out_per_request(run_module, server):
    url, dummy = server([(200, "{}", 2)])
    with pytest.raises(ModuleFail) as err:
        probe(run_module, url, request_timeout=0.3, failure_threshold=2)
    assert "no answer within 0.3 s" in err.value.result["msg"]


def test_connection_refused(run_module):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ModuleFail) as err:
        probe(run_module, "http://127.0.0.1:%d/health" % port)
    assert "connection refused, 3 times in a row" in err.value.result["msg"]


def test_invalid_json_and_failing_assertion(run_module, server):
    url, dummy = server([(200, "<html>oops</html>", 0)])
    with pytest.raises(ModuleFail) as err:
        probe(run_module, url, json_assertions=[{"query": "status", "equals": "ok"}])
    assert "not valid JSON" in err.value.result["msg"]
    url, dummy = server([OK])
    with pytest.raises(ModuleFail) as err:
        probe(run_module, url, json_assertions=[{"query": "version", "equals": "3.0.0"}])
    assert 'JSON version is "2.0.0", expected "3.0.0"' in err.value.result["msg"]


def test_start_period_tolerates_a_slow_start(run_module, server):
    url, script = server([ERR, ERR, ERR, ERR, OK])
    result = probe(run_module, url, interval=0.1, start_period=1, failure_threshold=2)
    assert result["passed"] and script.calls == 7


def test_latency_gate_uses_p95(run_module, server):
    url, dummy = server([(200, "{}", 0.05)])
    result = probe(run_module, url, samples=20, success_threshold=1, interval=0, max_latency_ms=1000)
    assert result["latency"]["count"] == 20 and result["latency"]["p95_ms"] >= 50
    assert result["latency"]["p50_ms"] <= result["latency"]["p95_ms"] <= result["latency"]["max_ms"]
    with pytest.raises(ModuleFail) as err:
        probe(run_module, url, samples=10, success_threshold=1, interval=0, max_latency_ms=10)
    assert "p95 latency" in err.value.result["msg"] and "exceeds max_latency_ms 10" in err.value.result["msg"]


@pytest.mark.parametrize("args, text", [
    pytest.param(dict(url="ftp://127.0.0.1/x"), "Invalid url", id="scheme"),
    pytest.param(dict(url="http://127.0.0.1/x", success_threshold=0), "success_threshold", id="threshold"),
    pytest.param(dict(url="http://127.0.0.1/x", json_assertions=[{"query": "a ||"}]), "json_assertions[0].query", id="jmespath"),
    pytest.param(dict(url="http://127.0.0.1/x", body_regex="("), "body_regex", id="regex"),
])
def test_bad_input_fails_before_probing(run_module, args, text):
    with pytest.raises(ModuleFail) as err:
        run_module(health_check, args)
    assert text in err.value.result["msg"]
    assert "attempts" not in err.value.result


def test_tcp_and_command_probes(run_module, server):
    url, dummy = server([OK])
    port = int(url.split(":")[2].split("/")[0])
    assert run_module(health_check, dict(type="tcp", port=port, success_threshold=1))["passed"]
    assert run_module(health_check, dict(type="command", command=["echo", "READY"], body_regex="^READY",
                                         success_threshold=2, interval=0))["passed"]
    with pytest.raises(ModuleFail) as err:
        run_module(health_check, dict(type="command", command=["false"], success_threshold=1, interval=0))
    assert "exit code 1" in err.value.result["msg"]


@pytest.mark.parametrize("answer, expect, problem", [
    pytest.param(OK, dict(version="2.0.0"), None, id="json-default-query"),
    pytest.param(OK, dict(version="3.0.0"), 'JSON version is "2.0.0", expected "3.0.0"', id="json-other-version"),
    pytest.param((200, "Ok\n", 0), dict(version="3.0.0"), "app_health_version_from: process", id="plain-text-hint"),
    pytest.param((200, "<h1>shop 3.0.0</h1>", 0), dict(version="3.0.0", version_from="body"), None, id="body"),
    pytest.param((200, "Ok\n", 0), dict(version="3.0.0", version_from="header"), "without an X-App-Version header",
                 id="header-missing"),
    pytest.param((200, "Ok\n", 0), dict(version="3.0.0", version_from="process"), None, id="process-is-status-here"),
])
def test_expect_version_proves_the_version_as_the_gate_does(run_module, server, answer, expect, problem):
    url, dummy = server([answer])
    if problem is None:
        assert probe(run_module, url, expect_version=expect)["passed"] is True
    else:
        with pytest.raises(ModuleFail) as err:
            probe(run_module, url, expect_version=expect)
        assert problem in err.value.result["msg"]
