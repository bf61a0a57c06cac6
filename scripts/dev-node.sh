#!/usr/bin/env bash
# One command, from a fresh clone, to a complete local provider node doing its job:
#   - installs what is missing (scripts/bootstrap.sh) and builds;
#   - shows the reference policies loading and running on their fixtures;
#   - starts a dev chain (anvil) with the Market deployed;
#   - a cluster: KUBECONFIG's when set, else a clearly labelled DEVELOPMENT STAND-IN (the
#     fake API server the tests use) whose Services point at the example app run locally;
#   - starts the gateway with the reference policies, watching .dev-node/policies (which
#     holds only the payee policy's settings: the dev payee);
#   - runs the walkthrough client (examples/walkthrough): order, quote, accept, sign in,
#     deploy, call the app, extend, cancel;
#   - leaves the node running with its URLs printed, until Ctrl-C.
#
#   scripts/dev-node.sh          # stays up
#   scripts/dev-node.sh --exit   # stops after the walkthrough, with its exit status (CI)
#   scripts/dev-node.sh --exit --api-check   # and then schemathesis on its API (CI)
set -euo pipefail
cd "$(dirname "$0")/.."

STAY=1
API_CHECK=0
for arg in "$@"; do
  case "$arg" in
    --exit) STAY=0 ;;
    --api-check) API_CHECK=1 ;;
    *) echo "usage: scripts/dev-node.sh [--exit] [--api-check]" >&2; exit 2 ;;
  esac
done

scripts/bootstrap.sh
command -v python3 >/dev/null || { echo "dev-node: python3 is needed (example app, file server)" >&2; exit 1; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 150); do curl -sf "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "dev-node: $* did not come up" >&2; return 1; }

# Everything the node keeps (store, policies, keys, logs) lives here; a new run starts clean.
STATE=${DEV_NODE_DIR:-.dev-node}
rm -rf "$STATE"
mkdir -p "$STATE/policies" "$STATE/www" "$STATE/logs"
STATE=$(cd "$STATE" && pwd)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

step "building the gateway, the cluster stand-in and the walkthrough client"
echo "  (the reference policies are built to wasm32-wasip2 and embedded in the gateway)"
# GRID_CARGO_SELECTION (set by scripts/test.sh) builds with the test run's feature
# resolution, so CI compiles the dependencies once instead of once per selection.
# shellcheck disable=SC2086
cargo build --quiet ${GRID_CARGO_SELECTION:--p grid-gateway -p grid-fake-cluster -p grid-walkthrough} \
  --bin grid-gateway --bin grid-fake-cluster --bin grid-walkthrough
BIN=${CARGO_TARGET_DIR:-target}/debug
GW=$BIN/grid-gateway

step "the built-in policies load and validate their default settings"
for world in pricing payee authorization; do
  $GW policy check --world "$world" | python3 scripts/show.py check
done
for policy in pricing-linear payee-wallets authz-order-owner; do
  step "$policy on its fixtures (grid-gateway policy run)"
  $GW policy run --settings "policies/$policy/fixtures/settings.json" --input "policies/$policy/fixtures" | python3 scripts/show.py run
done

step "a local chain: anvil with the Market and a test token deployed"
RPC_PORT=$(free_port)
node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil --host 127.0.0.1 --port "$RPC_PORT" --silent &
PIDS+=($!)
RPC="http://127.0.0.1:$RPC_PORT"
wait_http -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$RPC"
$GW chain deploy-dev --rpc "$RPC" --timeout-secs 30 > "$STATE/chain.toml"
sed 's/^/  /' "$STATE/chain.toml"

# The example app's port: on the stand-in, Services get the address 127.0.0.1, so the
# entrance of the app's Service (this port) is the app started below.
APP_PORT=$(free_port)
python3 examples/hello-app/manifest.py --port "$APP_PORT" > "$STATE/www/hello.yaml"
if [ -n "${KUBECONFIG:-}" ]; then
  step "the cluster: KUBECONFIG=$KUBECONFIG"
  echo "  the app runs in your cluster; the gateway reaches it at its Service's cluster IP, so"
  echo "  run this where cluster IPs are routable (or call it from inside the cluster)"
  KUBE=$KUBECONFIG
else
  step "the cluster: a DEVELOPMENT STAND-IN (grid-fake-cluster: an in-memory API server; nothing runs in it)"
  "$BIN/grid-fake-cluster" --kubeconfig "$STATE/kubeconfig" --service-ip 127.0.0.1 \
    --node cpu=8,memory=32Gi,storage=500Gi,gpu=0 > "$STATE/fake.url" 2> "$STATE/logs/fake-cluster.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do [ -s "$STATE/kubeconfig" ] && break; sleep 0.1; done
  echo "  API server stand-in at $(cat "$STATE/fake.url"); set KUBECONFIG to use a real cluster instead"
  echo "  its Services point at 127.0.0.1, where the example app runs locally on port $APP_PORT:"
  python3 examples/hello-app/app.py --bind 127.0.0.1 --port "$APP_PORT" > "$STATE/logs/hello-app.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$APP_PORT/"
  echo "  python3 examples/hello-app/app.py --port $APP_PORT (log: $STATE/logs/hello-app.log)"
  KUBE=$STATE/kubeconfig
fi

# The manifest is served from loopback, which the gateway refuses to fetch unless told:
# [cluster.fetch] allow_cidrs below is for this dev node only.
FILES_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$STATE/www" "$FILES_PORT" > "$STATE/logs/files.log" 2>&1 &
PIDS+=($!)
MANIFEST_URL="http://127.0.0.1:$FILES_PORT/hello.yaml"
wait_http "$MANIFEST_URL"

step "the gateway (grid-gateway serve) on that chain and cluster, with the reference policies"
# anvil's default accounts (public test keys, never for a real network): 2 is the node
# wallet, 3 the payee the payee policy accepts, 1 the walkthrough's user.
printf '%s' 0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a > "$STATE/node.key"
chmod 600 "$STATE/node.key"
PAYEE=0x90F79bf6EB2c4f870365E785982E1f101E93b906
printf '{"payees":["%s"],"max_order_age_secs":3600,"max_clock_skew_secs":600}\n' "$PAYEE" > "$STATE/policies/payee.settings.json"
GW_PORT=$(free_port)
URL="http://127.0.0.1:$GW_PORT"
{
  printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s/data"\n' "$GW_PORT" "$STATE"
  printf '[auth]\ndomain = "127.0.0.1:%s"\n[session]\nsecure = false\n' "$GW_PORT"
  printf '[policy]\ndir = "%s/policies"\n' "$STATE"
  cat "$STATE/chain.toml"
  printf 'key_file = "%s/node.key"\n' "$STATE"
  printf '[cluster]\nkubeconfig = "%s"\nentrance = "cluster_ip"\n' "$KUBE"
  printf '[cluster.fetch]\nallow_cidrs = ["127.0.0.1/32"]\n'
} > "$STATE/gateway.toml"
$GW config check --config "$STATE/gateway.toml" | sed 's/^/  /'
RUST_LOG=${RUST_LOG:-info} $GW serve --config "$STATE/gateway.toml" > "$STATE/logs/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)
wait_http "$URL/_grid/healthz" || { tail -20 "$STATE/logs/gateway.log" >&2; exit 1; }
echo "  $URL (log: $STATE/logs/gateway.log)"

step "the walkthrough: a user's whole journey (examples/walkthrough, one HTTP call or transaction per step)"
# With --api-check the walkthrough stays signed in and leaves its token for the check.
WALK_ARGS=()
if [ "$API_CHECK" = 1 ]; then WALK_ARGS=(--session-out "$STATE/session.token"); fi
"$BIN/grid-walkthrough" --gateway "$URL" --rpc "$RPC" --payee "$PAYEE" --manifest-url "$MANIFEST_URL" "${WALK_ARGS[@]}" || {
  echo "dev-node: the walkthrough failed; the gateway's last log lines ($STATE/logs/gateway.log):" >&2
  tail -30 "$STATE/logs/gateway.log" >&2
  exit 1
}

if [ "$API_CHECK" = 1 ]; then
  step "the API against its OpenAPI document (scripts/api-check.sh: schemathesis)"
  echo "  unauthenticated, then as the walkthrough's user (its session token)"
  { scripts/api-check.sh "$URL" && scripts/api-check.sh "$URL" "$(cat "$STATE/session.token")"; } || {
    echo "dev-node: the API check failed; the gateway's last log lines ($STATE/logs/gateway.log):" >&2
    tail -30 "$STATE/logs/gateway.log" >&2
    exit 1
  }
fi

step "the node is up"
cat <<INFO
  gateway      $URL   (API: $URL/_grid/openapi.json, metrics: $URL/_grid/metrics)
  chain        $RPC   (anvil; Market and token in $STATE/chain.toml)
  cluster      $KUBE
  example app  $MANIFEST_URL
  config       $STATE/gateway.toml
  policies     $STATE/policies   (drop a pricing.wasm here and the next quote uses it)
  logs         $STATE/logs/
  again:       $BIN/grid-walkthrough --gateway $URL --rpc $RPC --payee $PAYEE --manifest-url $MANIFEST_URL
INFO
if [ "$STAY" = 1 ]; then
  echo "  Ctrl-C stops everything."
  wait "$GW_PID"
fi
