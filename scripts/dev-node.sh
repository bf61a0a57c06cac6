#!/usr/bin/env bash
# Brings up what the node can do today and shows it working. Run from a fresh clone:
#   scripts/dev-node.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "building the gateway (the reference policies are built to wasm32-wasip2 and embedded)"
cargo build -p grid-gateway --quiet
GW=target/debug/grid-gateway

step "the built-in policies load and validate their default settings"
for world in pricing payee authorization; do
  $GW policy check --world "$world" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(f"  {r[\"world\"]:<14} {r[\"name\"]:<28} sha256 {r[\"sha256\"][:16]}…  settings {r[\"settings\"]}")'
done

summarise() {
  python3 -c '
import json, sys
for r in json.load(sys.stdin):
    o = r["outcome"]
    name = r["fixture"].rsplit("/", 1)[-1]
    if "price" in o:
        verdict = "acceptable" if o["refusal"] is None else o["refusal"]["kind"] + ": " + o["refusal"]["reason"]
        line = f"price {o[\"price\"]:>9}  {verdict}"
    elif o.get("decision") == "grant":
        line = f"grant until {o[\"expires_at\"]} scopes {o[\"scopes\"]}"
    else:
        line = o["decision"] + (": " + o["reason"] if o["decision"] == "deny" else "")
    mark = "ok " if r["expect_matched"] else "BAD"
    print(f"  [{mark}] {name:<40} {line}")
'
}

for policy in pricing-linear payee-wallets authz-order-owner; do
  step "$policy on its fixtures (quote / payee check / session and request decisions)"
  $GW policy run --settings "policies/$policy/fixtures/settings.json" --input "policies/$policy/fixtures" | summarise
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

step "done"
echo "  Write your own policy: guest-sdk/README.md; evaluate it with: $GW policy run --policy <file.wasm> --input <fixtures>"
