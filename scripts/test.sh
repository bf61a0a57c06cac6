#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, check formatting and
# lints, then every test of the workspace (unit, integration, doc tests), then every fuzz
# target for 20 s (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

if [ -f contracts/build.mjs ]; then
  echo "== contracts: committed artifacts match the sources"
  node contracts/build.mjs --check
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Every cargo build below (check-deploy, the whole-node tests' own build, dev-node) selects
# what `cargo test --workspace` selects: one feature resolution, so the dependencies are
# compiled once. Another selection (e.g. `-p grid-gateway`) unifies other features (no
# dev-dependencies) and compiles wasmtime, alloy and the rest a second time: minutes, and
# gigabytes of disk on a clean machine.
export GRID_CARGO_SELECTION="--workspace --tests"

echo "== cargo build (what cargo test runs, and the binaries the scripts start)"
cargo test --workspace --locked --no-run

echo "== deploy/: kubectl apply --dry-run=client"
scripts/check-deploy.sh

echo "== cargo test"
# cargo prints one "test result" line per test binary and the last one is often a doc-test
# crate with nothing in it; the closing line below sums them up.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The stages after the cargo tests run only when those pass, and each runs even when another
# of them fails, so one CI run reports every failing stage.
stage() {
  echo "== $1"
  shift
  "$@" || status=$?
}
if [ "$status" -eq 0 ]; then
  stage "fuzz: every target of fuzz/ for 20 s (grid-wire, the wire fast path's parsing; the fixture loader)" \
    scripts/fuzz.sh 20
  stage "the Python policy SDK: bindings, pytest, components through policy check/run (scripts/sdk-py.sh)" \
    scripts/sdk-py.sh
  # node --test's "# pass N" lines go to the log, for the closing count.
  stage "the TypeScript policy SDK: native tests, its example components through the gateway binary" \
    bash -o pipefail -c 'scripts/sdk-ts.sh 2>&1 | tee -a "$0"' "$log"
  stage "policy new: a project per language (every world in Rust), built, its native tests, its fixtures through the gateway binary (scripts/policy-new-check.sh)" \
    bash -o pipefail -c 'scripts/policy-new-check.sh 2>&1 | tee -a "$0"' "$log"
  stage "the README's first command: a local node and the walkthrough client, end to end, then schemathesis on its API (scripts/api-check.sh)" \
    scripts/dev-node.sh --exit --api-check
fi
# cargo's "test result" lines, and node --test's "# pass N" / "# fail N" (scripts/sdk-ts.sh,
# scripts/policy-new-check.sh).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     /^# pass [0-9]+$/ { p += $3 } /^# fail [0-9]+$/ { f += $3 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
