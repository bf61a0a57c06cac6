#!/usr/bin/env bash
# The Python policy SDK (sdk/python), as CI runs it from scripts/test.sh:
#   1. the committed bindings in sdk/python/grid_policy/_wit match what componentize-py
#      generates from wit/ (regenerate them as sdk/python/README.md says when this fails);
#   2. pytest: the SDK's helpers, and each example's logic and fixtures, natively;
#   3. each example built into a component with componentize-py (--stub-wasi: it imports
#      only grid:policy);
#   4. `grid-gateway policy run` on each component with every fixture of the Rust original
#      (policies/<name>/fixtures) and its settings: it loads the component exactly as
#      `policy check` does (compile, world, imports, validate-settings), then evaluates each
#      fixture; every one must report `expect_matched: true`. One load per component, since
#      compiling an 18 MB Python component takes about 20 s.
# Environment:
#   SDK_PY_VENV   venv holding componentize-py and pytest (default .tools/venv, which
#                 scripts/bootstrap.sh fills)
#   GRID_GATEWAY_BIN  the gateway binary (default: `cargo build -p grid-gateway`'s)
#   SDK_PY_OUT    where the components are written (default: a temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/gateway.sh
. scripts/lib/gateway.sh
root=$(pwd)
venv=${SDK_PY_VENV:-.tools/venv}
venv=$(cd "$venv" && pwd)
for tool in componentize-py python; do
  if [ ! -x "$venv/bin/$tool" ]; then
    echo "sdk-py: $venv/bin/$tool is missing (run scripts/bootstrap.sh, or set SDK_PY_VENV)" >&2
    exit 1
  fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=${SDK_PY_OUT:-$tmp/components}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PYTHONDONTWRITEBYTECODE=1

echo "== sdk-py: bindings in sdk/python/grid_policy/_wit match wit/"
"$venv/bin/componentize-py" -q -d wit -w pricing -w payee -w authorization bindings "$tmp/bindings"
touch "$tmp/bindings/__init__.py" # the package marker is ours, not generated
if ! diff -r -x __pycache__ "$tmp/bindings" sdk/python/grid_policy/_wit; then
  echo "sdk-py: the bindings drifted from wit/; regenerate them (sdk/python/README.md)" >&2
  exit 1
fi

echo "== sdk-py: pytest (helpers, examples, fixtures natively)"
(cd sdk/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider)

gateway_binary sdk-py "$tmp"

# example module, world, the Rust original whose fixtures it must pass
examples=(
  "pricing_linear pricing pricing-linear"
  "authz_order_owner authorization authz-order-owner"
)
for example in "${examples[@]}"; do
  read -r module world original <<<"$example"
  wasm="$out/$module.wasm"
  fixtures="policies/$original/fixtures"
  echo "== sdk-py: componentize-py $module ($world world)"
  started=$(date +%s%N)
  (cd sdk/python && "$venv/bin/componentize-py" -q -d "$root/wit" -w "$world" componentize --stub-wasi \
    -p . -p "examples/$module" -o "$wasm" "$module")
  echo "sdk-py: $module.wasm: $(stat -c %s "$wasm") bytes, built in $(( ($(date +%s%N) - started) / 1000000 )) ms"
  run_fixtures "sdk-py: $module" "$world" "$wasm" "$fixtures"
done
echo "sdk-py: ok"
