#!/usr/bin/env bash
# Builds HashiCorp Vault (run as `vault server -dev` by the secrets tests) from the Go module
# proxy into a cache outside the repository, keyed by its version, and prints the directory.
# A warm cache returns at once; a cold build takes ~15-20 minutes on 2 cores, several GB of
# module downloads and ~5 GB of memory.
set -euo pipefail

# Keep in step with tools/testbin/vault/go.mod and vaultVersion in internal/testenv/vault.go.
VAULT_VERSION=v1.21.1

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/testbin-lib.sh
. "$root/hack/testbin-lib.sh"
dir=${FERRY_VAULT_DIR:-$testbin_cache/testbin/vault-$VAULT_VERSION}
testbin_begin "$dir"

log "building vault $VAULT_VERSION (github.com/hashicorp/vault)"
start=$SECONDS
(cd "$root/tools/testbin/vault" &&
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/.vault.tmp" github.com/hashicorp/vault)
mv "$dir/.vault.tmp" "$dir/vault"
log "built vault in $((SECONDS - start))s"

testbin_end
