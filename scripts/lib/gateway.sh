# shellcheck shell=bash
# Sourced by the scripts that run policy components through the gateway binary
# (scripts/sdk-ts.sh, scripts/sdk-py.sh, scripts/policy-new-check.sh), from the checkout's
# root. Defines:
#   gateway_binary TAG DIR   sets GRID_GATEWAY_BIN, unless it is set already, to a debug build
#                            of the gateway (built with ${GRID_CARGO_SELECTION:--p grid-gateway},
#                            see scripts/test.sh) copied into DIR;
#   run_fixtures TAG WORLD WASM FIXTURES [MIN]
#                            `grid-gateway policy run` on WASM with every fixture of FIXTURES
#                            (and its settings.json) in one load; exits unless each one reports
#                            `expect_matched: true` and there are at least MIN (default 1).
# TAG starts the lines they print.

gateway_binary() { # tag dir
  if [ -n "${GRID_GATEWAY_BIN:-}" ]; then
    return
  fi
  echo "== $1: cargo build grid-gateway"
  # GRID_CARGO_SELECTION: see scripts/test.sh (one feature resolution for CI's builds).
  # shellcheck disable=SC2086
  cargo build -q ${GRID_CARGO_SELECTION:--p grid-gateway} --bin grid-gateway --locked
  # A copy: a target directory shared by several checkouts can swap the binary under us.
  cp "${CARGO_TARGET_DIR:-$PWD/target}/debug/grid-gateway" "$2/grid-gateway"
  GRID_GATEWAY_BIN="$2/grid-gateway"
}

run_fixtures() { # tag world wasm fixtures [min]
  local tag=$1 world=$2 wasm=$3 fixtures=$4 min=${5:-1} out ran want
  out=$(mktemp)
  echo "== $tag: grid-gateway policy run on $fixtures"
  # A generous deadline: this checks answers, not speed (a debug gateway on a busy CI machine
  # may take over the default 10 ms for an instance's first evaluation).
  if ! "$GRID_GATEWAY_BIN" policy run --deadline-ms "${SDK_DEADLINE_MS:-2000}" --world "$world" \
    --policy "$wasm" --settings "$fixtures/settings.json" --input "$fixtures" >"$out" 2>&1; then
    cat "$out"
    rm -f "$out"
    echo "$tag: the answers of $wasm differ from $fixtures" >&2
    exit 1
  fi
  ran=$(grep -c '"expect_matched": true' "$out" || true)
  want=$(find "$fixtures" -maxdepth 1 -name '*.json' ! -name settings.json | wc -l)
  if [ "$ran" -ne "$want" ] || [ "$want" -lt "$min" ]; then
    cat "$out"
    rm -f "$out"
    echo "$tag: $ran of $want fixture(s) of $fixtures matched through the gateway" >&2
    exit 1
  fi
  rm -f "$out"
  echo "$tag: all $ran fixtures of $fixtures matched through the gateway"
}
