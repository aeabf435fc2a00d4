#!/usr/bin/env bash
# The whole test suite, as README.md gives it and .ci/run calls it. Starts what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh
echo "== go vet"
go vet ./...
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
echo "== go test -race (whole-state invariants on)"
go test -race -count=1 -timeout 20m ./...
