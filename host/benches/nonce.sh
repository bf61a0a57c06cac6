#!/usr/bin/env bash
# Sign-in under load on this machine: nonces/s over HTTP from CLIENTS keep-alive connections
# for SECS seconds, and login latency (p50/p99 of POST /_grid/v1/auth/login) idle and during
# the same nonce flood. The gateway is host/examples/nonce_bench.rs `serve` (what
# `grid-gateway serve` runs, no chain, no cluster, nonce limit off, a seeded active order so
# the reference policy grants sessions); the load client is its `load` mode.
# Usage: host/benches/nonce.sh [seconds] [clients] [logins]   (PROFILE=release for a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CLIENTS=${2:-8}
LOGINS=${3:-200}
PROFILE=${PROFILE:-debug}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
bin="$work/nonce_bench"
host/benches/example_bin.sh nonce_bench "$bin" "$PROFILE"
RUST_LOG=warn "$bin" serve "$port" "$work" &
gateway=$!
trap 'kill $gateway 2>/dev/null; wait $gateway 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 300); do [ -s "$work/ready" ] && break; kill -0 $gateway; sleep 0.1; done
[ -s "$work/ready" ] || { echo "the gateway did not start"; exit 1; }
echo "$PROFILE build, $(nproc) cores, gateway pid $gateway on 127.0.0.1:$port, data in $(df --output=source "$work" | tail -1)"
"$bin" load "$port" "$gateway" "$SECS" "$CLIENTS" "$LOGINS"
