#!/usr/bin/env bash
# Build the independent TWAMP peers used by the interop tests: perfSONAR
# twampd/twping/pfstore (owamp 5.2.3 + I2util 5.2.4) and nokia twampy 1.3.2.
# They are not part of this repository: the script needs a peers source
# directory holding build.sh and src/{owamp,i2util,twampy}.tar.gz (upstream:
# github.com/perfsonar/owamp, github.com/perfsonar/i2util, github.com/nokia/twampy),
# and stops with a message saying so when it is missing.
#
# Usage: bash scripts/peers.sh [DEST]      (default DEST: <repo>/.peers)
#
# Cached: DEST/.source-hash records a hash of build.sh and the source
# tarballs; when it matches and the binaries are there, nothing is rebuilt.
# Missing build tools are apt-get installed when running as root.
# Env: OTEL_TWAMP_SHARED  the directory whose peers/ subdirectory holds the
#                         sources (read-only; default: the "shared" directory
#                         beside the repository)
#      PEERS_FORCE=1      rebuild even if the cache matches
# The tests find the result through OTEL_TWAMP_PEERS or <repo>/.peers
# (README.md "Interop tests").
set -euo pipefail

say() { echo "peers.sh: $*"; }
die() { echo "peers.sh: error: $*" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${OTEL_TWAMP_SHARED:-"$REPO/../shared"}
no_sources() {  # what is missing; exit 2 (sources absent, nothing was built)
  {
    echo "peers.sh: error: the TWAMP peers sources are missing: $1."
    echo "peers.sh:   The interop peers (perfSONAR owamp 5.2.3 + I2util 5.2.4, nokia twampy 1.3.2) are built from a"
    echo "peers.sh:   peers source directory with build.sh and src/owamp.tar.gz, src/i2util.tar.gz, src/twampy.tar.gz"
    echo "peers.sh:   (upstream: github.com/perfsonar/owamp, github.com/perfsonar/i2util, github.com/nokia/twampy),"
    echo "peers.sh:   expected at <dir>/peers with <dir> = \$OTEL_TWAMP_SHARED or ../shared beside the repository."
    echo "peers.sh:   Provide it (OTEL_TWAMP_SHARED=<dir>), or skip this build and point the tests at prebuilt"
    echo "peers.sh:   peers with OTEL_TWAMP_PEERS=DIR (DIR/bin/twampd, DIR/bin/twping, DIR/twampy/src)."
  } >&2
  exit 2
}
[ -d "$SHARED/peers" ] || no_sources "no directory $SHARED/peers"
SHARED=$(cd "$SHARED" && pwd)
BUILD_SH="$SHARED/peers/build.sh"
[ -f "$BUILD_SH" ] || no_sources "no $BUILD_SH"
for t in owamp i2util twampy; do
  [ -f "$SHARED/peers/src/$t.tar.gz" ] || no_sources "no $SHARED/peers/src/$t.tar.gz"
done

DEST_ARG=${1:-"$REPO/.peers"}
case $DEST_ARG in /*) ;; *) DEST_ARG="$PWD/$DEST_ARG" ;; esac
mkdir -p "$DEST_ARG"
DEST=$(cd "$DEST_ARG" && pwd)
case $DEST in /|"$HOME"|"$REPO"|"$SHARED"|"$SHARED"/*) die "refusing to use $DEST as the peers dir" ;; esac

# one build at a time per DEST (tests run in parallel may call this too)
if command -v flock >/dev/null; then
  exec 9>"$DEST/.lock"
  flock 9
fi

# --- cache key: build.sh + every source tarball (name and content) ---------
source_hash() {
  ( cd "$SHARED/peers"
    for f in build.sh src/*; do [ -f "$f" ] && printf '%s  %s\n' "$(sha256sum < "$f" | cut -d' ' -f1)" "$f"; done
  ) | sha256sum | cut -d' ' -f1
}
HASH=$(source_hash)

have_build() {
  local b
  for b in twampd twping pfstore; do [ -x "$DEST/bin/$b" ] || return 1; done
  # twampy is part of the build too (test/interop/twampy.test.ts): a cache without it is incomplete.
  [ -f "$DEST/twampy/src/twampy/__main__.py" ] || return 1
}

if [ "${PEERS_FORCE:-0}" != 1 ] && [ -f "$DEST/.source-hash" ] \
   && [ "$(cat "$DEST/.source-hash")" = "$HASH" ] && have_build; then
  say "up to date in $DEST (source hash ${HASH:0:12}); skipping build"
  exit 0
fi

# --- build dependencies -----------------------------------------------------
missing_tools() {
  local t out=()
  for t in gcc make autoreconf aclocal automake libtoolize tar; do
    command -v "$t" >/dev/null || out+=("$t")
  done
  echo "${out[*]:-}"
}

APT_UPDATED=0
apt_install() {  # pkgs...; apt-get update only if the install fails without it
  export DEBIAN_FRONTEND=noninteractive
  if apt-get install -y -q --no-install-recommends "$@"; then return 0; fi
  [ $APT_UPDATED = 1 ] && return 1
  echo "peers.sh: apt-get install failed; running apt-get update and retrying" >&2
  apt-get update -q || { sleep 5; apt-get update -q; } || return 1
  APT_UPDATED=1
  apt-get install -y -q --no-install-recommends "$@"
}

miss=$(missing_tools)
if [ -n "$miss" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "missing build tools: $miss; installing build-essential autoconf automake libtool"
    aptlog=$(mktemp "${TMPDIR:-/tmp}/peers-apt.XXXXXX")
    if ! apt_install build-essential autoconf automake libtool >"$aptlog" 2>&1; then
      tail -n 30 "$aptlog" >&2
      die "apt-get install of build-essential autoconf automake libtool failed"
    fi
    rm -f "$aptlog"
    miss=$(missing_tools)
    [ -z "$miss" ] || die "still missing after apt-get install: $miss"
  else
    die "missing build tools: $miss. Install them: apt-get install -y build-essential autoconf automake libtool"
  fi
else
  say "build tools present"
fi
if ! python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "peers.sh: warning: python3 >= 3.11 not found; twampy will be installed but cannot run" >&2
fi

# --- build ------------------------------------------------------------------
# build.sh reuses DEST/src/<name> in preference to the tarballs, so a stale
# tree must go before a rebuild. Keep run/ (state of running twampds).
if [ -n "$(ls -A "$DEST" 2>/dev/null | grep -vx -e .lock -e run || true)" ]; then
  if [ ! -f "$DEST/.source-hash" ] && [ ! -f "$DEST/build.log" ]; then
    die "$DEST is not empty and was not made by this script; pick another DEST"
  fi
  say "removing previous build in $DEST (source changed or incomplete)"
  find "$DEST" -mindepth 1 -maxdepth 1 ! -name run ! -name .lock -exec rm -rf {} +
fi

say "building peers into $DEST (about 20-60 s; log: $DEST/build.log)"
start=$(date +%s)
if ! bash "$BUILD_SH" "$DEST" > "$DEST/build-driver.log" 2>&1; then
  cat "$DEST/build-driver.log" >&2
  if [ -s "$DEST/build.log" ]; then
    echo "peers.sh: ---- last 40 lines of $DEST/build.log ----" >&2
    tail -n 40 "$DEST/build.log" >&2
  fi
  die "peer build failed (see above and $DEST/build.log)"
fi
sed 's/^/  /' "$DEST/build-driver.log"
have_build || die "build.sh succeeded but $DEST/bin/{twampd,twping,pfstore} are missing"
echo "$HASH" > "$DEST/.source-hash"
tw="no twampy"
[ -f "$DEST/twampy/src/twampy/__main__.py" ] && tw="twampy: PYTHONPATH=$DEST/twampy/src"
say "built in $(( $(date +%s) - start )) s: $DEST/bin/{twampd,twping,pfstore}; $tw"
