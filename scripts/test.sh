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
if [ "$status" -eq 0 ]; then
  echo "== fuzz: every target of fuzz/ for 20 s (grid-wire, the wire fast path's parsing)"
  scripts/fuzz.sh 20 || status=$?
fi
if [ "$status" -eq 0 ]; then
  echo "== the README's first command: a local node and the walkthrough client, end to end,"
  echo "   then schemathesis on its API (scripts/api-check.sh)"
  scripts/dev-node.sh --exit --api-check || status=$?
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
