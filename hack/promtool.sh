#!/usr/bin/env bash
# Build promtool (Prometheus' rule and config checker) from its Go module source.
#
# Produces
#   ${AUTH0_ROTATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/auth0-rotator}/promtool-<version>/bin/promtool
# The version comes from hack/versions.env (PROMETHEUS_VERSION). Its cache
# directory is separate from the Kubernetes binaries', so a new promtool never
# rebuilds Kubernetes. The test suite runs `promtool test rules` on the chart's
# PrometheusRule (tests/chart/test_alert_rules.py).
#
# Usage: hack/promtool.sh          build if missing, print the binary's path
#        hack/promtool.sh --print  print the binary's path, build nothing
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${AUTH0_ROTATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/auth0-rotator}"
root="$cache_root/promtool-${PROMETHEUS_VERSION}"
binary="$root/bin/promtool"

if [[ "${1:-}" == "--print" || -x "$binary" && -f "$root/promtool.stamp" ]]; then
  echo "$binary"
  exit 0
fi

log() { printf '[promtool %4ds] %s\n' "$SECONDS" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
command -v go >/dev/null || die "go is not on PATH; install Go >= 1.26 (see CONTRIBUTING.md)"

mkdir -p "$root/bin"
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -trimpath"
log "promtool $PROMETHEUS_VERSION: go install (cold: a few minutes)"
# `go install pkg@version` builds in module mode with the module's own go.mod
# (Prometheus has no replace directives, so no wrapper module is needed).
if ! GOBIN="$root/bin" go install -ldflags "-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}" >"$root/build.log" 2>&1; then
  tail -n 40 "$root/build.log" >&2
  die "go install promtool failed (full log: $root/build.log)"
fi
"$binary" --version >/dev/null 2>&1 || die "the built promtool does not run"
touch "$root/promtool.stamp"
log "promtool $PROMETHEUS_VERSION: built"
echo "$binary"
