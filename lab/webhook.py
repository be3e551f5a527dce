#!/usr/bin/env python
"""A webhook receiver on 127.0.0.1 for the lab: it appends every POST to a JSON Lines file.

  python3 lab/webhook.py --out build/webhooks.jsonl [--port 0] [--port-file FILE]

Each line is {"path", "authorized", "body"}: "authorized" says whether the request carried
a bearer token, never the token itself. The notify callback's end-to-end test and the demo
point CONVEYOR_NOTIFY_URL (and _SLACK_URL) at it.

A path /fault/<kind>/<n>/... makes the first n POSTs to it fail, then records the others:
kind "garbage" answers bytes that are not HTTP, "reset" resets the connection, "hang" answers
nothing for 30 s. The fault tests point the notify callback at such a path.
"""
import argparse
import http.server
import json
import socket
import struct
import sys
import threading
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the port here once listening")
    args = parser.parse_args()

    faults = {}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def fault(self):
            """Play the fault this path asks for, the first n times; True when it did."""
            parts = self.path.strip("/").split("/")
            if len(parts) < 3 or parts[0] != "fault" or not parts[2].isdigit():
                return False
            with lock:
                seen = faults.get(self.path, 0)
                faults[self.path] = seen + 1
            if seen >= int(parts[2]):
                return False
            if parts[1] == "garbage":
                self.wfile.write(b"\x00\x01 this is not HTTP\r\n\r\n")
            elif parts[1] == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif parts[1] == "hang":
                time.sleep(30)
            self.close_connection = True
            return True

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if self.fault():
                return
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            with open(args.out, "a") as handle:
                handle.write(json.dumps({"path": self.path,
                                         "authorized": (self.headers.get("Authorization") or "").startswith("Bearer "),
                                         "body": body}) + "\n")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file, "w") as handle:
            handle.write(str(port))
    print("webhook receiver on http://127.0.0.1:%d" % port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
