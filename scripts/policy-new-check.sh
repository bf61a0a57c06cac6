#!/usr/bin/env bash
# `grid-gateway policy new`, as a policy author would use it: scaffold a project per
# language and check that it builds and passes its own fixtures as generated.
#   Rust:        every world (pricing, payee, authorization): cargo test (native), then
#                cargo build --target wasm32-wasip2 with CARGO_TARGET_DIR=<target>/policy-new-check
#                (one directory for the three, so the SDK and serde compile once);
#   TypeScript:  pricing: npm install (links sdk/typescript), tsc, node --test, componentize;
#   Python:      pricing: pytest, componentize-py --stub-wasi;
# then `grid-gateway policy run` on each component with all its fixtures in one load (a
# TypeScript or Python component takes ~20 s to compile in a debug gateway), and every
# fixture must report `expect_matched: true`.
# The projects are made outside the checkout with --sdk-path, so they use the SDKs by
# absolute path; nothing is downloaded (the Rust project starts from the checkout's
# Cargo.lock, the TypeScript one links the SDK and uses its tools).
# Environment:
#   GRID_GATEWAY_BIN   the gateway binary (default: cargo build ${GRID_CARGO_SELECTION:--p grid-gateway})
#   SDK_PY_VENV        venv with componentize-py and pytest (default .tools/venv)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
venv=$(cd "${SDK_PY_VENV:-.tools/venv}" && pwd)
sdk_ts=sdk/typescript
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PYTHONDONTWRITEBYTECODE=1

for tool in "$venv/bin/componentize-py" "$venv/bin/python"; do
  if [ ! -x "$tool" ]; then
    echo "policy-new: $tool is missing (run scripts/bootstrap.sh, or set SDK_PY_VENV)" >&2
    exit 1
  fi
done

if [ -z "${GRID_GATEWAY_BIN:-}" ]; then
  echo "== policy-new: cargo build grid-gateway"
  # GRID_CARGO_SELECTION: see scripts/test.sh (one feature resolution for CI's builds).
  # shellcheck disable=SC2086
  cargo build -q ${GRID_CARGO_SELECTION:--p grid-gateway} --bin grid-gateway
  # A copy: a target directory shared by several checkouts can swap the binary under us.
  cp "$target/debug/grid-gateway" "$tmp/grid-gateway"
  GRID_GATEWAY_BIN="$tmp/grid-gateway"
fi
gateway=$GRID_GATEWAY_BIN

# The TypeScript SDK's tools and its compiled dist/ (scripts/sdk-ts.sh leaves both).
if [ ! -f "$sdk_ts/node_modules/.package-lock.json" ] || [ "$sdk_ts/package-lock.json" -nt "$sdk_ts/node_modules/.package-lock.json" ]; then
  echo "== policy-new: npm ci in $sdk_ts"
  (cd "$sdk_ts" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -f "$sdk_ts/dist/src/index.js" ]; then
  echo "== policy-new: tsc in $sdk_ts"
  (cd "$sdk_ts" && node_modules/.bin/tsc -p .)
fi

new() { # lang world name
  "$gateway" policy new --lang "$1" --world "$2" "$3" --dir "$tmp/$3" --sdk-path "$root" >/dev/null
}

# Runs every fixture of a project through the gateway; fails unless each one matched.
run_fixtures() { # world wasm project
  local world=$1 wasm=$2 dir=$3 out ran want
  out="$tmp/run.json"
  echo "== policy-new: $(basename "$dir"): grid-gateway policy run on its fixtures"
  # A generous deadline: this checks answers, not speed (a debug gateway on a busy CI machine
  # may take over the default 10 ms for an instance's first evaluation).
  if ! "$gateway" policy run --deadline-ms "${SDK_DEADLINE_MS:-2000}" --world "$world" --policy "$wasm" --settings "$dir/fixtures/settings.json" \
    --input "$dir/fixtures" >"$out" 2>&1; then
    cat "$out"
    echo "policy-new: $(basename "$dir"): the component's answers differ from its fixtures" >&2
    exit 1
  fi
  ran=$(grep -c '"expect_matched": true' "$out" || true)
  want=$(find "$dir/fixtures" -maxdepth 1 -name '*.json' ! -name settings.json | wc -l)
  if [ "$ran" -ne "$want" ] || [ "$want" -lt 3 ]; then
    cat "$out"
    echo "policy-new: $(basename "$dir"): $ran of $want fixture(s) matched through the gateway" >&2
    exit 1
  fi
  echo "policy-new: $(basename "$dir"): all $ran fixtures matched through the gateway"
}

rust_target="$target/policy-new-check"
for world in pricing payee authorization; do
  name="rust-$world"
  new rust "$world" "$name"
  echo "== policy-new: $name: cargo test, cargo build --target wasm32-wasip2"
  (cd "$tmp/$name" && CARGO_TARGET_DIR="$rust_target" cargo test -q --lib &&
    CARGO_TARGET_DIR="$rust_target" cargo build -q --target wasm32-wasip2)
  run_fixtures "$world" "$rust_target/wasm32-wasip2/debug/${name//-/_}.wasm" "$tmp/$name"
done

name=ts-pricing
new typescript pricing "$name"
echo "== policy-new: $name: npm install (a link to $sdk_ts), build, test, componentize"
(cd "$tmp/$name" && npm install --offline --no-audit --no-fund --loglevel=error >/dev/null &&
  npm run -s build && npm test && npm run -s componentize)
run_fixtures pricing "$tmp/$name/build/$name.wasm" "$tmp/$name"

name=py-pricing
new python pricing "$name"
echo "== policy-new: $name: pytest, componentize-py"
(cd "$tmp/$name" && "$venv/bin/python" -m pytest -q -p no:cacheprovider &&
  "$venv/bin/componentize-py" -q -d "$root/wit" -w pricing componentize --stub-wasi \
    -p . -p "$root/sdk/python" -o build/py_pricing.wasm py_pricing)
run_fixtures pricing "$tmp/$name/build/py_pricing.wasm" "$tmp/$name"

echo "policy-new: ok"
