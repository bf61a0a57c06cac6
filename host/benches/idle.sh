#!/usr/bin/env bash
# CPU and memory of an idle gateway (issue 22 item 2): `grid-gateway serve` with no chain
# and no cluster, left alone for N seconds, once without a policy directory and once with
# one holding a component and a settings file. CPU is utime+stime of the whole process
# (/proc/PID/stat, all threads) over the idle window, as % of one core; RSS is VmRSS at
# its end. The first WARMUP seconds after the node answers are not counted (start-up
# compiles the policies).
# Usage: host/benches/idle.sh [seconds] [binary]
#   binary: default $CARGO_TARGET_DIR/debug/grid-gateway (build it first:
#   cargo build -p grid-gateway); IDLE_WASM: the component to put in the policy directory
#   (default: the pricing-linear guest host/build.rs built).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${2:-$TARGET/debug/grid-gateway}
WARMUP=${WARMUP:-5}
[ -x "$BIN" ] || { echo "idle: no binary at $BIN (cargo build -p grid-gateway)" >&2; exit 1; }
WASM=${IDLE_WASM:-$(ls -t "$TARGET"/guests*/wasm32-wasip2/policy/pricing_linear.wasm 2>/dev/null | head -1)}
[ -f "$WASM" ] || { echo "idle: no pricing-linear component (set IDLE_WASM)" >&2; exit 1; }
TICK=$(getconf CLK_TCK)
work=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run() { # name [policy-dir]
  local name=$1 dir=${2:-} port conf t0 t1 rss
  port=$(free_port)
  conf=$work/$name.toml
  {
    printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s/%s-data"\n' "$port" "$work" "$name"
    printf '[auth]\ndomain = "127.0.0.1:%s"\nchain_id = 31337\n[session]\nsecure = false\n' "$port"
    [ -n "$dir" ] && printf '[policy]\ndir = "%s"\n' "$dir"
  } > "$conf"
  "$BIN" config check --config "$conf" > /dev/null
  RUST_LOG=warn "$BIN" serve --config "$conf" > "$work/$name.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/_grid/healthz" > /dev/null && break
    sleep 0.1
  done
  curl -fs "http://127.0.0.1:$port/_grid/healthz" > /dev/null || { cat "$work/$name.log" >&2; exit 1; }
  sleep "$WARMUP"
  t0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  sleep "$SECS"
  t1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  python3 -c "print('| %-44s | %6.3f %% | %5.1f MB | %d ticks in %d s |' % ('$name', ($t1-$t0)/$TICK/$SECS*100, $rss/1024, $t1-$t0, $SECS))"
}

echo "idle $SECS s after ${WARMUP} s of warm-up; $BIN; CLK_TCK $TICK" >&2
echo "| gateway, idle | CPU (% of a core) | RSS | raw |"
echo "|---|---|---|---|"
run "no policy directory"
mkdir -p "$work/policies"
cp "$WASM" "$work/policies/pricing.wasm"
cp policies/pricing-linear/fixtures/settings.json "$work/policies/pricing.settings.json"
run "policy dir: pricing.wasm + pricing.settings.json" "$work/policies"
