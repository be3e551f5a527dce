#!/usr/bin/env bash
# tests/copy-tree.sh [--collection] DEST: copy the checkout's files as a clone has them (tracked and new,
# not ignored; links kept as links) to DEST. With --collection, leave out the links that let a checkout
# find itself (collections/, playbooks/collections): they are not part of the collection.
set -euo pipefail
cd "$(dirname "$0")/.."
drop=('^$')
if [ "${1:-}" = "--collection" ]; then
  drop=('^collections/' '^playbooks/collections$')
  shift
fi
dest=${1:?usage: tests/copy-tree.sh [--collection] DEST}
mkdir -p "$dest"
git ls-files -co --exclude-standard -z | grep -zv "${drop[@]/#/-e}" | tar --null -T - -cf - | tar -C "$dest" -xf -
