#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, check formatting and
# lints, then every test of the workspace (unit, integration, doc tests).
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

echo "== cargo test"
cargo test --workspace --locked
