#!/usr/bin/env bash
# Build the local Kubernetes stand-in from Go module sources.
#
# Produces kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
# (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3), kwok and helm v3 into
#   ${AUTH0_ROTATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/auth0-rotator}/<versions>/bin
# Versions come from hack/versions.env. Each component is built in its own
# small wrapper module under <versions>/src/ and stamped when done, so a
# second run only checks the stamps (seconds).
#
# Usage: hack/kube-bins.sh          build what is missing, print the bin dir
#        hack/kube-bins.sh --print  print the bin dir, build nothing
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${AUTH0_ROTATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/auth0-rotator}"
root="$cache_root/kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
bin="$root/bin"

if [[ "${1:-}" == "--print" ]]; then
  echo "$bin"
  exit 0
fi

start_all=$SECONDS
step_start=$SECONDS
log() { printf '[kube-bins %4ds] %s\n' "$((SECONDS - start_all))" "$*" >&2; }
step() { step_start=$SECONDS; log "$*"; }
done_step() { log "  done in $((SECONDS - step_start))s"; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH; install Go >= 1.26 (see README)"
mkdir -p "$bin" "$root/src"

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -trimpath"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# Run a build step in a wrapper dir; on failure show the tail of its log.
run_logged() {
  local logfile="$1"; shift
  if ! "$@" >"$logfile" 2>&1; then
    tail -n 40 "$logfile" >&2
    die "'$*' failed (full log: $logfile)"
  fi
}

stamp_ok() { [[ -f "$root/src/$1.stamp" ]] && for b in "${@:2}"; do [[ -x "$bin/$b" ]] || return 1; done; }

# --- Kubernetes: apiserver, controller-manager, scheduler, kubectl ---------
build_kube() {
  local names=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  if stamp_ok kube "${names[@]}"; then log "kubernetes $KUBE_VERSION: cached"; return; fi
  step "kubernetes $KUBE_VERSION: preparing wrapper module"
  local dir="$root/src/kube"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@$KUBE_VERSION from the module proxy"
  local minor patch staging_ver
  minor="$(cut -d. -f2 <<<"$KUBE_VERSION")"
  patch="$(cut -d. -f3 <<<"$KUBE_VERSION")"
  staging_ver="v0.${minor}.${patch}"
  {
    echo "module local/kubebins"
    echo
    grep -E '^go [0-9]' "$gomod"
    grep -E '^godebug ' "$gomod" || true
    echo
    # Every staging module named by the release's own go.mod, pinned to its
    # published tag; never a hard-coded list.
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" |
      awk -v v="$staging_ver" '{print "replace " $1 " => " $1 " " v}'
  } >go.mod
  local nrep
  nrep="$(grep -c '^replace' go.mod)"
  (( nrep > 20 )) || die "found only $nrep staging replaces in $gomod"
  cat >tools.go <<EOF
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
  run_logged "$dir/get.log" go get "k8s.io/kubernetes@$KUBE_VERSION"
  run_logged "$dir/tidy.log" go mod tidy -e
  done_step
  step "kubernetes $KUBE_VERSION: compiling ${names[*]} (the long step, ~10-25 min cold)"
  local x=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    x+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date -X $pkg.gitCommit=0000000000000000000000000000000000000000"
  done
  run_logged "$dir/build.log" go build -ldflags "-s -w$x" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  [[ "$("$bin/kubectl" version --client 2>&1)" == *"$KUBE_VERSION"* ]] ||
    die "kubectl does not report $KUBE_VERSION; version ldflags did not apply"
  touch "$root/src/kube.stamp"
  done_step
}

# --- etcd 3.6 ---------------------------------------------------------------
build_etcd() {
  if stamp_ok etcd etcd; then log "etcd $ETCD_VERSION: cached"; return; fi
  step "etcd $ETCD_VERSION: wrapper module + compile"
  local dir="$root/src/etcd"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  local gomod
  gomod="$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$gomod" ]] || die "could not download go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  {
    echo "module local/etcdbin"
    echo
    grep -E '^go [0-9]' "$gomod"
    echo
    # The server's go.mod replaces its sibling modules with ../ paths.
    grep -E '^\s*go\.etcd\.io/etcd/[a-z0-9/]+ => \.\./' "$gomod" |
      awk -v v="$ETCD_VERSION" '{print "replace " $1 " => " $1 " " v}'
  } >go.mod
  cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
  run_logged "$dir/get.log" go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  run_logged "$dir/tidy.log" go mod tidy -e
  run_logged "$dir/build.log" go build -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
  [[ "$("$bin/etcd" --version 2>&1)" == *"${ETCD_VERSION#v}"* ]] || die "built etcd does not report $ETCD_VERSION"
  touch "$root/src/etcd.stamp"
  done_step
}

# --- kwok (fake nodes and pods) -------------------------------------------
build_kwok() {
  if stamp_ok kwok kwok && [[ -s "$root/kwok-stages.yaml" ]]; then log "kwok $KWOK_VERSION: cached"; return; fi
  step "kwok $KWOK_VERSION: compile"
  local dir="$root/src/kwok"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  run_logged "$dir/build.log" env GOBIN="$bin" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  # kwok needs Stage objects to act: take kwok's own "fast" node/pod stages
  # and the node heartbeat from its module source, so nothing is vendored.
  local src
  src="$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [[ -d "$src" ]] || die "could not locate the kwok $KWOK_VERSION module source"
  local out="$root/kwok-stages.yaml" d f
  : >"$out"
  for d in node/fast node/heartbeat pod/fast; do
    for f in $(sed -n 's/^- \(.*\.yaml\)$/\1/p' "$src/kustomize/stage/$d/kustomization.yaml"); do
      printf -- '---\n' >>"$out"
      cat "$src/kustomize/stage/$d/$f" >>"$out"
    done
  done
  grep -q 'kind: Stage' "$out" || die "no kwok stages found in $src/kustomize/stage"
  touch "$root/src/kwok.stamp"
  done_step
}

# --- helm v3 -----------------------------------------------------------------
build_helm() {
  if stamp_ok helm helm; then log "helm $HELM_VERSION: cached"; return; fi
  step "helm $HELM_VERSION: compile"
  local dir="$root/src/helm"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  local minor
  minor="$(cut -d. -f2 <<<"$KUBE_VERSION")"
  # Without these, lint/template assume Kubernetes 1.20.
  local x="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  x+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  x+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  run_logged "$dir/build.log" env GOBIN="$bin" go install -ldflags "-s -w $x" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  [[ "$("$bin/helm" version --short 2>&1)" == *"$HELM_VERSION"* ]] || die "helm does not report $HELM_VERSION"
  touch "$root/src/helm.stamp"
  done_step
}

log "cache: $root"
build_etcd
build_kwok
build_helm
build_kube
log "all binaries ready in $bin ($((SECONDS - start_all))s)"
echo "$bin"
