#!/usr/bin/env bash
# Prints the path of a real Prometheus Alertmanager for Ferry's incident tests: $FERRY_ALERTMANAGER
# when set, else /usr/bin/prometheus-alertmanager from Debian's prometheus-alertmanager package
# (which also ships amtool), installed with apt-get when it is missing. Only the path goes to
# stdout. On a machine whose init system starts services on install, the package's own
# service comes up too (port 9093); the tests never use it, they start their own on free ports.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/testbin-lib.sh
. "$root/hack/testbin-lib.sh"

if [ -n "${FERRY_ALERTMANAGER:-}" ]; then
  if [ ! -x "$FERRY_ALERTMANAGER" ]; then
    log "FERRY_ALERTMANAGER=$FERRY_ALERTMANAGER is not an executable file"
    exit 1
  fi
  echo "$FERRY_ALERTMANAGER"
  exit 0
fi

pkg=prometheus-alertmanager
bin=/usr/bin/prometheus-alertmanager
installed() { [ -x "$bin" ] && [ -x /usr/bin/amtool ]; }

if installed; then
  echo "$bin"
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  log "$bin is missing and there is no apt-get to install $pkg; install Prometheus Alertmanager 0.25+ and set FERRY_ALERTMANAGER to its binary"
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
exec 9>"$testbin_cache/alertmanager.lock"
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
  log "$pkg installed but $bin or /usr/bin/amtool is missing"
  exit 1
fi
echo "$bin"
