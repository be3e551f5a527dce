"""Send a steady stream of requests to the lab's load balancer and count failures.

Bounded in count and time, loopback only: ``--url`` must be on 127.0.0.1 or
localhost.  Runs until ``--duration`` seconds pass, ``--max-requests`` are sent
or the file named by ``--stop-file`` appears; then prints a JSON summary
(sent, failed, failures by reason, versions seen over time) to stdout or
``--out``.  Exit code 1 when any request failed.  Failures before the first
request that succeeds (a lab where nothing is deployed yet answers 503) are
also counted apart, as ``failed_before_first_answer``; ``failed`` counts every
failure.
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse


class Background(object):
    """This script in a subprocess for the length of a ``with`` block; ``summary`` holds its JSON afterwards.

    Bounded like the script: ``duration`` seconds and ``max_requests`` at most, stopped at the block's end.
    """

    def __init__(self, rate=25, workers=4, duration=600, max_requests=50000, url=None):
        self.args = ["--rate", str(rate), "--workers", str(workers), "--duration", str(duration),
                     "--max-requests", str(max_requests)] + (["--url", url] if url else [])
        self.summary = None

    def __enter__(self):
        directory = tempfile.mkdtemp(prefix="conveyor-load-")
        self.stop_file = os.path.join(directory, "stop")
        self.out = os.path.join(directory, "summary.json")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--stop-file", self.stop_file,
                                      "--out", self.out] + self.args)
        time.sleep(1)
        return self

    def __exit__(self, *exc):
        open(self.stop_file, "w").close()
        self.proc.wait(timeout=60)
        with open(self.out) as handle:
            self.summary = json.load(handle)


PAGE_VERSION = re.compile(r"<h1>sample app ([^<\s]+)</h1>")


def one_request(host, port, path, timeout):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
        # The version: the sample app's header, else its page's heading (an app that sends no header), else the body.
        heading = PAGE_VERSION.search(body)
        return response.status, response.getheader("X-App-Version") or (heading.group(1) if heading else body.strip()[:20])
    finally:
        conn.close()


def worker(args, host, port, path, state, lock, deadline):
    interval = args.workers / float(args.rate)
    next_at = time.monotonic()
    while True:
        now = time.monotonic()
        with lock:
            if state["sent"] >= args.max_requests or now >= deadline or state["stop"]:
                return
            state["sent"] += 1
        try:
            status, version = one_request(host, port, path, args.timeout)
            ok = 200 <= status < 300
            reason = None if ok else "HTTP %d" % status
        except Exception as exc:  # every transport error counts as a failed request
            ok, version, reason = False, None, type(exc).__name__
        second = int(time.monotonic() - state["start"])
        with lock:
            if ok and state["first_answer"] is None:
                state["first_answer"] = round(time.monotonic() - state["start"], 2)
            if not ok:
                state["failed"] += 1
                if state["first_answer"] is None:
                    state["failed_before_first_answer"] += 1
                state["reasons"][reason] = state["reasons"].get(reason, 0) + 1
                if len(state["failures"]) < 50:
                    state["failures"].append({"t": round(time.monotonic() - state["start"], 2), "reason": reason})
            elif version:
                bucket = state["timeline"].setdefault(second, {})
                bucket[version] = bucket.get(version, 0) + 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080/version")
    parser.add_argument("--rate", type=float, default=25.0, help="requests per second (all workers)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds, at most 1800")
    parser.add_argument("--max-requests", type=int, default=50000)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--stop-file", help="stop as soon as this file exists")
    parser.add_argument("--out", help="write the JSON summary here instead of stdout")
    args = parser.parse_args()
    parts = urllib.parse.urlsplit(args.url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        parser.error("--url must point at 127.0.0.1 or localhost (loopback only)")
    duration = min(args.duration, 1800.0)
    state = {"sent": 0, "failed": 0, "failed_before_first_answer": 0, "first_answer": None, "reasons": {},
             "failures": [], "timeline": {}, "stop": False, "start": time.monotonic()}
    lock = threading.Lock()
    deadline = state["start"] + duration
    threads = [threading.Thread(target=worker, daemon=True,
                                args=(args, parts.hostname, parts.port or 80, parts.path or "/", state, lock, deadline))
               for dummy in range(args.workers)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        if args.stop_file and os.path.exists(args.stop_file):
            state["stop"] = True
        time.sleep(0.1)
    elapsed = time.monotonic() - state["start"]
    versions = {}
    for bucket in state["timeline"].values():
        for version, count in bucket.items():
            versions[version] = versions.get(version, 0) + count
    summary = {
        "url": args.url, "sent": state["sent"], "failed": state["failed"], "seconds": round(elapsed, 1),
        "failed_before_first_answer": state["failed_before_first_answer"],
        "failed_after_first_answer": state["failed"] - state["failed_before_first_answer"],
        "first_answer_at": state["first_answer"],
        "rate": round(state["sent"] / elapsed, 1) if elapsed else 0.0, "reasons": state["reasons"],
        "failures": state["failures"], "versions": versions,
        "timeline": [{"second": s, "versions": state["timeline"][s]} for s in sorted(state["timeline"])],
    }
    text = json.dumps(summary, indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    else:
        print(text)
    return 1 if state["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
