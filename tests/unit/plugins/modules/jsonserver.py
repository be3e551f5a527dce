"""A loopback HTTP server for the module tests: every GET answers what ``respond()`` returns.

``respond()`` returns (status, body) or (status, body, headers); a dict body is sent as JSON, a
string as plain text, bytes as they are.  A ``respond`` that takes one argument is given the
request's path; one that takes two, the path and the request's headers.
"""
import contextlib
import http.server
import inspect
import json
import threading


@contextlib.contextmanager
def serve(respond):
    """Yields the server's base URL."""
    takes = len(inspect.signature(respond).parameters)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            answer = respond(*(self.path, self.headers)[:takes])
            status, data, headers = (answer + ({},))[:3]
            body = data if isinstance(data, bytes) else (json.dumps(data) if isinstance(data, dict) else data).encode()
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
