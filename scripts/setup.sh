#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (run as root): the system packages wharf's
# commands and tests use, and a Rust toolchain check. Sourced by example.sh and test.sh.
set -euo pipefail

need_pkgs=()
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  # The machine's toolchain comes from rustup under ~/.cargo.
  if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; else
    echo "cargo not found: install a Rust toolchain (rustup) first" >&2; exit 1; fi
fi
