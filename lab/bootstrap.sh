#!/usr/bin/env bash
# Everything `make test` and `make demo` need on a fresh Debian machine, idempotently:
# Debian packages, a running Docker engine, the lab image, the virtualenv; the
# collection link is committed. Each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'bootstrap: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Debian packages (docker.io brings dockerd; the docker CLI may already be on PATH).
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
# Headless Chromium renders the change log's HTML report in the end-to-end tests.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The lab's monitoring (lab/lab.py start_prometheus) and promtool, which checks the shipped alerting rules.
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. The Docker engine: nothing starts it on these machines, so start it in the background.
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd"
  as_root sh -c 'nohup dockerd >/var/log/conveyor-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -n 20 /var/log/conveyor-dockerd.log >&2; echo "dockerd did not start" >&2; exit 1; }
fi

# 3. The lab image (debootstrap + docker import; reused when present).
bash lab/image/build.sh

# 4. The virtualenv, rebuilt when the pinned requirements change.
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating .venv from requirements-dev.txt"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

# 5. Ansible finds this checkout as conveyor.deploy through the committed link
#    collections/ansible_collections/conveyor/deploy -> ../../.. (a checkout made before it was committed
#    had an untracked .collections/ instead: remove it).
rm -rf .collections
[ -L collections/ansible_collections/conveyor/deploy ] || { say "collections/ansible_collections/conveyor/deploy, the link to this checkout, is missing: git checkout -- collections"; exit 1; }
say "ready"
