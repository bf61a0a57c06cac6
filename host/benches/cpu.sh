#!/usr/bin/env bash
# CPU per proxied request of the serving thread: the gateway's HTTP worker (policy off and
# on) against nginx's worker, from utime/stime in /proc/<pid>/task/<tid>/stat around a
# wrk run. More precise than req/s on a shared VM: it counts what one request costs the
# proxy, whatever else the machine is doing. The rig is proxy.sh's (host/examples/
# proxy_bench.rs, one HTTP worker; nginx with one worker). Needs nginx and wrk.
# Usage: host/benches/cpu.sh [connections] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${1:-50}
SECS=${2:-8}
# shellcheck source=host/benches/rig.sh
source host/benches/rig.sh
# The thread serving `port`: the busiest one of the rig during a short load on it.
busiest() { # port token
  local before after best= most=0 t d
  declare -A before
  for t in /proc/$RIG/task/*; do before[$t]=$(awk '{print $14+$15}' "$t/stat"); done
  wrk -t1 -c"$CONNS" -d2s -H "Authorization: Bearer $2" "http://127.0.0.1:$1/" >/dev/null
  for t in /proc/$RIG/task/*; do
    d=$(( $(awk '{print $14+$15}' "$t/stat") - ${before[$t]:-0} ))
    if [ "$d" -gt "$most" ]; then best=$t; most=$d; fi
  done
  echo "$best/stat"
}
measure() { # name stat-file port token
  local u0 s0 u1 s1 out n rps
  read -r u0 s0 < <(awk '{print $14, $15}' "$2")
  out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $4" "http://127.0.0.1:$3/")
  read -r u1 s1 < <(awk '{print $14, $15}' "$2")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  # utime/stime are in clock ticks (100 per second): ticks * 1e4 / requests = µs/request.
  python3 -c "print('| %-24s | %5.1f | %5.1f | %9s |' % ('$1', ($u1-$u0)*1e4/$n, ($s1-$s0)*1e4/$n, '$rps'))"
}
echo "| c=$CONNS | user µs/req | system µs/req | req/s |"
echo "|---|---|---|---|"
measure "gateway, policy off" "$(busiest "$PLAIN" "$TOKEN_PLAIN")" "$PLAIN" "$TOKEN_PLAIN"
measure "gateway, policy on" "$(busiest "$POLICY" "$TOKEN_POLICY")" "$POLICY" "$TOKEN_POLICY"
measure "nginx, one worker" "/proc/$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)/stat" "$NGINX" "$TOKEN_PLAIN"
