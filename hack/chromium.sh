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

apt_binary chromium /usr/bin/chromium "install Chromium or Chrome and set FERRY_CHROMIUM to its binary"
