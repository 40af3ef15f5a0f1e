#!/usr/bin/env bash
# Builds HashiCorp Vault (run as `vault server -dev` by the secrets tests) from the Go module
# proxy into a cache outside the repository, keyed by its version, and prints the directory.
# A warm cache returns at once; a cold build takes ~15-20 minutes on 2 cores, several GB of
# module downloads and ~5 GB of memory.
set -euo pipefail

# Keep in step with tools/testbin/vault/go.mod and vaultVersion in internal/testenv/vault.go.
VAULT_VERSION=v1.21.1

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${FERRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry}
dir=${FERRY_VAULT_DIR:-$cache/testbin/vault-$VAULT_VERSION}

complete() { [ -f "$dir/.complete" ]; }

if complete; then
  echo "$dir"
  exit 0
fi

mkdir -p "$dir"
# One builder at a time: parallel `make test` runs must not link vault twice.
exec 9>"$dir/.lock"
flock 9
if complete; then
  echo "$dir"
  exit 0
fi

log() { printf 'testbin: %s\n' "$*" >&2; }

log "building vault $VAULT_VERSION (github.com/hashicorp/vault)"
start=$SECONDS
(cd "$root/tools/testbin/vault" &&
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/.vault.tmp" github.com/hashicorp/vault)
mv "$dir/.vault.tmp" "$dir/vault"
log "built vault in $((SECONDS - start))s"

touch "$dir/.complete"
echo "$dir"
