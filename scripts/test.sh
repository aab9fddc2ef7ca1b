#!/usr/bin/env bash
# The whole test suite: unit, snapshot, property, conformance and CLI tests, then a short
# fuzz run of the loader. Root-only tests run for real as root and say loudly when skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh busybox-static docker-registry skopeo openssl nftables
cargo test --all-targets --quiet 2>&1
bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
