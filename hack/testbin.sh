#!/usr/bin/env bash
# Builds the real components of Ferry's local control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok) from the Go module proxy into a
# cache outside the repository, keyed by their versions, and prints the directory.
# A warm cache returns at once; a cold build takes ~20-25 minutes on 2 cores.
set -euo pipefail

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
KWOK_VERSION=v0.8.0

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/testbin-lib.sh
. "$root/hack/testbin-lib.sh"
dir=${FERRY_TESTBIN:-$testbin_cache/testbin/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION}
testbin_begin "$dir"

# build MODULE_DIR NAME PACKAGE [LDFLAGS]
build() {
  local mod=$1 name=$2 pkg=$3 ldflags=${4:-}
  [ -x "$dir/$name" ] && return 0
  log "building $name ($pkg)"
  local start=$SECONDS
  (cd "$root/tools/testbin/$mod" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$dir/.$name.tmp" "$pkg")
  mv "$dir/.$name.tmp" "$dir/$name"
  log "built $name in $((SECONDS - start))s"
}

kver="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 \
-X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION \
-X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=37"

build etcd etcd go.etcd.io/etcd/server/v3
build etcd etcdctl go.etcd.io/etcd/etcdctl/v3
build kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kver"
build kube kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kver"
build kube kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$kver"
build kube kubectl k8s.io/kubernetes/cmd/kubectl "$kver"
build kwok kwok sigs.k8s.io/kwok/cmd/kwok

# kwok's standalone binary has no built-in stages; ship the ones its module defines.
kwokdir=$(cd "$root/tools/testbin/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
mkdir -p "$dir/kwok-stages"
for s in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
  pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
  install -m 0644 "$kwokdir/kustomize/stage/$s.yaml" "$dir/kwok-stages/"
done

testbin_end
