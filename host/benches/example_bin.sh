#!/usr/bin/env bash
# Builds the example host/examples/<name>.rs of the worktree this is run from (its root)
# and copies the executable to <dest>. With a target directory shared between worktrees,
# `target/<profile>/examples/<name>` is whichever worktree's build of it ran last: the copy
# is made under cargo's lock on that directory, and only once the file's dep-info
# (`<name>.d`, written with it) names this worktree's sources; else cargo is run again (a
# fresh build links its own executable back into place) and the check repeated.
#
# Usage: host/benches/example_bin.sh <name> <dest> [release|debug]   (default release)
set -euo pipefail
name=$1
dest=$2
profile=${3:-release}
flag=(); [ "$profile" = release ] && flag=(--release)
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
dir="$target_dir/$profile"
ours="$(pwd -P)/host/examples/$name.rs"
for _ in 1 2 3 4 5; do
  cargo build -q "${flag[@]}" -p grid-gateway --example "$name"
  if flock "$dir/.cargo-lock" sh -c 'grep -qF " $3" "$1/examples/$2.d" && cp "$1/examples/$2" "$4"' \
    _ "$dir" "$name" "$ours" "$dest"; then
    exit 0
  fi
done
echo "$dir/examples/$name stayed another worktree's build" >&2
exit 1
