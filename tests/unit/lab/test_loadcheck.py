"""lab/loadcheck.py counts the 503s answered before anything serves apart from later failures."""
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def serve(answers):
    """A loopback server answering the given statuses in turn, then the last one forever."""
    statuses = list(answers)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            body = b"1.0.0" if status == 200 else b"no server is available"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("answers, before, after", [
    ([503] * 5 + [200], 5, 0),                     # nothing deployed yet, then it serves: no deploy failure
    ([503] * 3 + [200] * 4 + [503] * 2 + [200], 3, 2),  # a failure once it served counts as one
    ([200], 0, 0),
    ([503], 12, 0),                                  # nothing ever served
])
def test_failures_before_the_first_answer_are_counted_apart(answers, before, after, tmp_path):
    server = serve(answers)
    try:
        out = tmp_path / "summary.json"
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "lab", "loadcheck.py"), "--url",
                               "http://127.0.0.1:%d/version" % server.server_address[1], "--workers", "1",
                               "--rate", "200", "--max-requests", "12", "--duration", "20", "--out", str(out)],
                              capture_output=True, text=True, check=False, timeout=60)
    finally:
        server.shutdown()
    summary = json.loads(out.read_text())
    assert summary["sent"] == 12
    assert summary["failed"] == before + after
    assert (summary["failed_before_first_answer"], summary["failed_after_first_answer"]) == (before, after)
    assert (summary["first_answer_at"] is None) == (answers == [503])
    assert proc.returncode == (1 if before + after else 0)
