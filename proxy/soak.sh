#!/usr/bin/env bash
# Soak: the release proxy under steady load for a long time, with faults, a key rotation and a
# restart of its shared limits store (proxy/BENCHMARKS.md, "Soak"; `just soak`).
#
#   proxy/soak.sh [--minutes 30 | --hours 1 | --days 1] [--clients 50] [--out DIR]
#
# Starts, all on 127.0.0.1: two stand-in upstreams (../shared/bench/fake-upstream, built into
# $BENCH_TARGET_DIR) each failing 0.3 % of requests (first-byte stalls, 502s, resets before
# the answer; a stream reset becomes a cut midway), a real redis-server with a password for
# the shared limits, and the release ai-api-proxy with client keys, a default policy and the
# two upstreams as one model's fallback order. The load client (proxy/examples/soak.rs) runs
# N clients (30 % streamed, 100 ms think time on average between requests) for the duration. At a third of the run the client key is rotated
# (the new key added to the key file, the clients switched, the old key removed); at two
# thirds redis-server is killed and started again. The summary (summary.md), the CSVs and
# soak.png (RSS, request rate and p99 over time) are written to the output directory.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BENCH="${BENCH_DIR:-$ROOT/../shared/bench}"
MINUTES=30 CLIENTS=50 OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --hours) MINUTES=$(( $2 * 60 )); shift 2 ;;
    --days) MINUTES=$(( $2 * 1440 )); shift 2 ;;
    --clients) CLIENTS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "soak: unknown flag $1 (--minutes|--hours|--days N, --clients N, --out DIR)" >&2; exit 2 ;;
  esac
done
case "$MINUTES$CLIENTS" in *[!0-9]*) echo "soak: numbers only" >&2; exit 2 ;; esac
[ "$MINUTES" -gt 0 ] && [ "$CLIENTS" -gt 0 ] || { echo "soak: duration and clients must be > 0" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "soak: redis-server is not installed (apt-get install -y redis-server)" >&2; exit 1; }
[ -d "$BENCH/fake-upstream" ] || { echo "soak: $BENCH/fake-upstream not found (set BENCH_DIR)" >&2; exit 1; }
OUT="${OUT:-/tmp/ai-api-proxy-soak-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
if [ -n "${SOAK_KEEP:-}" ]; then echo "soak: work dir $WORK (kept)" >&2; fi
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${SOAK_KEEP:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "soak: building (release)" >&2
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build -q --release --locked -p ai-api-proxy --bin ai-api-proxy --example soak)
BENCH_TARGET="${BENCH_TARGET_DIR:-/tmp/bench-target}"
(cd "$BENCH/fake-upstream" && CARGO_TARGET_DIR="$BENCH_TARGET" cargo build -q --release)
FAKE="$BENCH_TARGET/release/fake-upstream"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -sf -o /dev/null "$@" && return 0; sleep 0.1; done; echo "soak: $* never answered" >&2; exit 1; }

# Two upstreams, each failing 0.3 % of requests.
UP1=$(free_port) UP2=$(free_port)
for port in "$UP1" "$UP2"; do
  FAKE_ADDR="127.0.0.1:$port" FAKE_THREADS=1 "$FAKE" >"$WORK/fake-$port.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$port/health"
  curl -sf -X POST "http://127.0.0.1:$port/_fake/faults?per_mille=3&how=502,reset,stall" >/dev/null
done

# Redis with a password, persistence off.
REDIS_PORT=$(free_port)
export SOAK_REDIS_PASSWORD="soak-$RANDOM$RANDOM"
start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --requirepass "$SOAK_REDIS_PASSWORD" \
    --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" -a "$SOAK_REDIS_PASSWORD" --no-auth-warning ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  echo "soak: redis-server did not start" >&2; exit 1
}
start_redis

# Client keys: a key file in a Secret-like directory, swapped the way the kubelet does.
hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
KEY_A="sk-soak-a-$RANDOM$RANDOM" KEY_B="sk-soak-b-$RANDOM$RANDOM"
SECRET="$WORK/secrets/soak-client-keys"
write_keys() {
  local gen="$SECRET/..$(date +%s%N)"
  mkdir -p "$gen"
  printf '%s' "$1" >"$gen/keys"
  ln -sfn "$(basename "$gen")" "$SECRET/..data.tmp" && mv -T "$SECRET/..data.tmp" "$SECRET/..data"
  ln -sfn "..data/keys" "$SECRET/keys" 2>/dev/null || true
}
mkdir -p "$SECRET"
write_keys "soak:$(hash "$KEY_A")"$'\n'
printf '%s\n' "$KEY_A" >"$WORK/client-key"

PORT=$(free_port)
cat >"$WORK/proxy.json" <<JSON
{
  "port": $PORT,
  "secrets_dir": "$WORK/secrets",
  "auth": { "api_keys": { "keys": { "secret": { "name": "soak-client-keys", "key": "keys" } } } },
  "rate_limit": { "requests_per_second": 100000, "burst": 100000, "max_in_flight": 1000 },
  "policies": { "default": { "requests_per_minute": 10000000, "tokens_per_minute": 10000000000, "tokens_per_day": 1000000000000 } },
  "shared_limits": { "address": "127.0.0.1:$REDIS_PORT", "password": { "env": "SOAK_REDIS_PASSWORD" }, "replicas": 1 },
  "timeouts": { "connect": "1s", "first_byte": "2s", "idle": "5s" },
  "shutdown": { "grace_delay": "0s", "drain_timeout": "5s" },
  "upstreams": [
    { "name": "one", "base_url": "http://127.0.0.1:$UP1/v1", "api_key": { "env": "SOAK_UPSTREAM_KEY" } },
    { "name": "two", "base_url": "http://127.0.0.1:$UP2/v1", "api_key": { "env": "SOAK_UPSTREAM_KEY" } }
  ],
  "models": [ { "name": "fake-model", "upstreams": ["one", "two"] } ]
}
JSON
ADMIN=$(free_port)
SOAK_UPSTREAM_KEY=sk-upstream "$TARGET/release/ai-api-proxy" --config "$WORK/proxy.json" \
  --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_http "http://127.0.0.1:$ADMIN/ready"

SECS=$(( MINUTES * 60 ))
WARMUP=$(( SECS / 6 < 300 ? SECS / 6 : 300 ))
WINDOW=$(( SECS < 1800 ? (SECS / 6 > 10 ? SECS / 6 : 10) : 300 ))
echo "soak: $CLIENTS clients for $MINUTES min; output in $OUT" >&2
"$TARGET/release/examples/soak" --proxy "http://127.0.0.1:$PORT" --direct "http://127.0.0.1:$UP1" \
  --key-file "$WORK/client-key" --clients "$CLIENTS" --duration-secs "$SECS" --pid "$PROXY_PID" \
  --window-secs "$WINDOW" --warmup-secs "$WARMUP" --out "$OUT" >"$OUT/client.out" 2>"$OUT/client.log" &
CLIENT=$!
PIDS+=("$CLIENT")

# A third of the way: rotate the client key (both valid, clients switch, old one removed).
sleep $(( SECS / 3 ))
echo "soak: $(date -u +%T) rotating the client key" | tee -a "$OUT/events.log" >&2
write_keys "soak:$(hash "$KEY_A")"$'\n'"soak-next:$(hash "$KEY_B")"$'\n'
sleep 5
printf '%s\n' "$KEY_B" >"$WORK/client-key"
sleep 5
write_keys "soak-next:$(hash "$KEY_B")"$'\n'
# Two thirds of the way: restart the shared limits store.
sleep $(( SECS / 3 - 10 ))
echo "soak: $(date -u +%T) restarting redis-server" | tee -a "$OUT/events.log" >&2
kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
sleep 2
start_redis
wait "$CLIENT"

{
  echo
  echo "Events: $(tr '\n' ';' <"$OUT/events.log")"
  echo "Proxy log: $(grep -c '"target":"access"' "$WORK/proxy.log") access lines;" \
    "$(grep -c 'shared limits store unreachable' "$WORK/proxy.log") store-unreachable," \
    "$(grep -c 'reachable again' "$WORK/proxy.log") store-back," \
    "$(grep -c 'keys added' "$WORK/proxy.log") key-file reloads."
  for port in "$UP1" "$UP2"; do echo "Upstream $port: $(curl -sf "http://127.0.0.1:$port/_fake/stats")"; done
  # What the proxy answered other than a complete 200, from its access log.
  python3 - "$WORK/proxy.log" <<'PY'
import collections, json, sys
seen = collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    if '"target":"access"' not in line:
        continue
    v = json.loads(line)
    if v.get("status") != 200 or v.get("error"):
        seen[(v.get("status"), v.get("error"), v.get("upstream"), v.get("attempts"))] += 1
print("Proxy answers other than a clean 200 (status, error, upstream, attempts: count): "
      + ("; ".join(f"{k}: {n}" for k, n in seen.most_common(12)) or "none"))
PY
} | tee -a "$OUT/summary.md"
"${PLOT_PYTHON:-/usr/bin/python3}" "$HERE/soak-plot.py" "$OUT" || echo "soak: no plot (python3-matplotlib missing?)" >&2
echo "soak: done; $OUT/summary.md, $OUT/soak.png" >&2
