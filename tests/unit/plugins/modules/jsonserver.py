"""A loopback HTTP server for the module tests: every GET answers what ``respond()`` returns, as JSON."""
import contextlib
import http.server
import json
import threading


@contextlib.contextmanager
def serve(respond):
    """``respond()`` -> (status, body as a dict); yields the server's base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, data = respond()
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
