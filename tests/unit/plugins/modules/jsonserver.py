"""A loopback HTTP server for the module tests: every GET answers what ``respond()`` returns.

``respond()`` returns (status, body) or (status, body, headers); a dict body is sent as JSON, a
string as plain text.  A ``respond`` that takes one argument is given the request's path.
"""
import contextlib
import http.server
import inspect
import json
import threading


@contextlib.contextmanager
def serve(respond):
    """Yields the server's base URL."""
    takes_path = len(inspect.signature(respond).parameters) == 1

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            answer = respond(self.path) if takes_path else respond()
            status, data, headers = (answer + ({},))[:3]
            body = (json.dumps(data) if isinstance(data, dict) else data).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
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
