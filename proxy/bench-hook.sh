#!/usr/bin/env bash
# Bench hook for ../shared/bench/run_nginx_anchor.sh (see its README, "The hook contract"):
# starts the release ai-api-proxy in the FOREGROUND on 127.0.0.1:$PROXY_PORT, routing
# `fake-model` to $UPSTREAM_URL, injecting $API_KEY (read from the environment: KeySource::Env)
# and accepting $CLIENT_KEY (its SHA-256 in a keys file under a temporary secrets dir).
# The rate limit and the per-client in-flight cap are lifted so they never interfere with
# throughput runs (every other limit keeps its default: their cost is part of the figures).
# The admin listener (health, metrics) takes any free port.
# BENCH_ANONYMOUS=1 switches client authentication off instead (explicitly, "auth": "anonymous").
# BENCH_POLICY=1 gives every client a policy (requests and tokens per minute, high enough never
# to refuse) counted on this replica; BENCH_REDIS=host:port counts it in that Redis instead
# (shared limits; BENCH_REDIS_PASSWORD, if set, is its password).
# The harness waits for 2xx from `PROXY_HEALTH_PATH` on the API port without a key, and the
# proxy serves /health only on its admin port: run with BENCH_ANONYMOUS=1 and
# PROXY_HEALTH_PATH=/v1/models (answered from configuration, no upstream call).
#
#   cargo build --release --locked -p ai-api-proxy
#   cd ../shared/bench && BENCH_ANONYMOUS=1 PROXY_HEALTH_PATH=/v1/models PROXY_PORT=18083 \
#     PROXY_NAME=ai-api-proxy PROXY_CMD="$PWD/../../main/proxy/bench-hook.sh" ./run_nginx_anchor.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${PROXY_PORT:?PROXY_PORT must be set}" "${UPSTREAM_URL:?UPSTREAM_URL must be set}"
: "${API_KEY:?API_KEY must be set}" "${CLIENT_KEY:?CLIENT_KEY must be set}"
BIN="${PROXY_BIN:-${CARGO_TARGET_DIR:-$HERE/../target}/release/ai-api-proxy}"
if [ ! -x "$BIN" ]; then
  echo "bench-hook: $BIN not found; run: cargo build --release --locked -p ai-api-proxy" >&2
  exit 1
fi

# The proxy is exec'ed (so the harness measures its memory, not a shell's): the directory
# is left behind, small, and overwritten by the next run.
DIR="${TMPDIR:-/tmp}/ai-api-proxy-bench-$PROXY_PORT"
mkdir -p "$DIR/secrets/bench-client-keys"
printf 'bench:%s\n' "$(printf '%s' "$CLIENT_KEY" | sha256sum | cut -d' ' -f1)" \
  >"$DIR/secrets/bench-client-keys/keys"
AUTH='{ "api_keys": { "keys": { "secret": { "name": "bench-client-keys", "key": "keys" } } } }'
if [ "${BENCH_ANONYMOUS:-0}" = 1 ]; then AUTH='"anonymous"'; fi
POLICY=''
if [ "${BENCH_POLICY:-0}" = 1 ] || [ -n "${BENCH_REDIS:-}" ]; then
  POLICY='"policies": { "default": { "requests_per_minute": 10000000, "tokens_per_minute": 10000000000 } },'
fi
if [ -n "${BENCH_REDIS:-}" ]; then
  PASSWORD=''
  if [ -n "${BENCH_REDIS_PASSWORD:-}" ]; then PASSWORD='"password": { "env": "BENCH_REDIS_PASSWORD" },'; fi
  POLICY="$POLICY \"shared_limits\": { \"address\": \"$BENCH_REDIS\", $PASSWORD \"replicas\": 1 },"
fi
cat >"$DIR/proxy.json" <<JSON
{
  "port": $PROXY_PORT,
  "secrets_dir": "$DIR/secrets",
  "auth": $AUTH,
  $POLICY
  "rate_limit": { "requests_per_second": 1000000, "burst": 1000000, "max_in_flight": 1000000 },
  "shutdown": { "grace_delay": "0s", "drain_timeout": "5s" },
  "upstreams": [
    { "name": "fake", "base_url": "${UPSTREAM_URL%/}/v1", "api_key": { "env": "API_KEY" } }
  ],
  "models": [ { "name": "fake-model", "upstreams": ["fake"] } ]
}
JSON
exec "$BIN" --config "$DIR/proxy.json" --listen "127.0.0.1:$PROXY_PORT" --admin-listen 127.0.0.1:0
