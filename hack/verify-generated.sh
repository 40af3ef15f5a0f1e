#!/usr/bin/env bash
# Fails when the generated deepcopy code, CRDs or API reference differ from what `make generate` writes from api/,
# so a change to the Go types cannot land without its CRD.
set -euo pipefail
generated() { find api -name 'zz_generated.*.go'; find config/crd/bases -name '*.yaml'; echo docs/reference/api.md; }
before=$(generated | sort | xargs -r sha256sum)
make --no-print-directory -s generate
after=$(generated | sort | xargs -r sha256sum)
if [ "$before" != "$after" ]; then
  echo "generated files were out of date (make generate has now rewritten them; commit the result):"
  diff <(echo "$before") <(echo "$after") || true
  exit 1
fi
