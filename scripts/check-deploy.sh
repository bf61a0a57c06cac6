#!/usr/bin/env bash
# Checks the Kubernetes manifests in deploy/ with `kubectl apply --dry-run=client`: every
# document must parse, name a kind the API server serves (so a misspelt apiVersion or kind
# fails) and have what kubectl needs to create it (name, namespace on namespaced kinds, ...).
#
# kubectl needs an API server for discovery even in a client dry run, and there is no
# cluster here: grid-fake-cluster (testing/fake-cluster) serves the discovery documents on
# loopback and is stopped at the end. It serves no OpenAPI schema, so kubectl's schema
# validation is off (--validate=false); field-level checks of these manifests (unknown or
# mistyped fields) are in host/tests/deploy/manifests.rs, against the Kubernetes types.
#
# Then, where systemd-analyze exists, deploy/systemd/: the unit with `systemd-analyze
# verify` (any warning fails) and the sysusers.d file with `systemd-sysusers --root`.
#
#   scripts/check-deploy.sh                  # deploy/*.yaml and deploy/systemd/
#   scripts/check-deploy.sh FILE...          # only these manifests
#   KUBECTL=/path/to/kubectl scripts/check-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."

kubectl=${KUBECTL:-kubectl}
if ! command -v "$kubectl" >/dev/null 2>&1; then
  echo "check-deploy: kubectl is missing; scripts/bootstrap.sh installs it" >&2
  exit 1
fi

if [ "$#" -gt 0 ]; then
  manifests=("$@")
else
  manifests=(deploy/*.yaml)
fi

# GRID_CARGO_SELECTION (set by scripts/test.sh) builds with the test run's feature
# resolution, so CI compiles the dependencies once instead of once per selection.
# shellcheck disable=SC2086
cargo build --locked --quiet ${GRID_CARGO_SELECTION:--p grid-fake-cluster} --bin grid-fake-cluster
fake=${CARGO_TARGET_DIR:-target}/debug/grid-fake-cluster

tmp=$(mktemp -d)
fake_pid=""
cleanup() {
  if [ -n "$fake_pid" ]; then
    kill "$fake_pid" 2>/dev/null || true
    wait "$fake_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$fake" --listen 127.0.0.1:0 --kubeconfig "$tmp/kubeconfig" >"$tmp/url" 2>"$tmp/fake.log" &
fake_pid=$!
# It prints its URL once it listens and the kubeconfig is written.
for _ in $(seq 100); do
  [ -s "$tmp/url" ] && break
  if ! kill -0 "$fake_pid" 2>/dev/null; then
    echo "check-deploy: grid-fake-cluster exited:" >&2
    cat "$tmp/fake.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ ! -s "$tmp/url" ]; then
  echo "check-deploy: grid-fake-cluster did not start within 10 s" >&2
  exit 1
fi

version=$("$kubectl" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n1)
echo "check-deploy: kubectl ${version:-(version unknown)} --dry-run=client against grid-fake-cluster's discovery"
files=()
for manifest in "${manifests[@]}"; do files+=(-f "$manifest"); done
"$kubectl" --kubeconfig "$tmp/kubeconfig" apply --dry-run=client --validate=false "${files[@]}"

[ "$#" -gt 0 ] && exit 0
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "check-deploy: systemd-analyze is missing; deploy/systemd/ not checked"
  exit 0
fi
echo "check-deploy: $(systemd-analyze --version | head -n1): deploy/systemd/"
# verify wants ExecStart's program to exist; the unit is what is checked, so any will do.
sed "s|^ExecStart=/usr/local/bin/grid-gateway |ExecStart=$(type -P true) |" \
  deploy/systemd/grid-gateway.service >"$tmp/grid-gateway.service"
if ! out=$(systemd-analyze verify --man=no "$tmp/grid-gateway.service" 2>&1) || [ -n "$out" ]; then
  echo "check-deploy: systemd-analyze verify deploy/systemd/grid-gateway.service:" >&2
  echo "$out" >&2
  exit 1
fi
# The sysusers.d file, installed into an empty root as the unit's comment says.
install -D -m 0644 deploy/systemd/grid-gateway.sysusers "$tmp/root/usr/lib/sysusers.d/grid-gateway.conf"
mkdir -p "$tmp/root/etc"
systemd-sysusers --root="$tmp/root" >"$tmp/sysusers.log" 2>&1 || {
  cat "$tmp/sysusers.log" >&2
  exit 1
}
if ! grep -q '^grid-gateway:' "$tmp/root/etc/passwd" 2>/dev/null; then
  echo "check-deploy: deploy/systemd/grid-gateway.sysusers created no grid-gateway user:" >&2
  cat "$tmp/sysusers.log" >&2
  exit 1
fi
echo "check-deploy: deploy/systemd/ ok"
