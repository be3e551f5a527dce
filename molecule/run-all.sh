#!/usr/bin/env bash
# Run every Molecule scenario under molecule/ in turn (full test sequence each),
# and fail when any fails or a verify step ran no test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$PWD/.collections" NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0
scenarios=${MOLECULE_SCENARIOS:-$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)}
mkdir -p build/molecule
failed=()
for scenario in $scenarios; do
  log="build/molecule/$scenario.log"
  start=$(date +%s)
  if .venv/bin/molecule test -s "$scenario" >"$log" 2>&1 && grep -Eq '=+ [0-9]+ passed' "$log"; then
    summary=$(grep -Eo '[0-9]+ passed[^=]*' "$log" | tail -n 1)
    echo "molecule $scenario: ok ($summary) in $(( $(date +%s) - start ))s"
  else
    echo "molecule $scenario: FAILED in $(( $(date +%s) - start ))s; last lines of $log:"
    tail -n 60 "$log"
    failed+=("$scenario")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "molecule: failed scenarios: ${failed[*]}"
  exit 1
fi
