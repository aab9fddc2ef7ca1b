#!/usr/bin/env bash
# The main job on the bundled example: build wharf, build the busybox test image and load it
# into a state root, then load the three-tier project, print its normalized model and its
# dependency graph (Graphviz renders it to examples/three-tier/graph.svg). `wharf up` takes
# over here once the runtime exists.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh graphviz busybox-static
cargo build --release --quiet
wharf="$PWD/target/release/wharf"
export WHARF_ROOT="${WHARF_ROOT:-$PWD/target/example-state}"
layout="$(mktemp -d)"
trap 'rm -rf "$layout"' EXIT
"$wharf" __fixture --out "$layout/busybox" --tag wharf.test/busybox:1 >/dev/null
"$wharf" image load --dir "$layout/busybox"
"$wharf" image ls
cd examples/three-tier
export IMAGE=wharf.test/busybox:1
"$wharf" config
"$wharf" graph > graph.dot
dot -Tsvg graph.dot -o graph.svg
"$wharf" graph --format mermaid
echo "graph written to examples/three-tier/graph.svg"
