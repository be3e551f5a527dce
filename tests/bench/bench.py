"""`make bench`: wall times of deploys and all-at-once rollbacks on the lab, and module
executions per host per deploy. Prints figures; asserts nothing about speed."""
import json
import os
import statistics
import tempfile
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, ".venv", "bin")
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
           ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), PATH=BIN + os.pathsep + os.environ["PATH"])
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
        env.update(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
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


def bench_deploy(hosts):
    lab(hosts)
    batches = '{"rolling_batches": ["25%"], "rolling_bake_seconds": 0}'
    # New lab hosts serve nothing yet: the setup deploy may take them all out of a half-empty backend.
    playbook("deploy.yml", "-e", "app_version=1.0.0", "-e", "rolling_force=true", "-e", batches,
             "-e", "rolling_min_healthy_percent=0")
    elapsed, report = playbook("deploy.yml", "-e", "app_version=2.0.0", "-e", "rolling_force=true", "-e", batches,
                               json_output=True)
    counts = module_executions(report)
    apps = sorted(h for h in counts if h.startswith("app"))
    per_host = sorted(counts[h] for h in apps)
    print("deploy 1.0.0 -> 2.0.0, %2d hosts, serial 25%%: %6.1f s wall; module executions per app host: %s; "
          "on the load balancer: %d" % (hosts, elapsed, "-".join(str(n) for n in sorted(set(per_host))),
                                        counts.get("lb01", 0)))
    return elapsed


def bench_rollback(hosts):
    elapsed, dummy = playbook("playbooks/rollback.yml", "-e", "rollback_to=1.0.0", "-e", "rollback_reason=bench",
                              "-e", '{"rollback_batches": ["100%"]}')
    print("rollback all at once,      %2d hosts:            %6.1f s wall" % (hosts, elapsed))
    playbook("deploy.yml", "-e", "app_version=2.0.0", "-e", "rolling_force=true")


def config_without_callbacks(directory):
    """The checkout's ansible.cfg without callbacks_enabled (an empty ANSIBLE_CALLBACKS_ENABLED crashes 2.19)."""
    lines = []
    for line in open(os.path.join(ROOT, "ansible.cfg")):
        if line.startswith("callbacks_enabled"):
            continue
        for relative in ("./.collections", "./roles", "inventories/lab/vault-password.txt"):
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
    print("conveyor.deploy benchmarks on the lab (1 MiB artifacts; reference: ansistrano ~93 s for 10 hosts at 25 %)")
    for hosts in (4, 10):
        bench_deploy(hosts)
        bench_rollback(hosts)
    bench_callbacks(10)
    lab(int(os.environ.get("LAB_HOSTS", "4")))


if __name__ == "__main__":
    main()
