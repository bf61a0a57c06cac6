#!/usr/bin/env bash
# Brings up what the node can do today and shows it working. Run from a fresh clone:
#   scripts/dev-node.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

command -v python3 >/dev/null || { echo "dev-node: python3 is needed to show results" >&2; exit 1; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "building the gateway (the reference policies are built to wasm32-wasip2 and embedded)"
cargo build -p grid-gateway --quiet
GW=target/debug/grid-gateway

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
$GW policy run --policy target/guests/wasm32-wasip2/policy/hostile_policy.wasm --input "$tmp/loop.json" 2>&1 | sed 's/^/  /' || true

step "a local chain: anvil with the Market contract deployed"
ANVIL=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ANVIL" --host 127.0.0.1 --port "$PORT" --silent &
ANVIL_PID=$!
trap 'kill $ANVIL_PID 2>/dev/null; rm -rf "$tmp"' EXIT
$GW chain deploy-dev --rpc "http://127.0.0.1:$PORT" --timeout-secs 30 | sed 's/^/  /'
echo "  (anvil on port $PORT stops when this script ends; the gateway's server comes next)"

step "done"
echo "  Write your own policy: guest-sdk/README.md; evaluate it with: $GW policy run --policy <file.wasm> --input <fixtures>"
