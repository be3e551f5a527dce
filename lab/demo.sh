#!/usr/bin/env bash
# `make demo`: the lab is up (make lab-up ran first); configure it, show the fleet, then deploy
# 1.0.0, 2.0.0, the broken 6.6.6 and a canary of the erroring 5.0.0 while a request loop runs through HAProxy,
# and roll back.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg" ANSIBLE_FORCE_COLOR=0 \
  ANSIBLE_COLLECTIONS_PATH="$PWD/collections"
logs=build/demo
mkdir -p "$logs"
inv=inventories/lab

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# Print the per-host table a playbook's summary task showed.
table() { awk -v title="$2" 'index($0, title){on=1; next} on && /^        "/{gsub(/^ +"|",?$/, ""); gsub(/\\"/, "\""); print "    " $0} on && /^}/{exit}' "$1"; }
run() {  # run NAME ARGS...: a playbook run logged to build/demo/NAME.log
  local name=$1; shift
  local start=$SECONDS
  ansible-playbook -i "$inv" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  printf '    (%ss, exit code %s, full output in %s/%s.log)\n' "$((SECONDS - start))" "$rc" "$logs" "$name"
  return $rc
}

say "The fleet: real hosts over SSH as 'deploy', become root with sudo"
ansible -i "$inv" all -b -m ansible.builtin.command -a 'id -un' -o 2>/dev/null | sed 's/^/    /'

say "Configure the app hosts with the environment role"
run environment playbooks/environment.yml && grep -A8 'PLAY RECAP' "$logs/environment.log" | sed 's/^/    /'

say "HAProxy on 127.0.0.1:8080"
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/version)
if [ "$code" = 200 ]; then
  echo "    answers $(curl -s http://127.0.0.1:8080/version) (an earlier demo's release is live)"
else
  echo "    answers HTTP $code: no backend serves yet, nothing of the app is preinstalled on the lab"
fi

say "Traffic: 60 requests/s through 127.0.0.1:8080 for the rest of the demo"
rm -f "$logs/stop"
python3 lab/loadcheck.py --rate 60 --workers 6 --duration 900 --stop-file "$logs/stop" --out "$logs/traffic.json" &
loader=$!
sleep 1

say "Deploy 1.0.0"
run deploy-1.0.0 deploy.yml -e app_version=1.0.0; table "$logs/deploy-1.0.0.log" "Show the version on each host"
say "Deploy 2.0.0 (batches of 1, 25 %, 50 %; each host drained, switched, gated, re-enabled)"
run deploy-2.0.0 deploy.yml -e app_version=2.0.0; table "$logs/deploy-2.0.0.log" "Show the version on each host"
say "Deploy the broken 6.6.6 (its /health answers 500): the first host is switched back before it rejoins"
run deploy-6.6.6 deploy.yml -e app_version=6.6.6; table "$logs/deploy-6.6.6.log" "Show the version on each host"
say "Canary: 5.0.0 answers /health but fails 5 % of its pages; app01 serves it at half weight for 15 s"
run deploy-5.0.0-canary deploy.yml -e app_version=5.0.0 -e rolling_canary=true -e rolling_canary_weight=50 \
  -e rolling_canary_seconds=15
grep -E '^(Canary:|Batch 1 of|Recovery batch)' "$logs/deploy-5.0.0-canary.log" | sed 's/^/    /'
echo "    (docs/progressive-delivery.md: the analysis, its thresholds, the watch, Prometheus)"
say "Roll back by hand to 1.0.0 (rolling, with the same drain and gate)"
run rollback playbooks/rollback.yml -e rollback_to=1.0.0 -e rollback_reason="demo"
table "$logs/rollback.log" "Show the version on each host, before and after"
say "And forward again to 2.0.0"
run deploy-2.0.0-again deploy.yml -e app_version=2.0.0 -e rolling_force=true
table "$logs/deploy-2.0.0-again.log" "Show the version on each host"

touch "$logs/stop"; wait "$loader"
say "Traffic during all of it"
python3 - "$logs/traffic.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
before, after = s["failed_before_first_answer"], s["failed_after_first_answer"]
if s["first_answer_at"] is None:
    print("    sent %d requests in %.0f s: none succeeded, failed %d %s" % (s["sent"], s["seconds"], s["failed"], s["reasons"]))
else:
    print("    sent %d requests in %.0f s; failed once a backend served: %d %s"
          % (s["sent"], s["seconds"], after, s["reasons"] if after else ""))
if before and s["first_answer_at"] is not None:
    print("    (before that, %d requests in the first %.1f s failed: HAProxy answers 503 while no backend serves,"
          " and nothing was deployed yet; not failures of a deploy)" % (before, s["first_answer_at"]))
if s["reasons"].get("HTTP 500"):
    print("    (the HTTP 500 answers are the canary's: 5.0.0 fails one page in 20 while app01 serves it, and the"
          " analysis stops it)")
print("    versions answered: " + ", ".join("%s x%d" % kv for kv in sorted(s["versions"].items())))
PY

say "Live verification of the fleet"
run verify playbooks/verify.yml
table "$logs/verify.log" "load balancer's table"

say "The change log: one hash-chained record per run (docs/changelog.md)"
python3 tools/conveyor-changelog verify build/conveyor/changelog.jsonl | sed 's/^/    /'
python3 tools/conveyor-changelog history build/conveyor/changelog.jsonl -o build/conveyor/CHANGELOG.md 2>/dev/null
grep '^## ' build/conveyor/CHANGELOG.md | head -8 | sed 's/^## /    /'

say "Where to look"
echo "    change log:         build/conveyor/changelog.jsonl (tools/conveyor-changelog verify|history|report|show)"
echo "    history:            build/conveyor/CHANGELOG.md"
echo "    last run's report:  build/conveyor/reports/latest.html (one page per run, with its timeline)"
echo "    per-host history:   docker exec conveyor-app01 cat /opt/sample/.conveyor/history.jsonl"
echo "    releases and state: ansible -i $inv app -b -m conveyor.deploy.release_info -a app_root=/opt/sample"
echo "    HAProxy stats:      http://127.0.0.1:8404/stats"
echo "    playbook output:    $logs/"
echo "    make lab-down removes the lab."
