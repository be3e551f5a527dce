"""The deploy_window and approval action plugins' decisions, and the approvals sources."""
import datetime
import http.server
import json
import ssl
import threading

import pytest

from ansible_collections.conveyor.deploy.plugins.action import approval, deploy_window
from ansible_collections.conveyor.deploy.plugins.plugin_utils import _governance, _rollout

from ...tlscert import self_signed

WINDOWS = {"timezone": "Europe/Berlin", "allow": [{"name": "business hours", "days": ["tue"], "start": "09:00",
                                                   "end": "16:00"}]}


def window_args(**overrides):
    args = {"windows": WINDOWS, "environment": "prod", "now": None, "clock_start": None, "override_reason": "",
            "fail_when_closed": True}
    args.update(overrides)
    return args


def test_a_closed_window_fails_and_says_when_it_opens_and_how_to_override():
    result = deploy_window.decide(window_args(now="2026-12-04T10:00:00+01:00"))
    assert result["failed"] and not result["allowed"] and not result["overridden"]
    assert "Next window: 2026-12-08T09:00+01:00" in result["msg"] and "override_reason" in result["msg"]


def test_an_override_with_a_reason_allows_and_says_so():
    result = deploy_window.decide(window_args(now="2026-12-04T10:00:00+01:00", override_reason=" payments outage "))
    assert result["allowed"] and result["overridden"] and "failed" not in result
    assert result["msg"].endswith("overridden: payments outage")


def test_an_open_window_passes():
    result = deploy_window.decide(window_args(now="2026-12-01T10:00:00+01:00"))
    assert result["allowed"] and result["open"] and result["closes_at"] == "2026-12-01T16:00+01:00"


def test_report_only():
    assert "failed" not in deploy_window.decide(window_args(now="2026-12-04T10:00:00+01:00", fail_when_closed=False))


def test_the_injected_clock_advances_from_clock_start():
    # 15:59:50 injected at t=1000; at t=1030 the clock reads 16:00:20 and the window has closed.
    args = window_args(now="2026-12-01T15:59:50+01:00", clock_start=1000.0)
    assert deploy_window.decide(args, wall=lambda: 1005.0)["open"]
    closed = deploy_window.decide(args, wall=lambda: 1030.0)
    assert not closed["open"] and closed["now"] == "2026-12-01T16:00+01:00"


def test_the_real_clock_is_used_without_an_injected_time():
    before = datetime.datetime.now(_governance.UTC)
    assert deploy_window.effective_now(None, None) >= before


APPROVALS = {"CHG-1": {"approver": "carol", "status": "approved"},
             "CHG-2": {"approver": "dave", "status": "denied", "comment": "freeze"}}


def approval_args(**overrides):
    args = {"environment": "prod", "source": "file"}
    args.update(overrides)
    return args


def test_approvals_file_as_a_mapping_or_a_list():
    assert approval.from_mapping(APPROVALS, "CHG-1", "f")["approver"] == "carol"
    listed = {"approvals": [{"change_id": "CHG-9", "approver": "erin"}]}
    assert approval.from_mapping(listed, "CHG-9", "f") == {"change_id": "CHG-9", "approver": "erin"}
    with pytest.raises(approval.ApprovalNotFound, match="f has no approval for change CHG-3"):
        approval.from_mapping(APPROVALS, "CHG-3", "f")
    with pytest.raises(approval.ApprovalNotFound, match="neither a mapping"):
        approval.from_mapping("text", "CHG-1", "f")


def test_judge_fails_denied_and_reports_the_source():
    now = datetime.datetime(2026, 12, 1, tzinfo=_governance.UTC)
    denied = approval.judge(approval_args(fail_on_invalid=True), dict(APPROVALS["CHG-2"], change_id="CHG-2"), "alice", now)
    assert denied["failed"] and denied["msg"] == "approval refused: change CHG-2 is denied, not approved (freeze)"
    good = approval.judge(approval_args(fail_on_invalid=True), dict(APPROVALS["CHG-1"], change_id="CHG-1"), "alice", now)
    assert good["valid"] and good["approval"] == {"change_id": "CHG-1", "approver": "carol", "status": "approved",
                                                  "source": "file"}


@pytest.fixture
def endpoint(tmp_path):
    """(https base URL, requests seen, CA file) of an approvals endpoint with its own certificate."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
            change = self.path.split("?")[0].rsplit("/", 1)[-1]
            if change == "boom":
                self.send_response(500)
                self.end_headers()
                return
            if self.path.startswith("/moved/"):
                self.send_response(302)
                self.send_header("Location", "/elsewhere/" + change)
                self.end_headers()
                return
            if change not in APPROVALS:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps(APPROVALS[change]).encode())

        def log_message(self, *args):
            pass

    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "https://127.0.0.1:%d" % server.server_address[1], seen, cert
    server.shutdown()
    server.server_close()


def test_the_http_source_answers_for_a_change(endpoint):
    url, seen, ca = endpoint
    found = approval.fetch_url(url + "/api/approvals/{change_id}?key=abc", "CHG-1", "tok-123", 5, ca_path=ca)
    assert found == {"change_id": "CHG-1", "approver": "carol", "status": "approved"}
    assert seen[0] == {"path": "/api/approvals/CHG-1?key=abc", "auth": "Bearer tok-123"}
    assert approval.fetch_url(url + "/api/approvals/", "CHG-2", None, 5, ca_path=ca)["status"] == "denied"


def test_the_approvals_endpoint_must_be_https_with_a_certificate_the_controller_trusts(endpoint):
    url, seen, dummy_ca = endpoint
    with pytest.raises(approval.ApprovalNotFound, match="must be an https:// URL"):
        approval.fetch_url(url.replace("https:", "http:") + "/api", "CHG-1", "TOKEN", 5)
    with pytest.raises(approval.ApprovalNotFound, match="carries credentials"):
        approval.fetch_url(url.replace("https://", "https://me:pw@") + "/api", "CHG-1", "TOKEN", 5)
    # Without the private CA the certificate is not trusted, and nothing is judged approved.
    with pytest.raises(approval.ApprovalNotFound, match="did not answer"):
        approval.fetch_url(url + "/api", "CHG-1", "TOKEN", 5)
    assert seen == []


def test_a_redirect_is_not_followed_with_the_token(endpoint):
    url, seen, ca = endpoint
    with pytest.raises(approval.ApprovalNotFound, match=r"redirect \(HTTP 302\), which is not followed"):
        approval.fetch_url(url + "/moved/{change_id}", "CHG-1", "TOKEN", 5, ca_path=ca)
    assert [request["path"] for request in seen] == ["/moved/CHG-1"]


def test_the_http_source_errors_never_show_the_url_or_token(endpoint):
    url, dummy, ca = endpoint
    with pytest.raises(approval.ApprovalNotFound, match=r"knows no change CHG-404 \(HTTP 404\)"):
        approval.fetch_url(url + "?key=SECRET", "CHG-404", "TOKEN", 5, ca_path=ca)
    with pytest.raises(approval.ApprovalNotFound) as failure:
        approval.fetch_url(url + "/boom?key=SECRET", "boom", "TOKEN", 5, ca_path=ca)
    assert "HTTP 500" in str(failure.value)
    with pytest.raises(approval.ApprovalNotFound) as failure:
        approval.fetch_url("https://127.0.0.1:1/x?key=SECRET", "CHG-1", "TOKEN", 2)
    for text in ("SECRET", "TOKEN", "127.0.0.1"):
        assert text not in str(failure.value)


def test_the_checklist_judges_only_server_names_it_can_know():
    hostvars = {"app01": {"app_lb_server": "web01"}, "app02": {"app_lb_server": "{{ inventory_hostname }}-web"},
                "app03": {}}
    assert _rollout.lb_servers(hostvars, ["app01", "app02", "app03"]) == {
        "app01": "web01", "app03": "app03"}
