#!/usr/bin/env bash
# The TypeScript SDK (sdk/typescript): install exactly the locked dev dependencies, check that
# src/schema.ts is what openapi-typescript makes of openapi.yaml, build, check the npm
# package, and run the tests against a real `tpwallet serve` built here once.
# Called by scripts/test.sh; run it alone after changing openapi.yaml or the SDK.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd sdk/typescript
echo "-- npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "-- generated types up to date (npm run generate rewrites src/schema.ts)"
npm run --silent check-generated
echo "-- build"
npm run --silent build
echo "-- npm pack --dry-run"
npm pack --dry-run --json --ignore-scripts >"$tmp/pack.json"
for f in dist/index.js dist/index.d.ts dist/client.js dist/schema.d.ts README.md package.json; do
  grep -q "\"path\": \"$f\"" "$tmp/pack.json" || { echo "npm pack lacks $f" >&2; exit 1; }
done
if grep -q '"path": "src/\|"path": "test/\|"path": "build/' "$tmp/pack.json"; then
  echo "npm pack holds sources or tests" >&2; exit 1
fi
echo "-- the packed package installs and imports"
npm pack --silent --ignore-scripts --pack-destination "$tmp" >/dev/null
mkdir "$tmp/consumer"
(cd "$tmp/consumer" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "$tmp"/tpwallet-sdk-*.tgz &&
  node --input-type=module -e '
    import { Client, TpwalletError, amount } from "@tpwallet/sdk";
    if (typeof Client !== "function" || typeof TpwalletError !== "function" || amount(5n) !== "5") process.exit(1);')
echo "-- tests against tpwallet serve"
(cd "$root" && go build -o "$tmp/tpwallet" ./cmd/tpwallet)
TPWALLET_BIN="$tmp/tpwallet" npm test --silent
