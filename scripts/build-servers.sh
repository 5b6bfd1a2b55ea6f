#!/usr/bin/env bash
# Builds the real servers the tests run against, from the Go module proxy, at the
# versions the stack pins, and caches them outside the repository.
#
#   scripts/build-servers.sh loki     # loki + logcli (same module, same version)
#   scripts/build-servers.sh alloy
#
# Prints the cached binary directory on stdout. Binaries are keyed by version
# under ${OBS_CACHE_DIR:-~/.cache/obs}; a warm cache returns at once.
set -euo pipefail

LOKI_VERSION=3.6.2
# The stack pins Alloy v1.9.2; the module proxy here serves no v1.9 and the
# newest version that builds from it is v1.1.1 (../shared/docs/REAL_SERVERS.md).
# The harness rewrites the one thing in stack/alloy-config.alloy v1.1.1 cannot
# read (test/support/alloy.ts).
ALLOY_VERSION=1.1.1
cache=${OBS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/obs}
mkdir -p "$cache"

log() { printf '[build-servers] %s\n' "$*" >&2; }

# Tests, the sandbox and CI may ask for the same build at once: one builds,
# the others wait for it and then find it cached.
lock() { exec 9>"$cache/.build-$1.lock"; flock 9; }

# Module zips on the proxy leave out nested modules that go.mod replaces with a
# local directory (loki's pkg/push, alloy's syntax). Dropping that replace makes
# Go fetch the required version from the proxy instead. The checksum database
# is not reachable from every machine here; the module proxy is the trusted
# source, so the lookup is off for these builds only.
export GOFLAGS=-mod=mod GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0

fetch_module() { # module version dest
  local dir
  dir=$(go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || { log "module $1@$2 not downloaded"; exit 1; }
  rm -rf "$3"; mkdir -p "$(dirname "$3")"
  cp -r "$dir" "$3"; chmod -R u+w "$3"
}

build_loki() {
  local out="$cache/loki-$LOKI_VERSION"
  lock loki
  if [ -x "$out/loki" ] && [ -x "$out/logcli" ]; then echo "$out"; return; fi
  local src="$cache/src/loki-$LOKI_VERSION"
  log "building Loki $LOKI_VERSION and logcli from the module proxy (cold: many minutes)"
  fetch_module github.com/grafana/loki/v3 "v$LOKI_VERSION" "$src"
  (
    cd "$src"
    go mod edit -dropreplace=github.com/grafana/loki/pkg/push
    local pkg=github.com/grafana/loki/v3/pkg/util/build
    local ldflags="-s -w -X $pkg.Version=$LOKI_VERSION -X $pkg.Revision=v$LOKI_VERSION -X $pkg.Branch=release-3.6.x -X $pkg.BuildUser=obs-ci"
    mkdir -p "$out.tmp"
    go build -tags netgo -ldflags "$ldflags" -o "$out.tmp/loki" ./cmd/loki
    go build -tags netgo -ldflags "$ldflags" -o "$out.tmp/logcli" ./cmd/logcli
  )
  rm -rf "$out"; mv "$out.tmp" "$out"; rm -rf "$src"
  echo "$out"
}

build_alloy() {
  local out="$cache/alloy-v$ALLOY_VERSION"
  lock alloy
  if [ -x "$out/alloy" ]; then echo "$out"; return; fi
  local src="$cache/src/alloy-$ALLOY_VERSION"
  log "building Alloy v$ALLOY_VERSION from the module proxy (cold: a long build)"
  fetch_module github.com/grafana/alloy "v$ALLOY_VERSION" "$src"
  (
    cd "$src"
    go mod edit -dropreplace=github.com/grafana/alloy/syntax
    local pkg=github.com/grafana/alloy/internal/build
    mkdir -p "$out.tmp"
    go build -ldflags "-s -w -X $pkg.Version=v$ALLOY_VERSION -X $pkg.Branch=release/v1.1 -X $pkg.BuildUser=obs-ci" \
      -o "$out.tmp/alloy" .
  )
  rm -rf "$out"; mv "$out.tmp" "$out"; rm -rf "$src"
  echo "$out"
}

case "${1:-}" in
  loki) build_loki ;;
  alloy) build_alloy ;;
  *) echo "usage: $0 loki|alloy" >&2; exit 2 ;;
esac
