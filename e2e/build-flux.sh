#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller (e2e/flux/go.mod) once, with the CRDs
# from the same module zips, into a cache folder keyed by the Go module and by the build recipe
# below, so a later run with the same versions reuses them. The e2e GitOps tests run them as
# processes against the e2e control plane (e2e/build-plane.sh).
#
#   bash e2e/build-flux.sh            # builds if needed; prints the folder holding the binaries
#   bash e2e/build-flux.sh --cached   # prints that folder if it is built, else fails (no build)
#
# E2E_PLANE_CACHE picks the cache root (default: ~/.cache/infra-e2e). The tests find the
# binaries through E2E_FLUX_BIN, else through --cached (tests/plane/flux.rs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${E2E_PLANE_CACHE:-$HOME/.cache/infra-e2e}"
controllers=(source-controller kustomize-controller)
version="$(awk '$1 == "github.com/fluxcd/source-controller" && $2 ~ /^v/ { print $2; exit }' "$here/flux/go.mod")"
[[ -n "$version" ]] || { echo "build-flux: no source-controller in e2e/flux/go.mod" >&2; exit 1; }

# The recipe: builds both controllers into $1 and copies their CRDs into $1/crds. Its text
# (comments aside) is part of the cache key.
build() {
  local out=$1 c dir
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  # One go build for both: they share most packages (controller-runtime, client-go, fluxcd/pkg).
  (cd "$here/flux" && go build -trimpath -ldflags "-s -w" -o "$out/" \
    github.com/fluxcd/source-controller github.com/fluxcd/kustomize-controller)
  mkdir -p "$out/crds"
  for c in "${controllers[@]}"; do
    dir="$(cd "$here/flux" && go list -m -f '{{.Dir}}' "github.com/fluxcd/$c")"
    cp "$dir"/config/crd/bases/*.yaml "$out/crds/"
  done
  chmod -R u+w "$out/crds"
}

key="$( { cat "$here/flux/go.mod" "$here/flux/go.sum"; declare -f build; } | sha256sum | cut -c1-16)"
bin="$cache/flux-$version-$key"

complete() {
  for c in "${controllers[@]}"; do [[ -x "$bin/$c" ]] || return 1; done
  compgen -G "$bin/crds/*.yaml" > /dev/null
}
if complete; then echo "$bin"; exit 0; fi
if [[ "${1:-}" == --cached ]]; then
  echo "Flux is not built (bash e2e/build-flux.sh builds it into $bin; needs Go)" >&2
  exit 1
fi

command -v go > /dev/null || { echo "build-flux: go is not installed (https://go.dev/dl/)" >&2; exit 1; }
tmp="$bin.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
echo "build-flux: building Flux $version with $(go version | cut -d' ' -f3) into $bin" \
  "(cold: tens of minutes)" >&2
start=$SECONDS
build "$tmp"
rm -rf "$bin" && mv "$tmp" "$bin"
complete || { echo "build-flux: a binary or the CRDs are missing from $bin" >&2; exit 1; }
echo "build-flux: built in $((SECONDS - start)) s" >&2
echo "$bin"
