# Contributor shortcuts. Every recipe is a plain command you can also type yourself (README.md).

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Render every environment into out/<env>/.
render:
    for env in $(cargo run -q -- envs); do cargo run -q -- render --env "$env"; done

# Show what rendering an environment would change (default: production).
plan env="production":
    cargo run -q -- plan --env {{env}}

# Fail if out/ is stale for any environment (what CI runs).
check:
    for env in $(cargo run -q -- envs); do cargo run -q -- plan --env "$env" --check > /dev/null; done

# Run every test of the workspace.
test:
    cargo test --workspace --locked

# Formatting and lints, warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Check the environment files with Taplo through .taplo.toml (what editors see; needs npm).
taplo:
    bash .ci/taplo-check

# Validate out/ with kubernetes-validate (strict) and checkov (needs: pip install kubernetes-validate checkov).
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
