#!/usr/bin/env bash
# Process load test on this machine, one run, same connections and duration for all:
#   (a) the app directly, (b) the whole gateway (session, route, forward) without the
#   per-request policy, (c) with it, (d) nginx proxy_pass with keep-alive to the app.
# Every server has one worker (one HTTP worker thread, one nginx worker process); wrk runs
# one thread. The four are measured in turn, ROUNDS times (a shared VM drifts by ±10 % over
# minutes: interleaving spreads that over all four), and the median of each column is
# reported; every round is printed too. Needs Debian's nginx and wrk (apt-get install nginx wrk).
# Usage: host/benches/proxy.sh [connections] [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${1:-50}
SECS=${2:-10}
ROUNDS=${3:-3}
# shellcheck source=host/benches/rig.sh
source host/benches/rig.sh
run() { # name port connections token
  local out rps p50 p99
  out=$(wrk -t1 -c"$3" -d"${SECS}s" --latency -H "Authorization: Bearer $4" "http://127.0.0.1:$2/" 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  if echo "$out" | grep -q "Non-2xx"; then echo "$1: non-2xx answers:"; echo "$out"; exit 1; fi
  printf "round %s: %-28s c=%-3s %10s req/s  p50 %8s  p99 %8s\n" "$round" "$1" "$3" "$rps" "$p50" "$p99"
  echo "$1|$3|$rps|$p50|$p99" >> "$work/results"
}
for c in "$CONNS" 1; do
  for round in $(seq "$ROUNDS"); do
    run "(a) direct" "$APP" "$c" "$TOKEN_PLAIN"
    run "(b) gateway, policy off" "$PLAIN" "$c" "$TOKEN_PLAIN"
    run "(c) gateway, policy on" "$POLICY" "$c" "$TOKEN_POLICY"
    run "(d) nginx proxy_pass keepalive" "$NGINX" "$c" "$TOKEN_PLAIN"
  done
done
# The medians, as the table in host/benches/README.md.
python3 - "$work/results" <<'PY'
import statistics, sys
def us(text):  # wrk prints 812.00us, 1.10ms or 2.01s
    for unit, factor in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise ValueError(text)
rows = {}
for line in open(sys.argv[1]):
    name, c, rps, p50, p99 = line.strip().split("|")
    rows.setdefault((name, c), []).append((float(rps), us(p50), us(p99)))
print("| target | c | req/s | p50 | p99 |")
print("|---|---|---|---|---|")
for (name, c), runs in rows.items():
    med = [statistics.median(col) for col in zip(*runs)]
    rps = f"{med[0]:,.0f}".replace(",", " ")
    print(f"| {name} | {c} | {rps} | {med[1]:.0f} µs | {med[2]:.0f} µs |")
PY
