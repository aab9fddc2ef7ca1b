#!/usr/bin/env bash
# The main job on the bundled example: build wharf, load the three-tier project, print its
# normalized model and its dependency graph (Graphviz renders it to examples/three-tier/graph.svg).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh graphviz
cargo build --release --quiet
wharf=target/release/wharf
cd examples/three-tier
"../../$wharf" config
"../../$wharf" graph > graph.dot
dot -Tsvg graph.dot -o graph.svg
"../../$wharf" graph --format mermaid
echo "graph written to examples/three-tier/graph.svg"
