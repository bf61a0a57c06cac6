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
# shellcheck source=scripts/lib/gateway.sh
. scripts/lib/gateway.sh
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

gateway_binary policy-new "$tmp"
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

# Every fixture of a project through the gateway (at least three: what `policy new` writes).
project_fixtures() { # world wasm project
  run_fixtures "policy-new: $(basename "$3")" "$1" "$2" "$3/fixtures" 3
}

rust_target="$target/policy-new-check"
for world in pricing payee authorization; do
  name="rust-$world"
  new rust "$world" "$name"
  echo "== policy-new: $name: cargo test, cargo build --target wasm32-wasip2"
  (cd "$tmp/$name" && CARGO_TARGET_DIR="$rust_target" cargo test -q --lib &&
    CARGO_TARGET_DIR="$rust_target" cargo build -q --target wasm32-wasip2)
  project_fixtures "$world" "$rust_target/wasm32-wasip2/debug/${name//-/_}.wasm" "$tmp/$name"
done

name=ts-pricing
new typescript pricing "$name"
echo "== policy-new: $name: npm install (a link to $sdk_ts), build, test, componentize"
(cd "$tmp/$name" && npm install --offline --no-audit --no-fund --loglevel=error >/dev/null &&
  npm run -s build && npm test && npm run -s componentize)
project_fixtures pricing "$tmp/$name/build/$name.wasm" "$tmp/$name"

name=py-pricing
new python pricing "$name"
echo "== policy-new: $name: pytest, componentize-py"
(cd "$tmp/$name" && "$venv/bin/python" -m pytest -q -p no:cacheprovider &&
  "$venv/bin/componentize-py" -q -d "$root/wit" -w pricing componentize --stub-wasi \
    -p . -p "$root/sdk/python" -o build/py_pricing.wasm py_pricing)
project_fixtures pricing "$tmp/$name/build/py_pricing.wasm" "$tmp/$name"

echo "policy-new: ok"
