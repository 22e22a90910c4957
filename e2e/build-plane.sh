#!/usr/bin/env bash
# Builds the e2e control plane once: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kubectl (e2e/plane/go.mod) and kwok (e2e/kwok/go.mod), into a cache folder
# keyed by the Go modules and by the build recipe below, so a later run with the same versions
# reuses them.
#
#   bash e2e/build-plane.sh            # builds if needed; prints the folder holding the binaries
#   bash e2e/build-plane.sh --cached   # prints that folder if it is built, else fails (no build)
#
# E2E_PLANE_CACHE picks the cache root (default: ~/.cache/infra-e2e). The tests find the
# binaries through E2E_PLANE_BIN, else through --cached (tests/plane/bins.rs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${E2E_PLANE_CACHE:-$HOME/.cache/infra-e2e}"
k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$here/plane/go.mod")"
[[ -n "$k8s_version" ]] || { echo "build-plane: no k8s.io/kubernetes in e2e/plane/go.mod" >&2; exit 1; }
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

# The recipe: builds every tool into $1. Its text (comments aside) is part of the cache key.
build() {
  local out=$1 minor stamp="" pkg kwok_dir
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  # Version stamps as Kubernetes' own build writes them (hack/lib/version.sh): without them
  # /version says v0.0.0-master and kubectl warns about the skew.
  minor="$(echo "$k8s_version" | cut -d. -f2)"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  # One go build for the four Kubernetes commands: they share most packages.
  (cd "$here/plane" && go build -trimpath -tags selinux,notest -ldflags "-s -w$stamp" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl)
  (cd "$here/plane" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  (cd "$here/kwok" && go build -trimpath -ldflags "-s -w" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok)
  # kwok's stages live in its module zip (v0.8.0 ships none built in).
  kwok_dir="$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  cp -r "$kwok_dir/kustomize/stage" "$out/kwok-stages"
  chmod -R u+w "$out/kwok-stages"
}

key="$( { cat "$here/plane/go.mod" "$here/plane/go.sum" "$here/kwok/go.mod" "$here/kwok/go.sum"
          declare -f build; } | sha256sum | cut -c1-16)"
bin="$cache/$k8s_version-$key"

complete() { for t in "${tools[@]}"; do [[ -x "$bin/$t" ]] || return 1; done; }
if complete; then echo "$bin"; exit 0; fi
if [[ "${1:-}" == --cached ]]; then
  echo "the control plane is not built (bash e2e/build-plane.sh builds it into $bin; needs Go)" >&2
  exit 1
fi

command -v go > /dev/null || { echo "build-plane: go is not installed (https://go.dev/dl/)" >&2; exit 1; }
tmp="$bin.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
echo "build-plane: building Kubernetes $k8s_version with $(go version | cut -d' ' -f3) into $bin" \
  "(cold: tens of minutes)" >&2
start=$SECONDS
build "$tmp"
rm -rf "$bin" && mv "$tmp" "$bin"
complete || { echo "build-plane: a binary is missing from $bin" >&2; exit 1; }
echo "build-plane: built in $((SECONDS - start)) s" >&2
echo "$bin"
