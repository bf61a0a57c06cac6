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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
APP=$(free_port); PLAIN=$(free_port); POLICY=$(free_port); NGINX=$(free_port)
cargo build --release -q -p grid-gateway --example proxy_bench
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
work=$(mktemp -d)
RUST_LOG=warn "$target_dir/release/examples/proxy_bench" "$APP" "$PLAIN" "$POLICY" "$work" &
RIG=$!
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$APP; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -c "$work/nginx.conf"
trap 'kill $RIG 2>/dev/null; nginx -c "$work/nginx.conf" -s stop 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/tokens" ] && break; sleep 0.1; done
TOKEN_PLAIN=$(sed -n 1p "$work/tokens"); TOKEN_POLICY=$(sed -n 2p "$work/tokens")
sleep 0.5
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
