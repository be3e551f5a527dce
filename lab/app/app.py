"""Sample application for the conveyor.deploy lab: a small stdlib HTTP service.

Routes: ``/`` (a page naming version and host), ``/health`` (JSON status and
version) and ``/version``.  The release it runs from decides its behaviour
through the ``BEHAVIOUR`` file packed beside this script: ``healthy``,
``unhealthy`` (starts, but ``/health`` answers 500), ``unhealthy-on:h1,h2``
(unhealthy on those hosts only), ``crash`` (never starts) or ``plain``: like most
third-party apps, ``/health`` answers plain ``Ok`` and no header or route reports the
version (only the ``/`` page names it), or ``healthz`` (its health endpoint is
``/healthz``; ``/health``, which the lab's HAProxy checks, answers 404), or ``hang`` (it
accepts connections and never answers one), or ``schema`` (healthy only once the shared database's schema
is 2: its ``bin/migrate`` brings it), or ``errors`` (healthy, but every 20th request of ``/`` or ``/version`` answers 500: 5 %),
or ``errors-after:N`` (every 5th page fails from N seconds after it started: a release that degrades after the
rollout),
or ``slow`` (healthy, but ``/`` and ``/version`` answer 300 ms late). The last two pass every health gate: only an analysis of
the live traffic (docs/progressive-delivery.md) stops them. ``SIGHUP`` makes it re-execute itself from its
command line, as the lab's reload strategy (ExecReload) asks.
"""
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def read(name, default=""):
    try:
        with open(os.path.join(HERE, name), encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return default


VERSION = read("VERSION", "unknown")
BEHAVIOUR = read("BEHAVIOUR", "healthy")
HOST = socket.gethostname()
ENVIRONMENT = os.environ.get("APP_ENV", "unknown")
STARTED = time.time()
PAGES = {"served": 0}
PAGES_LOCK = threading.Lock()


def page_fails():
    """``errors`` builds: every 20th page request fails (exactly 5 %, whatever the request rate); ``errors-after:N``
    builds: every 5th (20 %) from N seconds after they started."""
    every = 20
    if BEHAVIOUR.startswith("errors-after:"):
        if time.time() - STARTED < float(BEHAVIOUR.split(":", 1)[1]):
            return False
        every = 5
    elif BEHAVIOUR != "errors":
        return False
    with PAGES_LOCK:
        PAGES["served"] += 1
        return PAGES["served"] % every == 0


def schema_version():
    """The shared database's schema (``schema`` releases need 2; bin/migrate brings it); 0 without a database."""
    import sqlite3
    path = os.environ.get("APP_DB", "/srv/lab-db/sample.sqlite")
    if not os.path.exists(path):
        return 0
    try:
        con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=2)
        try:
            return con.execute("PRAGMA user_version").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


class Handler(BaseHTTPRequestHandler):
    server_version = "conveyor-sample/" + VERSION
    protocol_version = "HTTP/1.1"

    def _send(self, status, body, content_type):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if BEHAVIOUR != "plain":
            self.send_header("X-App-Version", VERSION)
        self.send_header("X-App-Host", HOST)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):  # noqa: N802 (http.server naming)
        self.do_GET()

    def do_GET(self):  # noqa: N802
        if BEHAVIOUR == "hang":
            # Stuck before it is ready (a dependency that never answers): the request is held, not answered.
            time.sleep(3600)
            return
        path = self.path.split("?", 1)[0]
        if BEHAVIOUR == "healthz" and path in ("/health", "/healthz"):
            # Its health endpoint is /healthz: /health, which the lab's HAProxy checks, is not found.
            path = "/health" if path == "/healthz" else "/missing"
        if path == "/health" and BEHAVIOUR == "plain":
            self._send(200, "Ok\n", "text/plain")
        elif path == "/version" and BEHAVIOUR == "plain":
            self._send(404, "not found\n", "text/plain")
        elif path in ("/", "/version") and page_fails():
            self._send(500, "internal error (deliberately erroring build)\n", "text/plain")
        elif path == "/health":
            healthy = BEHAVIOUR != "unhealthy" and not (
                BEHAVIOUR.startswith("unhealthy-on:") and HOST in BEHAVIOUR.split(":", 1)[1].split(","))
            body = {"status": "ok" if healthy else "error", "version": VERSION,
                    "host": HOST, "uptime_s": round(time.time() - STARTED, 1)}
            if BEHAVIOUR == "schema":
                body["schema"] = schema_version()
                if body["schema"] < 2:
                    healthy = False
                    body.update(status="error", reason="database schema %d, needs 2: run the migration" % body["schema"])
            self._send(200 if healthy else 500, json.dumps(body), "application/json")
        elif path == "/version":
            if BEHAVIOUR == "slow":
                time.sleep(0.3)
            self._send(200, VERSION + "\n", "text/plain")
        elif path == "/":
            if BEHAVIOUR == "slow":
                time.sleep(0.3)
            page = ("<!doctype html><title>sample %s</title>"
                    "<h1>sample app %s</h1><p>host %s, environment %s</p>\n"
                    % (VERSION, VERSION, HOST, ENVIRONMENT))
            self._send(200, page, "text/html")
        else:
            self._send(404, "not found\n", "text/plain")

    def log_message(self, fmt, *args):
        log_dir = os.environ.get("APP_LOG_DIR")
        if log_dir:
            try:
                with open(os.path.join(log_dir, "access.log"), "a", encoding="utf-8") as handle:
                    handle.write("%s %s\n" % (self.log_date_time_string(), fmt % args))
            except OSError:
                pass


def main():
    if BEHAVIOUR == "crash":
        sys.stderr.write("sample app %s: refusing to start (deliberately broken build)\n" % VERSION)
        return 1
    port = int(os.environ.get("APP_PORT", "8000"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # A reload (systemctl reload: ExecReload sends SIGHUP) re-executes the same process from its command
    # line, so the code under <app_root>/current is loaded again without a new main process.
    reload_asked = []

    def reload(*_):
        reload_asked.append(True)
        threading.Thread(target=server.shutdown).start()
    signal.signal(signal.SIGHUP, reload)
    sys.stderr.write("sample app %s listening on %d\n" % (VERSION, port))
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        server.server_close()
    if reload_asked:
        sys.stderr.write("sample app %s reloading\n" % VERSION)
        os.execv(sys.executable, [sys.executable] + sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
