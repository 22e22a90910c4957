#!/usr/bin/env bash
# Profile of the proxy's data path under valgrind's callgrind (instruction counts, so figures
# do not depend on how loaded the machine is): the release proxy (client keys on, every limit
# at its default but the rate limit, lifted as in bench-hook.sh) in front of ../shared/bench/fake-upstream, collection switched on only while
# a fixed load runs over one keep-alive connection: PLAIN non-streamed chat completions, then
# STREAMS streamed ones of CHUNKS chunks. Prints instructions per request and the top entries.
#
#   proxy/profile.sh [path/to/ai-api-proxy]     (default: target/release/ai-api-proxy)
#   PLAIN=2000 STREAMS=200 CHUNKS=50 TOP=25 OUT=/tmp/profile proxy/profile.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BIN="${1:-${CARGO_TARGET_DIR:-$ROOT/target}/release/ai-api-proxy}"
BENCH="${BENCH_DIR:-$ROOT/../shared/bench}"
FAKE="${BENCH_TARGET_DIR:-/tmp/bench-target}/release/fake-upstream"
: "${PLAIN:=2000}" "${STREAMS:=200}" "${CHUNKS:=50}" "${TOP:=25}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "profile: valgrind is not installed" >&2; exit 1; }
[ -x "$BIN" ] || { echo "profile: $BIN not found (cargo build --release --locked -p ai-api-proxy)" >&2; exit 1; }
if [ ! -x "$FAKE" ]; then
  (cd "$BENCH/fake-upstream" && CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-/tmp/bench-target}" cargo build -q --release)
fi
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

UP=$(free_port) PORT=$(free_port) ADMIN=$(free_port)
FAKE_ADDR="127.0.0.1:$UP" FAKE_THREADS=1 FAKE_DELAY_MS=0 "$FAKE" >"$OUT/fake.log" 2>&1 &
PIDS+=($!)
mkdir -p "$OUT/secrets/keys"
CLIENT_KEY="sk-profile"
printf 'bench:%s\n' "$(printf '%s' "$CLIENT_KEY" | sha256sum | cut -d' ' -f1)" >"$OUT/secrets/keys/keys"
cat >"$OUT/proxy.json" <<JSON
{
  "port": $PORT,
  "secrets_dir": "$OUT/secrets",
  "auth": { "api_keys": { "keys": { "secret": { "name": "keys", "key": "keys" } } } },
  "rate_limit": { "requests_per_second": 1000000, "burst": 1000000, "max_in_flight": 1000000 },
  "upstreams": [ { "name": "fake", "base_url": "http://127.0.0.1:$UP/v1", "api_key": { "env": "PROFILE_UPSTREAM_KEY" } } ],
  "models": [ { "name": "fake-model", "upstreams": ["fake"] } ]
}
JSON
PROFILE_UPSTREAM_KEY=sk-up valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$OUT/callgrind.out" "$BIN" --config "$OUT/proxy.json" \
  --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN" >"$OUT/proxy.log" 2>"$OUT/valgrind.log" &
VG=$!
PIDS+=("$VG")
for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:$ADMIN/ready" && break; sleep 0.2; done
# Warm the connection pools, then count.
load() {
  python3 - "$PORT" "$CLIENT_KEY" "$1" "$2" "$CHUNKS" <<'PY'
import http.client, sys
port, key, plain, streams, chunks = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
c = http.client.HTTPConnection("127.0.0.1", int(port))
h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
def go(stream, path):
    body = '{"model":"fake-model","stream":%s,"messages":[{"role":"user","content":"hi"}]}' % ("true" if stream else "false")
    c.request("POST", path, body, h)
    r = c.getresponse(); data = r.read()
    assert r.status == 200, (r.status, data[:200])
    if stream: assert data.endswith(b"data: [DONE]\n\n"), data[-100:]
for _ in range(plain): go(False, "/v1/chat/completions")
for _ in range(streams): go(True, f"/v1/chat/completions?chunks={chunks}&delay_ms=0")
PY
}
load 50 5
callgrind_control -i on "$VG" >/dev/null
load "$PLAIN" 0
callgrind_control -d "plain" "$VG" >/dev/null
callgrind_control -z "$VG" >/dev/null
load 0 "$STREAMS"
callgrind_control -d "streams" "$VG" >/dev/null
callgrind_control -i off "$VG" >/dev/null
set +o pipefail  # `grep -m1` and `sed -n` stop reading callgrind_annotate's output early
for part in plain streams; do
  f=$(grep -l "^desc: Trigger: dump $part" "$OUT"/callgrind.out.* | head -1)
  [ -n "$f" ] || { echo "profile: no dump for $part" >&2; exit 1; }
  total=$(callgrind_annotate "$f" 2>/dev/null | grep -m1 'PROGRAM TOTALS' | awk '{gsub(",","",$1); print $1}')
  n=$([ "$part" = plain ] && echo "$PLAIN" || echo "$STREAMS")
  echo "== $part: $n requests, $total instructions, $(( total / n )) per request"
  callgrind_annotate --inclusive=no "$f" 2>/dev/null | sed -n '/^Ir  *file:function/,$p' | sed -n "3,$((TOP + 2))p" \
    | sed -E 's/ \[[^]]*\]$//' | cut -c1-160
done | tee "$OUT/profile.txt"
echo "profile: $OUT/profile.txt" >&2
