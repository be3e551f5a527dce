"""End-to-end tests against the lab: real hosts over SSH behind a real HAProxy.

The session fixture brings the lab up (idempotent) and configures the hosts with
the environment playbook; each test drives ansible-playbook as an operator would,
with a bounded request loop through 127.0.0.1:8080 where traffic matters.
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "lab"))
from loadcheck import Background  # noqa: E402  pylint: disable=wrong-import-position
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
INVENTORY = os.path.join(ROOT, "inventories", "lab")
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
           ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"), PYTHONUNBUFFERED="1",
           PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))


class Result(object):
    def __init__(self, rc, output):
        self.rc = rc
        self.output = output

    def recap(self):
        """{host: {ok, changed, failed, ...}} from the play recap."""
        hosts = {}
        for line in self.output.splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[1] == ":" and "ok=" in line:
                hosts[parts[0]] = {k: int(v) for k, v in (p.split("=") for p in parts[2:])}
        return hosts


def run(args, timeout=600, env=None):
    proc = subprocess.run(args, cwd=ROOT, env=dict(ENV, **(env or {})), capture_output=True, text=True, timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    log = os.path.join(ROOT, "build", "e2e.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a") as handle:
        handle.write("\n$ %s\n%s\n" % (" ".join(args), output))
    return Result(proc.returncode, output)


def playbook(name, *extra, env=None):
    return run(["ansible-playbook", "-i", INVENTORY, name] + list(extra), env=env)


def on_host(host, command):
    """Run a command in a lab container (inspection only, as a person with docker would)."""
    return subprocess.run(["docker", "exec", "conveyor-" + host, "sh", "-c", command],
                          capture_output=True, text=True, check=False).stdout.strip()


def app_hosts():
    with open(os.path.join(INVENTORY, "hosts.yml")) as handle:
        return [match.group(1) for match in (re.match(r"^\s+(app\d+):", line) for line in handle) if match]


def live_versions():
    return {host: on_host(host, "cat /opt/sample/current/VERSION 2>/dev/null") for host in app_hosts()}


HAPROXY_STATE = ("import socket; s = socket.socket(socket.AF_UNIX); s.connect('/run/haproxy/admin.sock'); "
                 "s.sendall(b'show servers state sample\\n'); print(s.makefile().read())")


def lb_servers():
    """{server: (operational state, administrative state)} of the sample backend, from HAProxy's runtime API
    (administrative 0 is in service; 8 is drained by the runtime API, 1 is in maintenance)."""
    lines = subprocess.run(["docker", "exec", "conveyor-lb", "python3", "-c", HAPROXY_STATE], capture_output=True,
                           text=True, check=False).stdout.splitlines()
    return {line.split()[3]: (line.split()[5], line.split()[6]) for line in lines
            if line[:1].isdigit() and len(line.split()) > 6}


def locks():
    """{host: the deploy lock's content}, for the hosts where one is held."""
    found = {host: on_host(host, "cat /opt/sample/.conveyor/deploy.lock 2>/dev/null") for host in app_hosts()}
    return {host: text for host, text in found.items() if text}


def serves(host):
    """What the host's app answers on /health, from inside the host ("" when it does not answer)."""
    return on_host(host, "python3 -c \"import urllib.request; "
                         "print(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3).status)\" 2>/dev/null")


def releases(host):
    """Every manifest on the host, parsed."""
    return _parse_manifests(on_host(host, "cat /opt/sample/releases/*/.conveyor-release.json 2>/dev/null"))


def _parse_manifests(text):
    decoder = json.JSONDecoder()
    found, index = [], 0
    while True:
        while index < len(text) and text[index] in " \n\t":
            index += 1
        if index >= len(text):
            return found
        obj, index = decoder.raw_decode(text, index)
        found.append(obj)


class Traffic(Background):
    """A bounded request loop (lab/loadcheck.py) through the load balancer: 100 rps from 6 clients."""

    def __init__(self, url=None):
        super().__init__(rate=100, workers=6, duration=600, max_requests=60000, url=url)

    def __exit__(self, *exc):
        super().__exit__(*exc)
        print("traffic: sent %(sent)d, failed %(failed)d in %(seconds)ss, versions %(versions)s, reasons %(reasons)s"
              % self.summary)


class Webhook(object):
    """lab/webhook.py on a free loopback port: what the notify callback posted, as a list."""

    def __init__(self, directory):
        self.out = os.path.join(directory, "webhooks.jsonl")
        port_file = os.path.join(directory, "webhook.port")
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "lab", "webhook.py"), "--out", self.out,
                                      "--port-file", port_file], stdout=subprocess.DEVNULL)
        for dummy in range(100):
            if os.path.exists(port_file) and open(port_file).read():
                break
            time.sleep(0.05)
        self.url = "http://127.0.0.1:%s" % open(port_file).read()

    def received(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as handle:
            return [json.loads(line) for line in handle]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def webhook(tmp_path):
    receiver = Webhook(str(tmp_path))
    yield receiver
    receiver.close()


@pytest.fixture(scope="session", autouse=True)
def lab():
    subprocess.run([os.path.join(VENV_BIN, "python"), os.path.join(ROOT, "lab", "lab.py"), "up"], cwd=ROOT,
                   env=ENV, check=True)
    result = playbook("playbooks/environment.yml")
    assert result.rc == 0, result.output[-3000:]
    return app_hosts()
