# Contributor shortcuts. Every recipe is a plain command you can also type yourself (README.md).
# A recipe that loops over environments fails when there are none (an empty loop checks nothing).

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Render every environment into out/<env>/.
render:
    envs="$(cargo run -q --locked -- envs)"; [ -n "$envs" ] || { echo "no environment" >&2; exit 1; }; for env in $envs; do cargo run -q --locked -- render --env "$env"; done

# Show what rendering an environment would change (default: production).
plan env="production":
    cargo run -q -- plan --env {{env}}

# Fail if out/ is stale for any environment (what CI runs).
check:
    bash .ci/check-out

# Run every test of the workspace (the e2e tier only if the control plane is built).
test:
    cargo test --workspace --locked

# Build the e2e control plane (once; needs Go), then run the e2e tier against it.
e2e:
    bin="$(bash e2e/build-plane.sh)"; flux="$(bash e2e/build-flux.sh)"; E2E_PLANE_BIN="$bin" E2E_FLUX_BIN="$flux" cargo test --locked --test 'e2e_*'

# Formatting and lints, warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Check the environment files with Taplo through .taplo.toml (what editors see; needs npm).
taplo:
    bash .ci/taplo-check

# Validate out/ with kubernetes-validate (strict) and checkov, at the versions CI pins.
validate:
    bash .ci/validate-manifests

# Criterion benchmark of build + render, then whole-process timing against helm (BENCHMARKS.md).
bench:
    cargo bench --bench render
    bash bench/compare-helm.sh

# The proxy side by side with NGINX under ../shared/bench (needs nginx and wrk).
bench-proxy:
    cargo build --release --locked -p ai-api-proxy
    cd {{justfile_directory()}}/../shared/bench && BENCH_ANONYMOUS=1 PROXY_HEALTH_PATH=/v1/models PROXY_PORT=18083 PROXY_NAME=ai-api-proxy PROXY_CMD={{justfile_directory()}}/proxy/bench-hook.sh ./run_nginx_anchor.sh

# Everything CI does.
ci:
    bash .ci/run

# Soak the release proxy: N clients (default 50) for 30 min by default (flags: --minutes N,
# --hours N, --days N, --clients N, --out DIR), with faults, a key rotation and a Redis restart.
soak *flags:
    bash proxy/soak.sh {{flags}}
