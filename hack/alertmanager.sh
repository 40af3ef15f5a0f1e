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

apt_binary prometheus-alertmanager /usr/bin/prometheus-alertmanager "install Prometheus Alertmanager 0.25+ and set FERRY_ALERTMANAGER to its binary" /usr/bin/amtool
