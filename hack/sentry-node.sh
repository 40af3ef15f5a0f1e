#!/usr/bin/env bash
# Prints the directory of the official Sentry SDK for Node.js, installed from the npm registry
# with `npm ci` from internal/app/testdata/sentry-node/package-lock.json (pinned versions), for
# the error tracker's tests: $FERRY_SENTRY_NODE when set, else a cache directory keyed by the
# lock file's hash. Needs Node.js 20.19+ and npm; installs Debian's nodejs and npm with apt-get
# when node is missing. Only the path goes to stdout.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/testbin-lib.sh
. "$root/hack/testbin-lib.sh"

if [ -n "${FERRY_SENTRY_NODE:-}" ]; then
  if [ ! -d "$FERRY_SENTRY_NODE/node_modules/@sentry/node" ]; then
    log "FERRY_SENTRY_NODE=$FERRY_SENTRY_NODE has no node_modules/@sentry/node"
    exit 1
  fi
  echo "$FERRY_SENTRY_NODE"
  exit 0
fi

src=$root/internal/app/testdata/sentry-node
sum=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-12)
testbin_begin "$testbin_cache/testbin/sentry-node-$sum"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if ! command -v apt-get >/dev/null || [ "$(id -u)" -ne 0 ]; then
    log "node and npm are missing; install Node.js 20.19+ with npm, or set FERRY_SENTRY_NODE"
    exit 1
  fi
  log "installing nodejs and npm with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 install -y --no-install-recommends nodejs npm >&2 ||
    { apt-get -qq update >&2 && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends nodejs npm >&2; }
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; then
  log "node $(node --version) is too old for @sentry/node; install Node.js 20.19+ or set FERRY_SENTRY_NODE"
  exit 1
fi
cp "$src/package.json" "$src/package-lock.json" "$testbin_dir/"
log "installing @sentry/node with npm ci into $testbin_dir"
(cd "$testbin_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
testbin_end
