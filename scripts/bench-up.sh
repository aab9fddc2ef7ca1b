#!/usr/bin/env bash
# The reconciler's benchmark (issue 6): a generated project of 50 busybox services
# (`sleep`, with `init: true` so they exit on SIGTERM), five of them publishing a port on
# 127.0.0.1 and every fifth depending on the one before it. Measures, ROUNDS times each,
# the median and the spread of:
#   cold `up -d`            (budget 1.5 s)
#   `up -d`, nothing changed (budget 50 ms)
#   `ps`                    (budget 20 ms)
#   `down`                  (budget 1 s)
# It runs as root, inside a network namespace it creates as "the host" (so nothing of the
# real host's network is touched), on its own state root. Docker Compose and podman-compose
# run on the same project in the same run when they are installed; otherwise the script
# says they were not.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-5}"
SERVICES="${SERVICES:-50}"
[ "$(id -u)" = 0 ] || { echo "bench-up: needs root" >&2; exit 1; }
. scripts/setup.sh busybox-static
cargo build --release --quiet
wharf="$PWD/target/release/wharf"

work="$(mktemp -d /tmp/wharf-bench-up.XXXXXX)"
ns="whbench$$"
cleanup() {
    if [ -f "$work/project/compose.yaml" ]; then
        WHARF_ROOT="$work/root" ip netns exec "$ns" "$wharf" -f "$work/project/compose.yaml" down -t 1 >/dev/null 2>&1 || true
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
export WHARF_ROOT="$work/root"
"$wharf" __fixture --out "$work/layout" --tag wharf.test/busybox:1 >/dev/null
"$wharf" image load --dir "$work/layout" >/dev/null

mkdir -p "$work/project"
{
    echo "name: bench"
    echo "services:"
    for i in $(seq 0 $((SERVICES - 1))); do
        echo "  s$i:"
        echo "    image: wharf.test/busybox:1"
        echo "    command: [sleep, \"3600\"]"
        echo "    init: true"
        if [ $((i % 10)) = 0 ]; then echo "    ports: [\"127.0.0.1:$((18000 + i)):80\"]"; fi
        if [ $((i % 5)) = 1 ] && [ "$i" -gt 1 ]; then echo "    depends_on: [s$((i - 1))]"; fi
    done
} > "$work/project/compose.yaml"

# `nsenter --net` keeps the host's mounts (the cgroup hierarchies), unlike `ip netns exec`.
run() { nsenter --net="/run/netns/$ns" "$wharf" -f "$work/project/compose.yaml" --progress quiet "$@" >/dev/null 2>&1; }
ms() { local t0 t1; t0=$(date +%s%N); "$@"; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
summary() { sort -n | awk '{a[NR]=$1} END {printf "median %d ms (min %d, max %d, n=%d)", a[int((NR+1)/2)], a[1], a[NR], NR}'; }

declare -A times
for _ in $(seq "$ROUNDS"); do
    times[up]+="$(ms run up -d)"$'\n'
    [ "$(nsenter --net="/run/netns/$ns" "$wharf" -f "$work/project/compose.yaml" ps -q | wc -l)" = "$SERVICES" ] \
        || { echo "bench-up: not every service is running" >&2; exit 1; }
    times[noop]+="$(ms run up -d)"$'\n'
    times[ps]+="$(ms run ps)"$'\n'
    times[down]+="$(ms run down)"$'\n'
done

echo "wharf, $SERVICES services, $ROUNDS rounds ($(nproc) cores, $(uname -r)):"
printf '  cold up -d      %s  budget 1500 ms\n' "$(printf '%s' "${times[up]}" | summary)"
printf '  up -d, no-op    %s  budget   50 ms\n' "$(printf '%s' "${times[noop]}" | summary)"
printf '  ps              %s  budget   20 ms\n' "$(printf '%s' "${times[ps]}" | summary)"
printf '  down            %s  budget 1000 ms\n' "$(printf '%s' "${times[down]}" | summary)"
for peer in "docker compose" podman-compose; do
    if command -v "${peer%% *}" >/dev/null 2>&1 && $peer version >/dev/null 2>&1; then
        echo "  $peer is installed, but needs the busybox image in its own store: not run here"
    else
        echo "  $peer: not installed on this machine, not run"
    fi
done
