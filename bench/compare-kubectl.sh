#!/usr/bin/env bash
# Side by side on one real control plane (tests/plane, built by e2e/build-plane.sh), in one run,
# interleaved: `infra apply --env production --no-wait` against `kubectl apply --server-side -k
# out/production`, and `infra plan --env production --live` against `kubectl diff --server-side
# -k out/production`, on an environment already applied. Prints a Markdown table (median wall
# time) for BENCHMARKS.md. Knobs: RUNS (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

# Set, E2E_PLANE_BIN makes a plane that cannot start fail the benchmark instead of skipping it.
E2E_PLANE_BIN="$(bash e2e/build-plane.sh)"
export E2E_PLANE_BIN
cargo build --release --locked -q --bin infra
TARGET="$(cargo metadata --format-version 1 --no-deps --locked \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
out="$(BENCH_INFRA_BIN="$TARGET/release/infra" RUNS="${RUNS:-20}" \
  cargo test --locked -q --test e2e_bench -- --ignored --nocapture 2>&1)" \
  || { echo "$out" >&2; exit 1; }
# From the "N runs each" line through the last table row.
table="$(awk '/^[0-9]+ runs each/ {p = 1; print; next} p && /^\|/ {print; t = 1; next} p && t {exit} p' <<< "$out")"
[[ -n "$table" ]] || { echo "compare-kubectl: no table in the benchmark's output:" >&2; echo "$out" >&2; exit 1; }
echo "$table"
