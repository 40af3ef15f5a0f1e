#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium for the panel's browser tests: $FERRY_CHROMIUM
# when set, else /usr/bin/chromium from Debian's chromium package, installed with apt-get when
# it is missing. Only the path goes to stdout.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/testbin-lib.sh
. "$root/hack/testbin-lib.sh"

if [ -n "${FERRY_CHROMIUM:-}" ]; then
  if [ ! -x "$FERRY_CHROMIUM" ]; then
    log "FERRY_CHROMIUM=$FERRY_CHROMIUM is not an executable file"
    exit 1
  fi
  echo "$FERRY_CHROMIUM"
  exit 0
fi

pkg=chromium
bin=/usr/bin/chromium
installed() { [ -x "$bin" ]; }

if installed; then
  echo "$bin"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  log "$bin is missing and there is no apt-get to install $pkg; install Chromium or Chrome and set FERRY_CHROMIUM to its binary"
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    log "$bin is missing; installing $pkg needs root: run \"sudo apt-get install $pkg\""
    exit 1
  fi
  sudo=(sudo -n)
fi

# Parallel `make test` and `make bench` would otherwise race for dpkg's lock, and the loser
# would fail instead of finding the package installed.
mkdir -p "$testbin_cache"
exec 9>"$testbin_cache/chromium.lock"
flock 9
if installed; then
  echo "$bin"
  exit 0
fi

apt() {
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 "$@" >&2
}
log "installing $pkg with apt-get"
# A fresh machine may have no package lists yet, or stale ones naming versions the mirror
# dropped; only then is `apt-get update` worth its time.
if ! apt install -y --no-install-recommends "$pkg"; then
  log "retrying after apt-get update"
  apt update
  apt install -y --no-install-recommends "$pkg"
fi
if ! installed; then
  log "$pkg installed but $bin is missing"
  exit 1
fi
echo "$bin"
