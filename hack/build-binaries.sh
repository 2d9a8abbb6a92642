#!/usr/bin/env bash
# Builds the Go programs the tests run (kube-apiserver, kube-controller-manager, etcd, helm,
# and for the real node kube-scheduler, kubelet and kube-proxy)
# from the modules pinned by the wrapper go.mod files beside this script, into a cache
# outside the repository keyed by version. A binary already in the cache is reused.
set -euo pipefail
hack=$(cd "$(dirname "$0")" && pwd)
cache="${HUBMIRROR_CACHE:-$HOME/.cache/hub-mirror-operator}"

# The version a wrapper's go.mod requires of a module.
pinned() { awk -v m="$2" '($1 == m || ($1 == "require" && $2 == m)) { print ($1 == m ? $2 : $3); exit }' "$hack/$1/go.mod"; }

# build_cached WRAPPER OUTDIR NAME PACKAGE [LDFLAGS]
build_cached() {
  local wrapper=$1 out=$2 name=$3 pkg=$4 ldflags=${5:-}
  if [ -x "$out/$name" ]; then
    [ "${QUIET:-false}" = true ] || echo "cached: $out/$name"
    return
  fi
  mkdir -p "$out"
  echo "building $name into $out (first time only; takes minutes)"
  local start; start=$(date +%s)
  # go.sum (committed) verifies every module; the checksum database is not asked
  # because it does not know every Kubernetes staging module version.
  (cd "$hack/$wrapper" && CGO_ENABLED=0 GOTOOLCHAIN=local GOSUMDB=off GOFLAGS=-mod=mod \
    go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  echo "built $name in $(( $(date +%s) - start ))s"
}

k8s=$(pinned k8s k8s.io/kubernetes)
minor=$(echo "$k8s" | cut -d. -f2)
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp="$stamp -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  build_cached k8s "$cache/k8s/$k8s" "$cmd" "k8s.io/kubernetes/cmd/$cmd" "$stamp"
done

etcd=$(pinned etcd go.etcd.io/etcd/server/v3)
build_cached etcd "$cache/etcd/$etcd" etcd go.etcd.io/etcd/server/v3

# Helm (chart lint and rendering tests), stamped the way Helm's own Makefile stamps releases:
# its version, and the Kubernetes version `helm template` assumes without --kube-version.
helm=$(pinned helm helm.sh/helm/v3)
clientgo=$(pinned helm k8s.io/client-go)
helm_stamp="-X helm.sh/helm/v3/internal/version.version=$helm -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_stamp="$helm_stamp -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$(echo "$clientgo" | cut -d. -f2)"
done
build_cached helm "$cache/helm/$helm" helm helm.sh/helm/v3/cmd/helm "$helm_stamp"

# oc-mirror v2, both lines pinned in hack/oc-mirror/versions (built from source; see the script).
"$hack/build-oc-mirror.sh"
