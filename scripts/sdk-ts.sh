#!/usr/bin/env bash
# The TypeScript policy SDK (sdk/typescript), end to end: the generated WIT types match
# wit/, the SDK and its examples compile (tsc), their native tests pass (node --test, the
# examples running the fixtures of policies/pricing-linear and policies/authz-order-owner),
# then each example is built into a component (esbuild + componentize-js) and the same
# fixtures run through the gateway binary (`grid-gateway policy run`, which loads each as
# the gateway does: compile, world, imports, settings), and `policy check` refuses settings
# the policy's own validate-settings refuses. Each load compiles the ~12 MB component (tens
# of seconds in a debug build), so each is loaded as few times as that takes.
#   GRID_GATEWAY_BIN   the gateway binary to use (default: cargo build -p grid-gateway;
#                      scripts/lib/gateway.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/gateway.sh
. scripts/lib/gateway.sh
sdk=sdk/typescript

if [ ! -f "$sdk/node_modules/.package-lock.json" ] || [ "$sdk/package-lock.json" -nt "$sdk/node_modules/.package-lock.json" ]; then
  echo "sdk-ts: npm ci in $sdk"
  (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== sdk-ts: generated WIT types match wit/"
(cd "$sdk" && node scripts/gen-types.mjs --check)

echo "== sdk-ts: tsc"
rm -rf "$sdk/dist" "$sdk/build"
(cd "$sdk" && node_modules/.bin/tsc -p .)

echo "== sdk-ts: node --test (SDK helpers, examples on their fixtures)"
(cd "$sdk" && node --test dist/)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gateway_binary sdk-ts "$tmp"
gateway=$GRID_GATEWAY_BIN

# example world: each is built into a component, checked, and run on the Rust policy's fixtures.
for pair in pricing-linear:pricing authz-order-owner:authorization; do
  example=${pair%%:*}
  world=${pair#*:}
  wasm="$sdk/build/$example.wasm"
  fixtures="policies/$example/fixtures"
  echo "== sdk-ts: $example: componentize ($world world)"
  (cd "$sdk" && node scripts/componentize.mjs --world "$world" \
    --entry "dist/examples/$example/src/component.js" --out "build/$example.wasm")
  run_fixtures "sdk-ts: $example" "$world" "$wasm" "$fixtures"
done

# validate-settings through the component: settings the policy refuses are refused at load,
# with the policy's own message.
echo "== sdk-ts: pricing-linear: refused settings are refused at load, with the policy's message"
bad=$(mktemp)
echo '{"min_duration_secs": 10, "max_duration_secs": 5}' >"$bad"
if out=$("$gateway" policy check --world pricing --policy "$sdk/build/pricing-linear.wasm" --settings "$bad" 2>&1); then
  rm -f "$bad"
  echo "sdk-ts: settings with min above max were accepted: $out" >&2
  exit 1
fi
rm -f "$bad"
if ! grep -q 'min_duration_secs (10) is above max_duration_secs (5)' <<<"$out"; then
  echo "sdk-ts: the refusal does not carry the policy's message: $out" >&2
  exit 1
fi
echo "sdk-ts: refused: $(grep -o 'min_duration_secs (10) is above max_duration_secs (5)' <<<"$out")"
