#!/usr/bin/env bash
# A short run of the loader fuzz target (fuzz/fuzz_targets/load.rs), its corpus seeded from the
# conformance corpus. Fails if the fuzzer finds a crash. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
corpus=fuzz/corpus/load
mkdir -p "$corpus"
shared="$(cd .. && pwd)/shared/conformance"
if [ -d "$shared" ]; then
  find "$shared" -name '*.y*ml' -exec sh -c 'for f; do cp "$f" "'"$corpus"'/$(echo "$f" | sha1sum | cut -c1-16)"; done' sh {} +
fi
cp examples/*/compose.yaml "$corpus/" 2>/dev/null || true
# cargo-fuzz needs nightly-only flags; this machine has one stable toolchain, which accepts
# them with RUSTC_BOOTSTRAP=1. No sanitizer: we look for panics, and Rust is memory-safe here.
RUSTC_BOOTSTRAP=1 cargo fuzz run load --sanitizer none "$corpus" -- \
  -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 2>&1 | tail -n 12
echo "fuzz: ${seconds}s, no crash"
