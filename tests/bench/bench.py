"""`make bench`: conveyor's deploys and all-at-once rollbacks against a hand-written playbook on the same lab
(wall times, ratio per pair), task results and module executions per host, each deploy's floor, failed requests
through HAProxy, scale from 5 to 20 hosts, and the callbacks' cost. Prints figures; asserts nothing about speed."""
import json
import os
import statistics
import tempfile
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "collections"))
sys.path.insert(0, os.path.join(ROOT, "lab"))
from ansible_collections.conveyor.deploy.plugins.filter.rolling import batch_sizes  # noqa: E402
from loadcheck import Background  # noqa: E402
BIN = os.path.join(ROOT, ".venv", "bin")
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
           ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"), PATH=BIN + os.pathsep + os.environ["PATH"])
# Tasks that run on the controller only (no module shipped to a host).
CONTROLLER_ONLY = {"set_fact", "debug", "assert", "fail", "meta", "include_tasks", "include_role", "pause",
                   "set_stats", "validate_argument_spec"}


def lab(hosts):
    subprocess.run([os.path.join(BIN, "python"), "lab/lab.py", "up", "--hosts", str(hosts)], cwd=ROOT, env=ENV,
                   check=True, stdout=subprocess.DEVNULL)
    playbook("playbooks/environment.yml")


def playbook(name, *extra, json_output=False, env_extra=None, cost_file=None):
    env = dict(ENV, **(env_extra or {}))
    if json_output:
        env.update(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                   ANSIBLE_SHOW_CUSTOM_STATS="1")
    command = ["ansible-playbook"]
    if cost_file:
        # The same ansible-playbook, with timers on the conveyor.deploy callbacks (tests/bench/callback_cost.py).
        command = [os.path.join(BIN, "python"), os.path.join(ROOT, "tests", "bench", "callback_cost.py"), cost_file,
                   os.path.join(BIN, "ansible-playbook")]
    start = time.monotonic()
    proc = subprocess.run(command + ["-i", "inventories/lab", name] + list(extra), cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit("bench: %s %s failed:\n%s" % (name, " ".join(extra), proc.stdout[-3000:] + proc.stderr[-2000:]))
    return elapsed, (json.JSONDecoder().raw_decode(proc.stdout)[0] if json_output else None)


def module_executions(report):
    """Remote module executions per host; the HAProxy calls (delegated) count for the load balancer."""
    counts = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                name = (result.get("action") or task["task"].get("action", "")).split(".")[-1]
                if result.get("skipped") or name in CONTROLLER_ONLY:
                    continue
                target = "lb01" if name.startswith("haproxy_") else host
                counts[target] = counts.get(target, 0) + 1
    return counts


def task_results(report):
    """Task results per app host, skipped ones included (the recap's ok + skipped + failed)."""
    counts = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host in task["hosts"]:
                if host.startswith("app"):
                    counts[host] = counts.get(host, 0) + 1
    return counts


def spread(counts):
    values = sorted(counts.values())
    return "%d-%d" % (values[0], values[-1]) if values else "none"


def results_spread(counts):
    """Task results per app host: the run's first host apart, since it carries the run-level tasks (the plan, the
    checklist's report, the commit, the summary) and each batch's load-balancer steps land on a batch's first host."""
    hosts = sorted(counts)
    if len(hosts) < 2:
        return spread(counts)
    return "%s (the run's first host %d)" % (spread(dict((h, counts[h]) for h in hosts[1:])), counts[hosts[0]])


def floor(report, batches):
    """The deploy's physical floor as the run measured it: per batch, the slowest host's gate, summed."""
    summary = (report.get("global_custom_stats") or {}).get("conveyor_deploy") or {}
    rows = summary.get("hosts") or []
    sizes = batch_sizes(batches, len(rows))
    total, index = 0.0, 0
    for size in sizes:
        gates = [float(row["gate_s"]) for row in rows[index:index + size] if row.get("gate_s") not in (None, "")]
        total += max(gates) if gates else 0.0
        index += size
    return total


class Traffic(Background):
    """The bench's request loop through HAProxy: at least 100 rps from several clients, bounded."""

    RATE, WORKERS = 120, 8

    def __init__(self):
        super().__init__(rate=self.RATE, workers=self.WORKERS, duration=600, max_requests=80000)


def timed(kind, name, *extra):
    """One timed run under traffic: (seconds, json report, traffic summary)."""
    with Traffic() as traffic:
        elapsed, report = playbook(name, *extra, json_output=True)
    return dict(kind=kind, seconds=elapsed, report=report, traffic=traffic.summary)


def bench_against_naive(hosts=10, pairs=int(os.environ.get("BENCH_NAIVE_PAIRS", "3"))):
    """conveyor and tests/bench/naive*.yml alternately on the same hosts, artifact and ansible.cfg.

    Each pair deploys the same version both ways (batches of 2), in ABBA order, then switches both back all at
    once in the same order; the ratios are per pair, the figure is their median.
    """
    lab(hosts)
    playbook("tests/bench/naive_setup.yml")
    batches = '{"rolling_batches": [2], "rolling_bake_seconds": 0}'
    # New lab hosts serve nothing yet: the setup deploy may take them all out of a half-empty backend.
    playbook("deploy.yml", "-e", "app_version=1.0.0", "-e", batches, "-e", "rolling_min_healthy_percent=0")
    playbook("tests/bench/naive.yml", "-e", "naive_version=1.0.0", "-e", "naive_release=base")
    deploys, rollbacks = [], []
    for pair in range(pairs):
        target = ("2.0.0", "1.1.0")[pair % 2]
        release = "pair%d-%s" % (pair, target)
        runs = {"naive": lambda: timed("naive", "tests/bench/naive.yml", "-e", "naive_version=" + target,
                                       "-e", "naive_release=" + release),
                "conveyor": lambda: timed("conveyor", "deploy.yml", "-e", "app_version=" + target, "-e", batches)}
        backs = {"naive": lambda: timed("naive", "tests/bench/naive_rollback.yml", "-e", "naive_version=1.0.0",
                                        "-e", "naive_release=base"),
                 "conveyor": lambda: timed("conveyor", "playbooks/rollback.yml", "-e", "rollback_to=1.0.0",
                                           "-e", "rollback_reason=bench", "-e", '{"rollback_batches": ["100%"]}')}
        order = ("naive", "conveyor") if pair % 2 == 0 else ("conveyor", "naive")
        deploys.append(dict((kind, runs[kind]()) for kind in order))
        rollbacks.append(dict((kind, backs[kind]()) for kind in order))
    report_pairs("deploy 1.0.0 -> 2.0.0/1.1.0, %d hosts, batches of 2" % hosts, deploys, [2])
    report_pairs("rollback all at once,  %d hosts" % hosts, rollbacks, None)


def report_pairs(title, pairs, batches):
    ratios = [pair["conveyor"]["seconds"] / pair["naive"]["seconds"] for pair in pairs]
    walls = {kind: [pair[kind]["seconds"] for pair in pairs] for kind in ("conveyor", "naive")}
    print("%s: conveyor %s s, naive %s s; ratio per pair %s, median %.2fx" % (
        title, "/".join("%.1f" % w for w in walls["conveyor"]), "/".join("%.1f" % w for w in walls["naive"]),
        " ".join("%.2f" % r for r in ratios), statistics.median(ratios)))
    first = pairs[0]
    line = "  task results per app host: conveyor %s, naive %s; module executions per app host: conveyor %s" % (
        results_spread(task_results(first["conveyor"]["report"])), spread(task_results(first["naive"]["report"])),
        spread(dict((h, n) for h, n in module_executions(first["conveyor"]["report"]).items() if h.startswith("app"))))
    if batches:
        line += "; floor (sum of the batches' slowest gates) %s s" % "/".join(
            "%.1f" % floor(pair["conveyor"]["report"], batches) for pair in pairs)
    print(line)
    traffic = [pair["conveyor"]["traffic"] for pair in pairs]
    print("  requests through HAProxy during the conveyor runs: %s sent at %s rps, failed %s%s" % (
        "/".join(str(t["sent"]) for t in traffic), "/".join("%.0f" % t["rate"] for t in traffic),
        "/".join(str(t["failed"]) for t in traffic),
        "" if not any(t["failed"] for t in traffic) else " (%s)" % "; ".join(
            ", ".join("%s x%d" % item for item in sorted(t["reasons"].items())) for t in traffic if t["failed"])))


def bench_scale(sizes=(5, 20)):
    """The same deploy at rolling_batches ["25%"] on a small and a large fleet."""
    batches = '{"rolling_batches": ["25%"], "rolling_bake_seconds": 0}'
    walls = {}
    for hosts in sizes:
        lab(hosts)
        playbook("deploy.yml", "-e", "app_version=1.0.0", "-e", "rolling_force=true", "-e", batches,
                 "-e", "rolling_min_healthy_percent=0")
        run = timed("conveyor", "deploy.yml", "-e", "app_version=2.0.0", "-e", batches)
        walls[hosts] = run["seconds"]
        figures = (hosts, len(batch_sizes(["25%"], hosts)), run["seconds"], floor(run["report"], ["25%"]),
                   results_spread(task_results(run["report"])), run["traffic"]["failed"], run["traffic"]["sent"])
        print("deploy at 25 %%, %2d hosts (%d batches): %.1f s wall, floor %.1f s, task results per app host %s, "
              "failed requests %d of %d" % figures)
    print("scale: %d hosts take %.2fx the time of %d hosts (target <= 1.3x)" % (
        sizes[1], walls[sizes[1]] / walls[sizes[0]], sizes[0]))


def config_without_callbacks(directory):
    """The checkout's ansible.cfg without callbacks_enabled (an empty ANSIBLE_CALLBACKS_ENABLED crashes 2.19)."""
    lines = []
    for line in open(os.path.join(ROOT, "ansible.cfg")):
        if line.startswith("callbacks_enabled"):
            continue
        for relative in ("./collections", "./roles", "inventories/lab/vault-password.txt"):
            line = line.replace(relative, os.path.join(ROOT, relative))
        lines.append(line)
    path = os.path.join(directory, "ansible.cfg")
    with open(path, "w") as handle:
        handle.writelines(lines)
    return path


def bench_callbacks(hosts, pairs=int(os.environ.get("BENCH_PAIRS", "6"))):
    """The change log and notify callbacks' cost on the same deploy, two ways.

    A/B: the deploy with and without them, in pairs (ABBA order, after one warm-up run), as the median of
    the pairs' ratios; the spread of the ratios shows how much of that is the lab's run-to-run noise.
    Own time: what the callbacks themselves cost the controller in the runs with them (their hooks, the
    result copies Ansible makes for them, the notify thread's CPU, loading them), over the run's wall time.
    """
    directory = tempfile.mkdtemp(prefix="conveyor-bench-")
    hook = subprocess.Popen([sys.executable, "lab/webhook.py", "--out", os.path.join(directory, "posts.jsonl"),
                             "--port-file", os.path.join(directory, "port")], cwd=ROOT, stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    url = "http://127.0.0.1:%s/hook" % open(os.path.join(directory, "port")).read()
    modes = {"with": {"ANSIBLE_CALLBACKS_ENABLED": "conveyor.deploy.changelog,conveyor.deploy.notify",
                      "CONVEYOR_CHANGELOG_PATH": os.path.join(directory, "changelog.jsonl"),
                      "CONVEYOR_CHANGELOG_REPORT_DIR": os.path.join(directory, "reports"),
                      "CONVEYOR_NOTIFY_URL": url, "CONVEYOR_NOTIFY_SLACK_URL": url},
             "without": {"ANSIBLE_CONFIG": config_without_callbacks(directory)}}
    versions = ["1.0.0", "2.0.0"]
    costs = os.path.join(directory, "cost.json")
    runs = []
    order = ["without"] + [mode for pair in range(pairs) for mode in (("with", "without"), ("without", "with"))[pair % 2]]
    for index, mode in enumerate(order):
        elapsed, dummy = playbook("deploy.yml", "-e", "app_version=" + versions[index % 2], "-e", "rolling_force=true",
                                  "-e", '{"rolling_batches": ["25%"], "rolling_bake_seconds": 0}',
                                  env_extra=modes[mode], cost_file=costs)
        if index:
            runs.append((mode, elapsed, json.load(open(costs))))
    hook.terminate()
    ratios = []
    for pair in range(pairs):
        first, second = runs[2 * pair], runs[2 * pair + 1]
        with_run, without_run = (first, second) if first[0] == "with" else (second, first)
        ratios.append(with_run[1] / without_run[1] - 1)
    walls = {mode: statistics.median(run[1] for run in runs if run[0] == mode) for mode in modes}
    own = [run[2]["hooks_s"] + run[2]["copies_s"] + run[2]["thread_cpu_s"] for run in runs if run[0] == "with"]
    load = (statistics.median(run[2]["load_s"] for run in runs if run[0] == "with")
            - statistics.median(run[2]["load_s"] for run in runs if run[0] == "without"))
    own_s = statistics.median(own) + max(load, 0.0)
    posts = sum(1 for dummy in open(os.path.join(directory, "posts.jsonl")))
    print("callbacks (changelog + notify, %d posts), %2d hosts, %d pairs: wall %.1f s with, %.1f s without; "
          "A/B %+.1f %% (median of the pairs; pairs ranged %+.1f %% to %+.1f %%)"
          % (posts, hosts, pairs, walls["with"], walls["without"], 100 * statistics.median(ratios),
             100 * min(ratios), 100 * max(ratios)))
    memory = {mode: statistics.median(run[2]["controller_maxrss_mb"] for run in runs if run[0] == mode) for mode in modes}
    share = 100 * own_s / walls["with"]
    print("callbacks' own controller time: %.2f s per run = %.1f %% of the run (hooks, result copies, notify thread, "
          "loading); goal <= 3 %%; controller peak memory %+.1f MB" % (own_s, share, memory["with"] - memory["without"]))


def main():
    print("conveyor.deploy benchmarks on the lab (1 MiB artifacts; yardstick: tests/bench/naive.yml, what an operator "
          "writes by hand with ansible.builtin; traffic %d rps from %d clients during timed runs)"
          % (Traffic.RATE, Traffic.WORKERS))
    bench_against_naive(10)
    bench_callbacks(10)
    bench_scale()
    lab(int(os.environ.get("LAB_HOSTS", "4")))


if __name__ == "__main__":
    main()
