#!/usr/bin/env bash
# System calls per proxied request: proxy.sh's rig (host/examples/proxy_bench.rs, release
# build) run natively, one keep-alive connection (keepalive_client.py) sending WARMUP
# requests, then `strace -c -f` attached to the whole rig (every thread: the HTTP workers,
# the policy epoch ticker, the app) while it sends N more, policy off then on. Prints
# strace's summary per target, and the calls per request of the ones issue 20 follows
# (futex: wake-ups of the epoch ticker; clock_nanosleep: its ticks; madvise and minor page
# faults: pooled instances replaced).
#
# Usage: host/benches/syscalls.sh [N] [WARMUP]   (defaults 5000, 500)
# BIN=<a proxy_bench binary> skips the build and measures that one. Needs strace.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-5000}
WARMUP=${2:-500}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
APP=$(free_port); PLAIN=$(free_port); POLICY=$(free_port)
work=$(mktemp -d)
if [ -n "${BIN:-}" ]; then
  cp "$BIN" "$work/proxy_bench"
else
  host/benches/example_bin.sh proxy_bench "$work/proxy_bench"
fi
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
RUST_LOG=warn "$work/proxy_bench" "$APP" "$PLAIN" "$POLICY" "$work" 2>"$work/rig.log" &
RIG=$!
pids+=("$RIG")
for _ in $(seq 600); do [ -s "$work/tokens" ] && break; sleep 0.1; done
[ -s "$work/tokens" ] || { cat "$work/rig.log" >&2; echo "the rig did not start" >&2; exit 1; }
TOKEN_PLAIN=$(sed -n 1p "$work/tokens"); TOKEN_POLICY=$(sed -n 2p "$work/tokens")

# measure <name> <file name> <port> <token>
measure() {
  local out="$work/$2.strace" faults="$work/$2.minflt"
  # Attach before the counted requests (strace says so on stderr once per thread), detach
  # after them: SIGINT makes it print the summary. Minor page faults of the whole rig
  # (/proc/<pid>/stat field 10, all threads) are read around the same requests.
  python3 host/benches/keepalive_client.py "$3" "$4" "$WARMUP" "$N" \
    "strace -c -f -e trace=all -o '$out' -p $RIG 2>'$work/attach.log' & echo \$! > '$work/strace.pid'; \
     for i in \$(seq 100); do grep -q attached '$work/attach.log' 2>/dev/null && break; sleep 0.05; done; sleep 0.5; \
     cut -d' ' -f10 /proc/$RIG/stat > '$faults'" \
    "cut -d' ' -f10 /proc/$RIG/stat >> '$faults'; sleep 0.2; kill -INT \$(cat '$work/strace.pid'); \
     while kill -0 \$(cat '$work/strace.pid') 2>/dev/null; do sleep 0.05; done"
  echo "## $1: $N requests"
  cat "$out"
  python3 - "$out" "$N" "$1" "$faults" <<'PY'
import sys
path, n, name, faults = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
calls = {}
for line in open(path):
    f = line.split()
    if len(f) >= 5 and f[-1] not in ("syscall", "total") and f[3].isdigit():
        calls[f[-1]] = int(f[3])
before, after = (int(x) for x in open(faults).read().split())
print(f"| {name} | " + " | ".join(f"{calls.get(c, 0) / n:.3f}" for c in
      ("futex", "clock_nanosleep", "epoll_wait", "recvfrom", "sendto", "writev", "madvise"))
      + f" | {(after - before) / n:.4f} |")
PY
  echo
}
echo "per request: | target | futex | clock_nanosleep | epoll_wait | recvfrom | sendto | writev | madvise | minor faults |"
measure "policy off" off "$PLAIN" "$TOKEN_PLAIN"
measure "policy on" on "$POLICY" "$TOKEN_POLICY"
