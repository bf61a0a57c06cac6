# Sourced by proxy.sh and cpu.sh (from the repository's root): builds and starts the load
# rig (host/examples/proxy_bench.rs: the app on $APP, a gateway without the per-request
# policy on $PLAIN and one with it on $POLICY, one HTTP worker each) and nginx (one worker,
# proxy_pass with keep-alive to the app) on $NGINX; sets $work, $RIG (the rig's pid),
# $TOKEN_PLAIN and $TOKEN_POLICY (the seeded sessions' bearer tokens); stops all on exit.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
APP=$(free_port); PLAIN=$(free_port); POLICY=$(free_port); NGINX=$(free_port)
work=$(mktemp -d)
# RIG_BIN=<a proxy_bench binary> runs that one (a copy kept to compare versions) instead of
# building this worktree's.
if [ -n "${RIG_BIN:-}" ]; then
  cp "$RIG_BIN" "$work/proxy_bench"
else
  host/benches/example_bin.sh proxy_bench "$work/proxy_bench"
fi
RUST_LOG=${RIG_LOG:-warn} "$work/proxy_bench" "$APP" "$PLAIN" "$POLICY" "$work" &
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
