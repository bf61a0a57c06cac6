#!/usr/bin/env bash
# HTTPS side by side, one run (issue 17's benchmark): the gateway's HTTPS listener and nginx
# (`ssl` + `proxy_pass` with keep-alive upstream), in front of the same loopback app, with
# the same self-signed certificate (ECDSA P-256, made here by openssl), the same key
# exchange groups (X25519, then P-256) and each side's default TLS 1.3 suites (the client,
# OpenSSL, picks: TLS_AES_256_GCM_SHA384 on both), one worker each (`http.workers = 1`,
# `worker_processes 1`). The gateway is proxy.sh's rig (host/examples/proxy_bench.rs), its
# policy-off gateway given an HTTPS listener by GRID_BENCH_TLS; the request path behind TLS
# is the whole gateway's (session by bearer token, route, wire fast path, forwarder), while
# nginx only forwards, as in proxy.sh. Measured, in turn, ROUNDS times, the median reported:
#   keep-alive  wrk -t1 -c<connections> over HTTPS: req/s, p50, p99; and the same at c=1;
#   handshakes  wrk -t1 -c<connections> -H 'Connection: close': one new TLS connection per
#               request; req/s = handshakes/s. wrk keeps the session of its last connection
#               and offers it: these are resumed handshakes (TLS 1.3 PSK with X25519, no
#               certificate signature), as a returning browser makes; the probe below counts
#               them through nginx's $ssl_session_reused;
#   s_time      `openssl s_time -new` for TLS 1.3 and TLS 1.2: full handshakes (no session
#               offered, ECDSA signature, no request), one at a time, so client and
#               server CPU and the loopback round trips are all in it: a comparison of the
#               two servers with the same client, not either server's ceiling.
# Before measuring it prints what each server negotiates with OpenSSL (TLS 1.3 and 1.2:
# group, suite, and whether a second connection resumes the first one's session).
# The numbers of one run, and where the time goes, are in host/benches/README.md.
# Needs Debian's nginx (nginx-light has the ssl module), wrk and openssl.
# Usage: host/benches/tls.sh [connections] [seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${1:-50}
SECS=${2:-10}
ROUNDS=${3:-3}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
certs=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$certs/key.pem" -out "$certs/cert.pem" 2>/dev/null
GW_TLS=$(free_port); NGINX_TLS=$(free_port); NGINX_PROBE=$(free_port)
export GRID_BENCH_TLS="$GW_TLS,$certs/cert.pem,$certs/key.pem"
# wrk sends the address as SNI, which rustls logs as a warning per handshake: keep the
# gateway's log out of the handshake rate.
export RIG_LOG="warn,rustls=error"
# shellcheck source=host/benches/rig.sh
source host/benches/rig.sh
cat > "$work/nginx-tls.conf" <<CONF
worker_processes 1;
pid $work/nginx-tls.pid;
error_log $work/error-tls.log;
events { worker_connections 4096; }
http {
  access_log off;
  log_format probe '\$ssl_protocol \$ssl_cipher \$ssl_curve reused=\$ssl_session_reused';
  upstream app { server 127.0.0.1:$APP; keepalive 64; }
  ssl_certificate $certs/cert.pem;
  ssl_certificate_key $certs/key.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ecdh_curve X25519:prime256v1;
  ssl_session_cache shared:tls:10m;
  server {
    listen 127.0.0.1:$NGINX_TLS ssl;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  # The same server with an access log, only to check what the clients negotiate.
  server {
    listen 127.0.0.1:$NGINX_PROBE ssl;
    access_log $work/probe.log probe;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -c "$work/nginx-tls.conf"
trap 'kill $RIG 2>/dev/null; nginx -c "$work/nginx.conf" -s stop 2>/dev/null; nginx -c "$work/nginx-tls.conf" -s stop 2>/dev/null; rm -rf "$work" "$certs"' EXIT
for _ in $(seq 50); do curl -skf -o /dev/null -H "Authorization: Bearer $TOKEN_PLAIN" "https://127.0.0.1:$GW_TLS/" && break; sleep 0.1; done

# What wrk negotiates, and whether it resumes sessions between connections.
wrk -t1 -c1 -d1s -H 'Connection: close' "https://127.0.0.1:$NGINX_PROBE/" >/dev/null
echo "wrk, Connection: close, against nginx: $(sort "$work/probe.log" | uniq -c | sort -rn | head -3 | tr -s ' ' | paste -sd ';')"
# What each server negotiates with OpenSSL, per version, and whether it resumes: a second
# connection offers the first one's session (a TLS 1.3 ticket arrives after the handshake,
# hence the pause before s_client's input ends).
negotiated() { # port
  local v session
  session=$(mktemp -p "$certs")
  for v in tls1_3 tls1_2; do
    sleep 0.3 | openssl s_client -"$v" -connect "127.0.0.1:$1" -sess_out "$session" 2>/dev/null |
      grep -E '^(New|Server Temp Key)' | paste -sd ' ' | tr '\n' ' ' || true
    sleep 0.3 | openssl s_client -"$v" -connect "127.0.0.1:$1" -sess_in "$session" 2>/dev/null |
      grep -oE '^(New|Reused)' | sed 's/^/then /; s/$/; /' | tr -d '\n' || true
  done
}
echo "gateway: $(negotiated "$GW_TLS")"
echo "nginx:   $(negotiated "$NGINX_TLS")"

us() { # wrk prints 812.00us, 1.10ms or 2.01s
  python3 -c 'import sys; t=sys.argv[1]
for u, f in (("us", 1), ("ms", 1e3), ("s", 1e6)):
    if t.endswith(u): print(float(t[:-len(u)]) * f); break' "$1"
}
wrk_run() { # label name port connections [extra wrk args]
  local label=$1 name=$2 port=$3 conns=$4 out rps p50 p99
  shift 4
  out=$(wrk -t1 -c"$conns" -d"${SECS}s" --latency "$@" -H "Authorization: Bearer $TOKEN_PLAIN" "https://127.0.0.1:$port/" 2>&1)
  if echo "$out" | grep -qE "Non-2xx|Socket errors"; then echo "$label $name: errors:"; echo "$out"; fi
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(us "$(echo "$out" | awk '$1=="50%" {print $2}')")
  p99=$(us "$(echo "$out" | awk '$1=="99%" {print $2}')")
  printf "round %s: %-34s %-8s c=%-3s %10s req/s  p50 %8.0f µs  p99 %8.0f µs\n" "$round" "$label" "$name" "$conns" "$rps" "$p50" "$p99"
  echo "$label|$name|$conns|$rps|$p50|$p99" >> "$work/tls-results"
}
stime_run() { # version name port
  local out n started took
  started=$(date +%s%N)
  out=$(openssl s_time -connect "127.0.0.1:$3" -new "-$1" -time "$SECS" 2>&1)
  took=$(( $(date +%s%N) - started ))
  # s_time's own "real seconds" are whole seconds: the command's wall time is finer.
  n=$(echo "$out" | awk -v ns="$took" '/connections in .* real seconds/ {print $1 / (ns / 1e9)}' | tail -1)
  printf "round %s: %-34s %-8s %10.0f handshakes/s\n" "$round" "s_time -new -$1" "$2" "$n"
  echo "s_time -new -$1|$2|1|$n|0|0" >> "$work/tls-results"
}
for round in $(seq "$ROUNDS"); do
  for target in "gateway $GW_TLS" "nginx $NGINX_TLS"; do
    read -r name port <<<"$target"
    wrk_run "HTTPS keep-alive" "$name" "$port" "$CONNS"
    wrk_run "HTTPS keep-alive" "$name" "$port" 1
    wrk_run "new TLS connection per request" "$name" "$port" "$CONNS" -H 'Connection: close'
    stime_run tls1_3 "$name" "$port"
    stime_run tls1_2 "$name" "$port"
  done
done
# The medians, as the table in host/benches/README.md.
python3 - "$work/tls-results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, name, c, rps, p50, p99 = line.strip().split("|")
    rows.setdefault((label, c), {}).setdefault(name, []).append((float(rps), float(p50), float(p99)))
print("| run | c | gateway req/s | nginx req/s | gateway / nginx | gateway p50 / p99 | nginx p50 / p99 |")
print("|---|---|---|---|---|---|---|")
for (label, c), by in rows.items():
    med = {n: [statistics.median(col) for col in zip(*runs)] for n, runs in by.items()}
    g, n = med["gateway"], med["nginx"]
    lat = lambda m: f"{m[1]:.0f} µs / {m[2]:.0f} µs" if m[1] else "—"
    print(f"| {label} | {c} | {g[0]:,.0f} | {n[0]:,.0f} | {g[0] / n[0]:.2f} | {lat(g)} | {lat(n)} |".replace(",", " "))
PY
