#!/usr/bin/env bash
# ansible-test sanity --venv on a copy of the collection under an
# ansible_collections/conveyor/deploy path outside this repo (ansible-test
# needs that path, and a copy inside the repo would be git-ignored and skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
# CONVEYOR_SANITY_VENV: the virtualenv whose ansible-core runs the tests (the support matrix uses others).
venv=${CONVEYOR_SANITY_VENV:-$root/.venv}
work=${CONVEYOR_SANITY_DIR:-/tmp/conveyor-sanity}
dest="$work/ansible_collections/conveyor/deploy"
rm -rf "$work"
mkdir -p "$dest"
bash tests/copy-tree.sh --collection "$dest"

# ansible-test downloads a get-pip script from a host this network cannot reach;
# give it the offline stand-in under the name it looks for.
pip_version=$("$venv/bin/python" - <<'PY'
import inspect, re
import ansible_test._internal.python_requirements as m
print(re.search(r"pip='([0-9.]+)'", inspect.getsource(m)).group(1))
PY
)
mkdir -p "$HOME/.ansible/test/cache"
cp tests/sanity/get_pip_offline.py "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"

cd "$dest"
"$venv/bin/ansible-test" sanity --venv --python 3.11 "$@"
