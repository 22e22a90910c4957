#!/usr/bin/env bash
# Side by side on one real control plane (tests/plane, built by e2e/build-plane.sh), in one run,
# interleaved: `infra apply --env production --no-wait` against `kubectl apply --server-side -k
# out/production`, and `infra plan --env production --live` against `kubectl diff --server-side
# -k out/production`, on an environment already applied. Prints a Markdown table (median wall
# time) for BENCHMARKS.md. Knobs: RUNS (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

bash e2e/build-plane.sh >/dev/null
cargo build --release --locked -q --bin infra
TARGET="$(cargo metadata --format-version 1 --no-deps --locked \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
INFRA_BENCH_BIN="$TARGET/release/infra" RUNS="${RUNS:-20}" \
  cargo test --locked -q --test e2e_bench -- --ignored --nocapture 2>&1 \
  | sed -n '/^[0-9]* runs each/,/^|.*x |$/p'
