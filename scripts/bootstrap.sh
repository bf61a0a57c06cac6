#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test grid-gateway. Idempotent: on a
# machine that has everything it only checks.
#   - the wasm32-wasip2 Rust target (policies are built for it)
#   - the npm tooling pinned in package-lock.json (solc-js for the contracts, anvil for
#     the local chain), when the repository has it
#   - the TypeScript policy SDK's npm tooling pinned in sdk/typescript/package-lock.json
#     (typescript, esbuild, componentize-js), for scripts/sdk-ts.sh
#   - kubectl (Debian's kubernetes-client), for scripts/check-deploy.sh
#   - pebble (Debian package: Let's Encrypt's ACME test CA), for host/tests/acme.rs
#   - schemathesis (PyPI, pinned) in .tools/venv, for scripts/api-check.sh
#   - componentize-py and pytest (PyPI, pinned) in .tools/venv, for scripts/sdk-py.sh
#   - the nightly Rust toolchain and cargo-fuzz, for scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "bootstrap: cargo is missing; install Rust with rustup first" >&2
  exit 1
fi

if ! command -v rustup >/dev/null 2>&1; then
  echo "bootstrap: rustup is missing; the wasm32-wasip2 target is installed with it (https://rustup.rs)" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "bootstrap: adding the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi

if [ -f package-lock.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: installing Node.js and npm (Debian packages)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq nodejs npm
  fi
  # npm ci installs exactly the lock file; skip it when node_modules is newer than the lock.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "bootstrap: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi

# The TypeScript policy SDK has its own lock (tsc, esbuild, componentize-js): installed in
# sdk/typescript only, when its lock is newer than its node_modules.
if [ -f sdk/typescript/package-lock.json ]; then
  if [ ! -f sdk/typescript/node_modules/.package-lock.json ] \
    || [ sdk/typescript/package-lock.json -nt sdk/typescript/node_modules/.package-lock.json ]; then
    echo "bootstrap: npm ci in sdk/typescript"
    (cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi

# Any kubectl will do: scripts/check-deploy.sh only runs a client dry run. Debian's is 1.20.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "bootstrap: installing kubectl (Debian package kubernetes-client)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq kubernetes-client
fi

# The policy registry tests (host/tests/policy_oci.rs) start their own OCI registry on
# loopback: Debian's docker-registry (the CNCF distribution server), with htpasswd from
# apache2-utils for the authenticated one. The package starts a system registry on port
# 5000: stopped and disabled, nothing may depend on it.
if [ ! -x /usr/bin/docker-registry ] || ! command -v htpasswd >/dev/null 2>&1; then
  echo "bootstrap: installing docker-registry and apache2-utils (Debian packages)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-registry apache2-utils
  $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
  $SUDO service docker-registry stop >/dev/null 2>&1 || true
fi

# The ACME tests (host/tests/acme.rs) run a real ACME CA: Debian's pebble.
if ! command -v pebble >/dev/null 2>&1; then
  echo "bootstrap: installing pebble (Debian package pebble)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq pebble
fi

# schemathesis checks every answer of a node against its OpenAPI document (scripts/api-check.sh).
SCHEMATHESIS_VERSION=4.32.5
if ! .tools/venv/bin/schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "bootstrap: installing schemathesis $SCHEMATHESIS_VERSION (PyPI) into .tools/venv"
  if ! python3 -m venv .tools/venv 2>/dev/null; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv
    python3 -m venv .tools/venv
  fi
  .tools/venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# componentize-py builds Python policies into components and pytest runs the Python SDK's
# tests and fixtures natively (scripts/sdk-py.sh). Same pins as sdk/python/pyproject.toml.
COMPONENTIZE_PY_VERSION=0.25.0
PYTEST_VERSION=9.2.0
if ! .tools/venv/bin/componentize-py --version 2>/dev/null | grep -qx "componentize-py $COMPONENTIZE_PY_VERSION" \
  || ! .tools/venv/bin/pytest --version 2>/dev/null | grep -qx "pytest $PYTEST_VERSION"; then
  echo "bootstrap: installing componentize-py $COMPONENTIZE_PY_VERSION and pytest $PYTEST_VERSION (PyPI) into .tools/venv"
  .tools/venv/bin/pip install --quiet --disable-pip-version-check \
    "componentize-py==$COMPONENTIZE_PY_VERSION" "pytest==$PYTEST_VERSION"
fi

# scripts/fuzz.sh builds the fuzz targets (fuzz/) with cargo-fuzz, which needs nightly.
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "bootstrap: installing the nightly Rust toolchain (for cargo-fuzz)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "bootstrap: installing cargo-fuzz"
  # Its own target dir: never the workspace's (CARGO_TARGET_DIR may point at a shared one).
  env -u CARGO_TARGET_DIR cargo install cargo-fuzz --locked
fi
