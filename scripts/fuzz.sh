#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time each (issue 16): grid-wire (the
# wire fast path's parsing and framing, wire/), the manifest parser and checks
# (grid-manifest, manifest/), the SIWE parser and the policy fixture loader.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]   (default: 30 s, every target)
#
# Builds with `cargo +nightly fuzz build` into fuzz/target (its own target dir: the main one
# is never invalidated), then runs each target on a copy of its committed seed corpus
# (fuzz/corpus/<target>, copied to fuzz/corpus-run/<target> so runs do not grow the repo).
# Prints each target's executions (libFuzzer's `#N DONE` line) and fails on a crash, printing
# the input that crashed it (written under fuzz/artifacts/<target>/; replay it with
# `cargo +nightly fuzz run <target> <file>`). Every run is bounded: one allocation of
# 256 MiB or more, a resident size above 2 GiB, or one input taking 10 s is a crash (a
# parser must not allocate or work in proportion to what an input claims). Needs the
# nightly toolchain and cargo-fuzz (scripts/bootstrap.sh installs both).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-30}"
shift || true
cd "$root"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz on the nightly toolchain is missing (scripts/bootstrap.sh installs it)" >&2
  exit 1
fi

target_dir="$root/fuzz/target"
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(env -u CARGO_TARGET_DIR cargo +nightly fuzz list)
fi

echo "== fuzz: building ${targets[*]}"
env -u CARGO_TARGET_DIR cargo +nightly fuzz build --target-dir "$target_dir"

failed=0
for target in "${targets[@]}"; do
  corpus="$root/fuzz/corpus-run/$target"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$root/fuzz/artifacts/$target"
  cp "$root/fuzz/corpus/$target/"* "$corpus/"
  log="$root/fuzz/target/$target.log"
  echo "== fuzz: $target for ${seconds}s"
  if env -u CARGO_TARGET_DIR cargo +nightly fuzz run --target-dir "$target_dir" "$target" "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1; then
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
    echo "   $target: ${done_line:-no DONE line (see $log)}"
  else
    failed=1
    echo "   $target: CRASH (log: $log)"
    grep -E 'panicked at|ERROR: |SUMMARY: ' "$log" | head -n 5 | sed 's/^/     /' || true
    grep -E 'Test unit written to' "$log" | sed 's/^/     /' || true
  fi
done
exit "$failed"
