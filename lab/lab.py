"""The conveyor.deploy lab: real Debian hosts (systemd + sshd) in containers.

``lab.py up`` is idempotent: it builds the image if missing, starts
``LAB_HOSTS`` app hosts (default 4, up to 20), one HAProxy load balancer and
one artifact server, creates the ``deploy`` user (SSH key, sudo) on every host
and writes ``inventories/lab/hosts.yml``.  ``lab.py down`` removes every
container and the network.  Only the controller's loopback is published:
HAProxy on 127.0.0.1:8080 (stats on :8404, its Prometheus exporter on :8404/metrics),
artifacts on :8081 and each host's SSH on 127.0.0.1:2200+N. A Prometheus (Debian's package, run on the
controller) listens on 127.0.0.1:9095 and scrapes HAProxy.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
STATE = os.path.join(HERE, ".state")
KEY = os.path.join(STATE, "id_ed25519")
KNOWN_HOSTS = os.path.join(STATE, "known_hosts")
ARTIFACTS = os.path.join(STATE, "artifacts")
INVENTORY = os.path.join(ROOT, "inventories", "lab", "hosts.yml")
PREFIX = "conveyor-"
NETWORK = "conveyor-lab"
# The sample app's database (a SQLite file), on a volume every app host mounts.
DB_VOLUME, DB_PATH = "conveyor-lab-db", "/srv/lab-db"
IMAGE = os.environ.get("LAB_IMAGE", "conveyor-lab") + ":latest"
SSH_BASE = 2200
SYSTEMD_FLAGS = [
    "--cap-add", "SYS_ADMIN", "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
    "--stop-signal", "SIGRTMIN+3",
]
# The blocks the collection's loadbalancer role keeps in haproxy.cfg.
COLLECTION_BLOCK = re.compile(r"^# BEGIN conveyor\.deploy backend .*?^# END conveyor\.deploy backend [^\n]*\n", re.S | re.M)


def log(msg):
    print("lab: " + msg, flush=True)


def docker(*args, check=True, capture=True, stdin=None):
    proc = subprocess.run(["docker"] + list(args), input=stdin, text=True, check=False,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)
    if check and proc.returncode != 0:
        raise SystemExit("lab: docker %s failed: %s" % (" ".join(args[:3]), (proc.stderr or "").strip()))
    return (proc.stdout or "").strip()


def running(name):
    out = docker("inspect", "-f", "{{.State.Running}}", name, check=False)
    return out == "true"


def exists(name):
    return docker("inspect", "-f", "{{.Id}}", name, check=False) != ""


def lab_containers():
    out = docker("ps", "-a", "--filter", "label=conveyor.lab=1", "--format", "{{.Names}}")
    return [n for n in out.splitlines() if n]


def app_names(count):
    return ["app%02d" % i for i in range(1, count + 1)]


def ensure_key():
    os.makedirs(STATE, exist_ok=True)
    if not os.path.exists(KEY):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "conveyor-lab", "-f", KEY], check=True)
    os.chmod(KEY, 0o600)
    with open(KEY + ".pub", encoding="utf-8") as handle:
        return handle.read().strip()


def ensure_artifacts():
    mb = os.environ.get("LAB_ARTIFACT_MB", "1")
    marker = os.path.join(ARTIFACTS, ".mb")
    current = open(marker).read().strip() if os.path.exists(marker) else None
    source_mtime = max(os.path.getmtime(os.path.join(HERE, "app", name)) for name in ("app.py", "build_artifacts.py", "migrate.py"))
    fresh = current == mb and os.path.getmtime(marker) >= source_mtime
    if not fresh:
        subprocess.run([sys.executable, os.path.join(HERE, "app", "build_artifacts.py"),
                        "--out", ARTIFACTS, "--mb", mb], check=True, stdout=subprocess.DEVNULL)
        with open(marker, "w") as handle:
            handle.write(mb + "\n")
    log("artifacts (%s MiB filler) in %s" % (mb, os.path.relpath(ARTIFACTS, ROOT)))


def mounted(container, path):
    return path in docker("inspect", "-f", "{{range .Mounts}}{{.Destination}} {{end}}", container, check=False).split()


def published(container, ports):
    found = docker("inspect", "-f", "{{json .HostConfig.PortBindings}}", container, check=False)
    return all('"%s"' % port in found for port in ports)


def start_host(name, ssh_port, extra=(), mount=None, ports=()):
    """Start a lab host; ``mount`` (a path) must be one of its volumes and ``ports`` published, or it is started
    again with them."""
    container = PREFIX + name
    if running(container) and (mount is None or mounted(container, mount)) and published(container, ports):
        return False
    if exists(container):
        docker("rm", "-f", container)
    docker("run", "-d", "--name", container, "--hostname", name, "--label", "conveyor.lab=1",
           "--network", NETWORK, "--network-alias", name,
           "-p", "127.0.0.1:%d:22" % ssh_port, *extra, *SYSTEMD_FLAGS, IMAGE, "/sbin/init")
    return True


PROVISION = r"""
set -eu
for i in $(seq 1 100); do
  state=$(systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break;; esac
  sleep 0.2
done
id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash deploy
install -d -m 0700 -o deploy -g deploy /home/deploy/.ssh
printf '%s\n' "$LAB_PUBKEY" > /home/deploy/.ssh/authorized_keys
chown deploy:deploy /home/deploy/.ssh/authorized_keys
chmod 0600 /home/deploy/.ssh/authorized_keys
echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy
chmod 0440 /etc/sudoers.d/deploy
systemctl is-active --quiet ssh || systemctl start ssh
if [ -d /srv/lab-db ]; then chmod 1777 /srv/lab-db; fi
"""


def provision(name, pubkey):
    docker("exec", "-e", "LAB_PUBKEY=" + pubkey, "-i", PREFIX + name, "/bin/sh", "-s", stdin=PROVISION)


def haproxy_base():
    """The lab's part of haproxy.cfg (Molecule's prepare renders the same template); the app's frontend and
    backend are the collection's: configure_lb runs its loadbalancer role."""
    with open(os.path.join(HERE, "templates", "haproxy-base.cfg"), encoding="utf-8") as handle:
        return handle.read()


def write_lb_base():
    """Write the lab's base configuration when it differs, keeping the collection's blocks as they are."""
    container = PREFIX + "lb"
    current = docker("exec", container, "cat", "/etc/haproxy/haproxy.cfg", check=False)
    blocks = "".join(COLLECTION_BLOCK.findall(current + "\n"))
    if COLLECTION_BLOCK.sub("", current + "\n").strip() == haproxy_base().strip():
        return
    docker("exec", "-i", container, "sh", "-c", "cat > /etc/haproxy/haproxy.cfg",
           stdin=haproxy_base() + ("\n" + blocks if blocks else ""))
    if blocks:
        # A running HAProxy with the collection's blocks takes the new base at once (a new lab starts it later).
        docker("exec", container, "systemctl", "reload-or-restart", "haproxy", check=False)


def configure_lb():
    """The app's backend, as an operator configures theirs: the collection's playbook against the inventory."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"), ANSIBLE_FORCE_COLOR="0")
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run([binary, "-i", os.path.dirname(INVENTORY), os.path.join(ROOT, "playbooks", "loadbalancer.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit("lab: playbooks/loadbalancer.yml failed:\n%s" % (proc.stdout + proc.stderr)[-3000:])
    changed = "changed=0" not in [line for line in proc.stdout.splitlines() if line.startswith("lb01")][-1]
    log("HAProxy's backend %s by playbooks/loadbalancer.yml" % ("configured" if changed else "already configured"))


PROMETHEUS = os.path.join(STATE, "prometheus")
PROMETHEUS_ADDR = "127.0.0.1:9095"
PROMETHEUS_CONFIG = """# Written by lab/lab.py: the lab's Prometheus scrapes HAProxy's exporter (127.0.0.1:8404/metrics).
global:
  scrape_interval: 2s
  evaluation_interval: 5s
rule_files:
  - %(rules)s
scrape_configs:
  - job_name: haproxy
    static_configs:
      - targets: ["127.0.0.1:8404"]
"""


def prometheus_pid():
    try:
        with open(os.path.join(PROMETHEUS, "pid")) as handle:
            pid = int(handle.read().strip())
        os.kill(pid, 0)
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return pid if b"prometheus" in handle.read() else None
    except (OSError, ValueError):
        return None


def start_prometheus():
    """The lab's monitoring: Debian's prometheus on the controller (make bootstrap installs it), on 127.0.0.1:9095,
    scraping HAProxy every 2 s and loading the alerting rules the collection ships."""
    binary = "/usr/bin/prometheus"
    if not os.path.exists(binary):
        log("prometheus is not installed (make bootstrap installs it): the lab runs without monitoring")
        return
    os.makedirs(os.path.join(PROMETHEUS, "data"), exist_ok=True)
    config = PROMETHEUS_CONFIG % {"rules": os.path.join(ROOT, "roles", "loadbalancer", "files", "prometheus-alerts.yml")}
    path = os.path.join(PROMETHEUS, "prometheus.yml")
    old = open(path).read() if os.path.exists(path) else ""
    pid = prometheus_pid()
    if pid and old == config:
        return
    if pid:
        os.kill(pid, 15)
        time.sleep(1)
    with open(path, "w") as handle:
        handle.write(config)
    with open(os.path.join(PROMETHEUS, "prometheus.log"), "ab") as out:
        proc = subprocess.Popen([binary, "--config.file=" + path, "--web.listen-address=" + PROMETHEUS_ADDR,
                                 "--storage.tsdb.path=" + os.path.join(PROMETHEUS, "data"),
                                 "--storage.tsdb.retention.time=6h"],
                                stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(PROMETHEUS, "pid"), "w") as handle:
        handle.write(str(proc.pid))
    deadline = time.time() + 30
    while time.time() < deadline:
        ready = subprocess.run(["curl", "-sf", "http://%s/-/ready" % PROMETHEUS_ADDR], capture_output=True, check=False)
        if ready.returncode == 0:
            log("prometheus on %s (scrapes HAProxy every 2 s)" % PROMETHEUS_ADDR)
            return
        time.sleep(0.5)
    raise SystemExit("lab: prometheus did not start; see %s" % os.path.join(PROMETHEUS, "prometheus.log"))


def stop_prometheus():
    pid = prometheus_pid()
    if pid:
        os.kill(pid, 15)


def start_artifacts():
    container = PREFIX + "artifacts"
    source = docker("inspect", "-f", "{{range .Mounts}}{{.Source}}{{end}}", container, check=False)
    if running(container) and source == ARTIFACTS:
        return
    if exists(container):
        docker("rm", "-f", container)
    docker("run", "-d", "--name", container, "--hostname", "artifacts", "--label", "conveyor.lab=1",
           "--network", NETWORK, "--network-alias", "artifacts", "-p", "127.0.0.1:8081:8000",
           "-v", "%s:/srv/artifacts:ro" % ARTIFACTS, IMAGE,
           "python3", "-m", "http.server", "8000", "--directory", "/srv/artifacts")


def write_inventory(apps):
    lines = [
        "# Written by `make lab-up` (lab/lab.py); do not edit: rerun lab-up instead.",
        "all:",
        "  vars:",
        "    ansible_user: deploy",
        "    ansible_ssh_private_key_file: \"{{ inventory_dir }}/../../lab/.state/id_ed25519\"",
        # Host keys are checked here too, against the keys lab-up read from the containers it started.
        "    ansible_ssh_common_args: \"-o StrictHostKeyChecking=yes"
        " -o UserKnownHostsFile={{ inventory_dir }}/../../lab/.state/known_hosts -o LogLevel=ERROR\"",
        "  children:",
        "    lab:",
        "      children:",
        "        app:",
        "          hosts:",
    ]
    for index, name in enumerate(apps, start=1):
        lines.append("            %s: {ansible_host: 127.0.0.1, ansible_port: %d}" % (name, SSH_BASE + index))
    # A second application on the same machines (docs/several-apps.md): its own inventory names for the first two
    # hosts, so its variables (group_vars/other) never mix with the sample app's.
    lines += ["        other:", "          hosts:"]
    for index, name in enumerate(apps[:2], start=1):
        lines.append("            other-%s: {ansible_host: 127.0.0.1, ansible_port: %d, app_lb_address: %s}"
                     % (name, SSH_BASE + index, name))
    lines += [
        "        lb:",
        "          hosts:",
        "            lb01: {ansible_host: 127.0.0.1, ansible_port: %d}" % SSH_BASE,
        "",
    ]
    os.makedirs(os.path.dirname(INVENTORY), exist_ok=True)
    with open(INVENTORY, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def wait_ssh(ports, timeout=60):
    deadline = time.time() + timeout
    pending = set(ports)
    while pending and time.time() < deadline:
        for port in sorted(pending):
            proc = subprocess.run(
                ["ssh", "-i", KEY, "-p", str(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                 "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=3",
                 "deploy@127.0.0.1", "sudo", "-n", "true"], capture_output=True, check=False)
            if proc.returncode == 0:
                pending.discard(port)
        if pending:
            time.sleep(0.5)
    if pending:
        raise SystemExit("lab: SSH did not answer on ports %s within %ds" % (sorted(pending), timeout))


def pin_host_keys(ports):
    """Write lab/.state/known_hosts from the keys of the containers this lab just started.

    The lab's hosts are checked like any other (StrictHostKeyChecking=yes): this is their trust on first use,
    done by the tool that created them, rewritten at every lab-up (a rebuilt image brings new keys).
    """
    lines = []
    for port in ports:
        proc = subprocess.run(["ssh-keyscan", "-T", "5", "-t", "ed25519,ecdsa,rsa", "-p", str(port), "127.0.0.1"],
                              capture_output=True, text=True, check=False)
        found = [line for line in proc.stdout.splitlines() if line.strip() and not line.startswith("#")]
        if not found:
            raise SystemExit("lab: could not read the SSH host key on port %d: %s" % (port, proc.stderr.strip()))
        lines += found
    tmp = KNOWN_HOSTS + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, KNOWN_HOSTS)


def up(count):
    if not 1 <= count <= 20:
        raise SystemExit("lab: LAB_HOSTS must be between 1 and 20, got %d" % count)
    started = time.time()
    subprocess.run(["bash", os.path.join(HERE, "image", "build.sh")], check=True)
    pubkey = ensure_key()
    ensure_artifacts()
    if not docker("network", "ls", "-q", "--filter", "name=^%s$" % NETWORK):
        docker("network", "create", "--label", "conveyor.lab=1", NETWORK)
    apps = app_names(count)
    wanted = {PREFIX + n for n in apps + ["lb", "artifacts"]}
    for name in lab_containers():
        if name not in wanted:
            docker("rm", "-f", name)
            log("removed surplus %s" % name)
    start_artifacts()
    new = []
    # 8080: the sample app's frontend; 8082: the second app's (docs/several-apps.md); 8404: HAProxy's stats.
    if start_host("lb", SSH_BASE, ("-p", "127.0.0.1:8080:80", "-p", "127.0.0.1:8082:81", "-p", "127.0.0.1:8404:8404"),
                  ports=("80/tcp", "81/tcp", "8404/tcp")):
        new.append("lb")
    for index, name in enumerate(apps, start=1):
        # Every app host mounts one volume, standing for the database server a real fleet shares.
        if start_host(name, SSH_BASE + index, ("-v", "%s:%s" % (DB_VOLUME, DB_PATH)), mount=DB_PATH):
            new.append(name)
    for name in ["lb"] + apps:
        provision(name, pubkey)
    write_lb_base()
    write_inventory(apps)
    ports = [SSH_BASE] + [SSH_BASE + i for i in range(1, count + 1)]
    wait_ssh(ports)
    pin_host_keys(ports)
    configure_lb()
    start_prometheus()
    log("up: %d app hosts, lb, artifacts (%d started now) in %.1fs" % (count, len(new), time.time() - started))
    log("inventory: %s" % os.path.relpath(INVENTORY, ROOT))


def down():
    stop_prometheus()
    names = lab_containers()
    if names:
        docker("rm", "-f", *names)
    if docker("network", "ls", "-q", "--filter", "name=^%s$" % NETWORK):
        docker("network", "rm", NETWORK)
    if docker("volume", "ls", "-q", "--filter", "name=^%s$" % DB_VOLUME):
        docker("volume", "rm", DB_VOLUME)
    log("down: removed %d containers, the network and the database volume" % len(names))


def status():
    for name in sorted(lab_containers()):
        state = docker("inspect", "-f", "{{.State.Status}}", name, check=False)
        print("%-22s %s" % (name, state))
    print(json.dumps({"inventory": os.path.exists(INVENTORY)}))


def main():
    parser = argparse.ArgumentParser(description="conveyor.deploy lab")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--hosts", type=int, default=int(os.environ.get("LAB_HOSTS", "4")))
    args = parser.parse_args()
    if args.action == "up":
        up(args.hosts)
    elif args.action == "down":
        down()
    else:
        status()


if __name__ == "__main__":
    main()
