#!/usr/bin/env bash
# Makes this machine ready to run the tests and the local development stack:
# Debian packages the tests use, and the Go-built binaries: control plane and Helm (cached).
# Idempotent and quick when everything is present. `--quiet` prints only what it does.
set -euo pipefail
quiet=false
[ "${1:-}" = "--quiet" ] && quiet=true
hack=$(cd "$(dirname "$0")" && pwd)

# docker-registry: the test registry; apache2-utils: htpasswd; openssl: test certificates;
# util-linux: setpriv (kills harness processes with the test runner); skopeo: benchmarks;
# prometheus: promtool (alert rule tests; Debian has no promtool-only package, and on a
# systemd host the package also enables a Prometheus server on :9090);
# lua5.1 + lua-cjson: the Argo CD health check tests; gnupg: the offline upstream's release
# signatures (devkit/gpg.ts); git: fetching oc-mirror's source when no tarball is at hand.
# The real node (devkit/node.ts): containerd + runc (the container runtime; Debian's unit
# is not started: there is no systemd here, and the harness runs its own containerd), the CNI
# plugins (bridge, host-local), iproute2 (the node's network namespace and bridge), iptables +
# conntrack (kube-proxy, inside that namespace), catatonit (init of the node's PID namespace and
# the pod sandbox "pause" image), buildah (builds the images; no daemon) and mmdebstrap (the
# Debian root filesystem of the base images).
packages=(docker-registry apache2-utils openssl util-linux skopeo prometheus lua5.1 lua-cjson gnupg git
  containerd runc containernetworking-plugins iproute2 iptables conntrack catatonit buildah mmdebstrap)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "Go is required to build the test control plane and oc-mirror (https://go.dev/dl)" >&2; exit 1; }
QUIET=$quiet "$hack/build-binaries.sh"
