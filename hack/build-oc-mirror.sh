#!/usr/bin/env bash
# Builds oc-mirror v2 from source (the Go module proxy cannot serve github.com/openshift/oc-mirror/v2),
# one binary per line pinned in hack/oc-mirror/versions, into a cache outside the repository keyed
# by commit: $cache/oc-mirror/<commit>/oc-mirror. A binary already in the cache is reused.
#
# Where the source comes from, first match wins:
#   HUBMIRROR_OC_MIRROR       an oc-mirror binary you already have: nothing is built; the harness
#                             uses it for the default line (see hack/oc-mirror/versions)
#   HUBMIRROR_OC_MIRROR_SRC   a folder holding the pinned source tarballs, or one tarball or
#                             checkout (repository root or its v2 module) of the default line's commit
#   <repo>/../shared/oc-mirror/src/<tarball>
#   git clone https://github.com/openshift/oc-mirror at the pinned commit
# HUBMIRROR_OC_MIRROR_LINES picks the lines to build (default: all of them, e.g. "4.20 5").
set -euo pipefail
hack=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$hack")
cache="${HUBMIRROR_CACHE:-$HOME/.cache/hub-mirror-operator}"
versions="$hack/oc-mirror/versions"
upstream=https://github.com/openshift/oc-mirror
tags="json1 exclude_graphdriver_devicemapper exclude_graphdriver_btrfs containers_image_openpgp"
say() { [ "${QUIET:-false}" = true ] || echo "$@"; }

# ../shared beside the repository; in a git worktree, also beside the main checkout.
shared_dirs=("$repo/../shared/oc-mirror/src")
common=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
[ -n "$common" ] && shared_dirs+=("$(dirname "$(dirname "$common")")/shared/oc-mirror/src")

default_line=$(awk '$1 == "default" { print $2 }' "$versions")

if [ -n "${HUBMIRROR_OC_MIRROR:-}" ]; then
  [ -x "$HUBMIRROR_OC_MIRROR" ] || { echo "HUBMIRROR_OC_MIRROR=$HUBMIRROR_OC_MIRROR is not an executable file" >&2; exit 1; }
  say "oc-mirror: using HUBMIRROR_OC_MIRROR=$HUBMIRROR_OC_MIRROR for line $default_line (nothing built)"
  exit 0
fi

# The module folder of an unpacked tarball or a checkout: the folder whose go.mod is oc-mirror's v2 module.
module_dir() {
  local d
  for d in "$1" "$1/v2" "$1"/*/ "$1"/*/v2; do
    if [ -f "$d/go.mod" ] && head -1 "$d/go.mod" | grep -qx 'module github.com/openshift/oc-mirror/v2'; then
      (cd "$d" && pwd)
      return
    fi
  done
  return 1
}

# fetch_source LINE COMMIT SUBDIR TARBALL WORKDIR: copies or unpacks the line's source into WORKDIR/src
# (never builds in a user's checkout: the build edits go.mod) and prints the module folder.
fetch_source() {
  local line=$1 commit=$2 subdir=$3 tarball=$4 work=$5 given=${HUBMIRROR_OC_MIRROR_SRC:-} shared
  mkdir -p "$work/src"
  if [ -n "$given" ] && [ -f "$given/$tarball" ]; then
    echo "  source: $given/$tarball (HUBMIRROR_OC_MIRROR_SRC)" >&2
    tar -xzf "$given/$tarball" -C "$work/src"
  elif [ -n "$given" ] && [ "$line" = "$default_line" ] && [ -f "$given" ]; then
    echo "  source: $given (HUBMIRROR_OC_MIRROR_SRC)" >&2
    tar -xzf "$given" -C "$work/src"
  elif [ -n "$given" ] && [ "$line" = "$default_line" ] && [ -d "$given" ] && module_dir "$given" >/dev/null; then
    if [ -e "$given/.git" ]; then
      local head; head=$(git -C "$given" rev-parse HEAD)
      [ "$head" = "$commit" ] || { echo "HUBMIRROR_OC_MIRROR_SRC=$given is at $head, not at the pinned $line commit $commit" >&2; return 1; }
    fi
    echo "  source: $given (HUBMIRROR_OC_MIRROR_SRC)" >&2
    cp -a "$given/." "$work/src/"
  elif shared=$(shared_tarball "$tarball"); then
    echo "  source: $shared" >&2
    tar -xzf "$shared" -C "$work/src"
  elif command -v git >/dev/null; then
    echo "  source: git clone $upstream at $commit" >&2
    git -C "$work/src" init -q
    git -C "$work/src" remote add origin "$upstream"
    if ! git -C "$work/src" fetch -q --depth 1 origin "$commit" || ! git -C "$work/src" -c advice.detachedHead=false checkout -q FETCH_HEAD; then
      no_source "$line" "$tarball" "git fetch of $commit from $upstream failed"
      return 1
    fi
    if [ "$subdir" != . ]; then echo "$work/src/$subdir"; return; fi
  else
    no_source "$line" "$tarball" "git is not installed"
    return 1
  fi
  module_dir "$work/src" || { echo "no oc-mirror v2 module (go.mod of github.com/openshift/oc-mirror/v2) in the $line source" >&2; return 1; }
}

shared_tarball() {
  local d
  for d in "${shared_dirs[@]}"; do
    if [ -f "$d/$1" ]; then echo "$(cd "$d" && pwd)/$1"; return; fi
  done
  return 1
}

no_source() {
  cat >&2 <<EOF
cannot find the oc-mirror $1 source ($3). Give one of:
  HUBMIRROR_OC_MIRROR=/path/to/oc-mirror        an oc-mirror binary you already have (nothing is built)
  HUBMIRROR_OC_MIRROR_SRC=/path                 a folder holding $2, that tarball,
                                                or a checkout of $upstream at the pinned commit
  ../shared/oc-mirror/src/$2 beside the repository (or beside its main checkout)
  network access to $upstream (the pinned commit is fetched with git)
EOF
}

build_line() {
  local line=$1 commit=$2 version=$3 subdir=$4 tarball=$5 replace=$6
  local out="$cache/oc-mirror/$commit"
  if [ -x "$out/oc-mirror" ]; then
    say "cached: $out/oc-mirror"
    return
  fi
  command -v go >/dev/null || { echo "Go is required to build oc-mirror (https://go.dev/dl)" >&2; exit 1; }
  echo "building oc-mirror $line ($version) into $out (first time only; takes minutes)"
  local start; start=$(date +%s)
  mkdir -p "$cache/oc-mirror"
  local work; work=$(mktemp -d "$cache/oc-mirror/.build-$line-XXXXXX")
  # shellcheck disable=SC2064 # expand $work now: it is local
  trap "rm -rf '$work'" EXIT
  local mod; mod=$(fetch_source "$line" "$commit" "$subdir" "$tarball" "$work")
  local major=${version#v}; major=${major%%.*}
  local minor=${version#v*.}; minor=${minor%%.*}
  local pkg=github.com/openshift/oc-mirror/v2/internal/pkg/version
  local ldflags="-X $pkg.versionFromGit=$version -X $pkg.commitFromGit=${commit:0:8}"
  ldflags="$ldflags -X $pkg.majorFromGit=$major -X $pkg.minorFromGit=$minor -X $pkg.gitTreeState=clean"
  # The replaced module is verified by the checksum database like any new go.sum line;
  # microlib/simple comes from the committed file proxy and is verified against oc-mirror's go.sum.
  (cd "$mod" && go mod edit -replace "$replace" &&
    GOPROXY="file://$hack/oc-mirror/goproxy,$(go env GOPROXY)" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
      go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$work/oc-mirror" ./cmd/oc-mirror)
  mkdir -p "$out"
  mv "$work/oc-mirror" "$out/oc-mirror"
  rm -rf "$work"
  trap - EXIT
  echo "built oc-mirror $line in $(( $(date +%s) - start ))s"
}

wanted=${HUBMIRROR_OC_MIRROR_LINES:-$(awk '!/^#/ && NF == 6 { print $1 }' "$versions")}
for line in $wanted; do
  row=$(awk -v l="$line" '!/^#/ && NF == 6 && $1 == l' "$versions")
  [ -n "$row" ] || { echo "unknown oc-mirror line $line (hack/oc-mirror/versions)" >&2; exit 1; }
  # shellcheck disable=SC2086 # the row's fields are the arguments
  build_line $row
done
