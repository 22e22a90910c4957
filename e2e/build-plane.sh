#!/usr/bin/env bash
# Builds the e2e control plane once: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kubectl (e2e/plane/go.mod) and kwok (e2e/kwok/go.mod), into a cache folder
# keyed by the two go.sum files, so a later run with the same versions reuses them.
#
#   bash e2e/build-plane.sh            # prints the folder holding the binaries
#
# INFRA_E2E_CACHE picks the cache root (default: ~/.cache/infra-e2e). The tests find the
# binaries through INFRA_E2E_BIN, or in the newest folder here (tests/e2e/plane.rs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${INFRA_E2E_CACHE:-$HOME/.cache/infra-e2e}"
key="$(cat "$here/plane/go.mod" "$here/plane/go.sum" "$here/kwok/go.mod" "$here/kwok/go.sum" "$0" \
  | sha256sum | cut -c1-16)"
k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$here/plane/go.mod")"
bin="$cache/$k8s_version-$key"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

complete() { for t in "${tools[@]}"; do [[ -x "$bin/$t" ]] || return 1; done; }
if complete; then echo "$bin"; exit 0; fi

command -v go > /dev/null || { echo "build-plane: go is not installed" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
tmp="$bin.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"

# Version stamps as Kubernetes' own build writes them (hack/lib/version.sh): without them
# /version says v0.0.0-master and kubectl warns about the skew.
minor="$(echo "$k8s_version" | cut -d. -f2)"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

echo "build-plane: building Kubernetes $k8s_version into $bin (cold: tens of minutes)" >&2
(cd "$here/plane" && go build -trimpath -tags selinux,notest -ldflags "-s -w$stamp" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl)
(cd "$here/plane" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
(cd "$here/kwok" && go build -trimpath -ldflags "-s -w" -o "$tmp/kwok" sigs.k8s.io/kwok/cmd/kwok)
# kwok's default stages live in its module zip (v0.8.0 ships none built in).
kwok_dir="$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
cp -r "$kwok_dir/kustomize/stage" "$tmp/kwok-stages"
chmod -R u+w "$tmp/kwok-stages"

rm -rf "$bin" && mv "$tmp" "$bin"
complete || { echo "build-plane: a binary is missing from $bin" >&2; exit 1; }
echo "$bin"
