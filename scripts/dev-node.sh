#!/usr/bin/env bash
# Brings up what the node can do today and shows it working: the policies, a local chain,
# a cluster (KUBECONFIG's, or a clearly labelled in-memory stand-in) and the gateway on them. Run from a fresh clone:
#   scripts/dev-node.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

command -v python3 >/dev/null || { echo "dev-node: python3 is needed to show results" >&2; exit 1; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "building the gateway (the reference policies are built to wasm32-wasip2 and embedded)"
cargo build -p grid-gateway -p grid-fake-cluster --quiet
GW=${CARGO_TARGET_DIR:-target}/debug/grid-gateway
FAKE=${CARGO_TARGET_DIR:-target}/debug/grid-fake-cluster

step "the built-in policies load and validate their default settings"
for world in pricing payee authorization; do
  $GW policy check --world "$world" | python3 scripts/show.py check
done

for policy in pricing-linear payee-wallets authz-order-owner; do
  step "$policy on its fixtures"
  $GW policy run --settings "policies/$policy/fixtures/settings.json" --input "policies/$policy/fixtures" | python3 scripts/show.py run
done

step "a policy that misbehaves is stopped, and the answer is a clean error"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/loop.json" <<'PY'
import json, sys
f = json.load(open("policies/pricing-linear/fixtures/accept-gpu-by-model.json"))
f["call"]["quote"]["request"]["resources"]["gpu_model"] = "loop"
del f["expect"]
json.dump(f, open(sys.argv[1], "w"))
PY
$GW policy run --policy "${CARGO_TARGET_DIR:-target}/guests/wasm32-wasip2/policy/hostile_policy.wasm" --input "$tmp/loop.json" 2>&1 | sed 's/^/  /' || true

step "a local chain: anvil with the Market contract deployed"
ANVIL=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ANVIL" --host 127.0.0.1 --port "$PORT" --silent &
ANVIL_PID=$!
trap 'kill $ANVIL_PID 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do
  curl -sf -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' \
    "http://127.0.0.1:$PORT" >/dev/null && break
  sleep 0.1
done
$GW chain deploy-dev --rpc "http://127.0.0.1:$PORT" --timeout-secs 30 > "$tmp/chain.toml"
sed 's/^/  /' "$tmp/chain.toml"

if [ -n "${KUBECONFIG:-}" ]; then
  step "the cluster: KUBECONFIG=$KUBECONFIG"
  CLUSTER_TOML=$(printf '[cluster]\nkubeconfig = "%s"\nentrance = "cluster_ip"\n' "$KUBECONFIG")
else
  step "the cluster: a DEVELOPMENT STAND-IN (grid-fake-cluster: an in-memory API server, nothing runs)"
  "$FAKE" --kubeconfig "$tmp/kubeconfig" --service-ip 127.0.0.1 --node cpu=8,memory=32Gi,storage=500Gi,gpu=0 > "$tmp/fake.url" &
  FAKE_PID=$!
  trap 'kill $FAKE_PID 2>/dev/null; kill $ANVIL_PID 2>/dev/null; rm -rf "$tmp"' EXIT
  for _ in $(seq 1 100); do [ -s "$tmp/kubeconfig" ] && break; sleep 0.1; done
  echo "  API server stand-in at $(cat "$tmp/fake.url"); set KUBECONFIG to use a real cluster instead"
  CLUSTER_TOML=$(printf '[cluster]\nkubeconfig = "%s"\nentrance = "cluster_ip"\n' "$tmp/kubeconfig")
fi

step "the gateway's server against that chain and cluster (grid-gateway serve)"
# anvil's default account 2 is the node wallet (public test key, never for a real network).
printf '%s' 0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a > "$tmp/node.key"
chmod 600 "$tmp/node.key"
GW_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
  printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s"\n' "$GW_PORT" "$tmp/data"
  printf '[auth]\ndomain = "127.0.0.1:%s"\n[session]\nsecure = false\n' "$GW_PORT"
  cat "$tmp/chain.toml"
  printf 'key_file = "%s"\n' "$tmp/node.key"
  echo "$CLUSTER_TOML"
} > "$tmp/gateway.toml"
$GW config check --config "$tmp/gateway.toml" | sed 's/^/  /'
RUST_LOG=warn $GW serve --config "$tmp/gateway.toml" &
GW_PID=$!
trap 'kill $GW_PID 2>/dev/null; kill ${FAKE_PID:-} 2>/dev/null; kill $ANVIL_PID 2>/dev/null; rm -rf "$tmp"' EXIT
URL="http://127.0.0.1:$GW_PORT"
for _ in $(seq 1 100); do curl -sf "$URL/_grid/healthz" >/dev/null && break; sleep 0.1; done
show() { printf '  %s\n    ' "$1"; curl -s "${@:2}"; echo; }
show "GET /_grid/readyz (store, policies, chain, cluster)" "$URL/_grid/readyz"
show "GET /_grid/v1/node (capacity from the cluster's nodes, policies)" "$URL/_grid/v1/node" | cut -c1-400
show "POST /_grid/v1/quote (inline spec, type 0 without an order)" -H 'content-type: application/json' \
  -d '{"resources":{"cpu":"2","memory":"4Gi","storage":"10Gi","gpu":0},"duration_secs":3600,"payment":"1"}' "$URL/_grid/v1/quote"
show "GET /greet?type=1&input=1 (no such order yet)" "$URL/greet?type=1&input=1"
show "GET /_grid/v1/auth/nonce (for a sign-in message, type 2)" "$URL/_grid/v1/auth/nonce"
show "POST /_grid/v1/apps without signing in (deploy needs a session)" -H 'content-type: application/json' \
  -d '{"order_id":"1","manifest_url":"http://169.254.169.254/latest/meta-data"}' "$URL/_grid/v1/apps"
show "GET /anything without signing in (Process: requests go to the caller's app)" "$URL/anything"
echo "  (the gateway on $URL and anvil on port $PORT stop when this script ends)"

step "done"
echo "  Write your own policy: guest-sdk/README.md; evaluate it with: $GW policy run --policy <file.wasm> --input <fixtures>"
