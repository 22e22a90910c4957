#!/usr/bin/env bash
# Builds Jaeger's all-in-one command (e2e/jaeger/go.mod: a real trace backend that takes OTLP on
# gRPC and HTTP and serves its query API) once, into a cache folder keyed by the Go module and by
# the build recipe below, so a later run with the same version reuses it.
#
#   bash e2e/build-jaeger.sh            # builds if needed; prints the path of the binary
#   bash e2e/build-jaeger.sh --cached   # prints that path if it is built, else fails (no build)
#
# E2E_JAEGER_CACHE picks the cache root (default: ~/.cache/infra-e2e). The proxy's telemetry
# tests find the binary through E2E_JAEGER_BIN, else through --cached.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${E2E_JAEGER_CACHE:-$HOME/.cache/infra-e2e}"
version="$(awk '$1 == "github.com/jaegertracing/jaeger" { print $2 }' "$here/jaeger/go.mod")"
[[ -n "$version" ]] || { echo "build-jaeger: no jaegertracing/jaeger in e2e/jaeger/go.mod" >&2; exit 1; }

# The recipe: builds the binary into $1. Its text (comments aside) is part of the cache key.
build() {
  local out=$1
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  (cd "$here/jaeger" && go build -trimpath -ldflags "-s -w" -o "$out/jaeger-all-in-one" \
    github.com/jaegertracing/jaeger/cmd/all-in-one)
}

key="$( { cat "$here/jaeger/go.mod" "$here/jaeger/go.sum"; declare -f build; } | sha256sum | cut -c1-16)"
dir="$cache/jaeger-$version-$key"
bin="$dir/jaeger-all-in-one"

if [[ -x "$bin" ]]; then echo "$bin"; exit 0; fi
if [[ "${1:-}" == --cached ]]; then
  echo "Jaeger is not built (bash e2e/build-jaeger.sh builds it into $dir; needs Go)" >&2
  exit 1
fi

command -v go > /dev/null || { echo "build-jaeger: go is not installed (https://go.dev/dl/)" >&2; exit 1; }
tmp="$dir.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
echo "build-jaeger: building Jaeger $version with $(go version | cut -d' ' -f3) into $dir" \
  "(cold: minutes)" >&2
start=$SECONDS
build "$tmp"
rm -rf "$dir" && mv "$tmp" "$dir"
[[ -x "$bin" ]] || { echo "build-jaeger: $bin is missing" >&2; exit 1; }
echo "build-jaeger: built in $((SECONDS - start)) s" >&2
echo "$bin"
