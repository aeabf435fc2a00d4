#!/usr/bin/env bash
# Generates the Go code of the protobuf definitions in proto/ (docs/grpc.md):
#
#   scripts/proto.sh           regenerate proto/**/*.pb.go in place (commit the result)
#   scripts/proto.sh --check   regenerate into a temporary directory and fail if the
#                              committed code differs (scripts/test.sh runs this)
#
# buf compiles the .proto files itself (no protoc needed) and runs protoc-gen-go and
# protoc-gen-go-grpc, as buf.gen.yaml says. All three are pinned here and installed with
# `go install` into .tools/<name>-<version>/ in the repository (gitignored), once per
# version: the first run on a machine builds them (a few minutes for buf), later runs take
# seconds. TPWALLET_PROTO_TOOLS=/dir puts the tools elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=v1.75.0                # github.com/bufbuild/buf
PROTOC_GEN_GO_VERSION=v1.36.12     # google.golang.org/protobuf, as in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2  # google.golang.org/grpc/cmd/protoc-gen-go-grpc

tools="${TPWALLET_PROTO_TOOLS:-$PWD/.tools}"

# tool NAME PACKAGE VERSION: makes sure $tools/NAME-VERSION/NAME exists, and puts its
# directory on PATH.
tool() {
  local dir="$tools/$1-$3"
  if [ ! -x "$dir/$1" ]; then
    echo "proto.sh: installing $2@$3 into $dir" >&2
    mkdir -p "$dir"
    GOBIN="$dir" go install "$2@$3"
  fi
  PATH="$dir:$PATH"
}
tool buf github.com/bufbuild/buf/cmd/buf "$BUF_VERSION"
tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
export PATH

buf lint
case "${1:-}" in
"")
  buf generate
  ;;
--check)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  buf generate -o "$tmp"
  # Every generated file must be committed as generated, and no stale one may remain.
  diff -r -x '*.proto' proto "$tmp/proto" >&2 || {
    echo "proto.sh: the generated code in proto/ is not what proto/ generates: run scripts/proto.sh and commit" >&2
    exit 1
  }
  echo "ok generated protobuf code is up to date"
  ;;
*)
  echo "usage: scripts/proto.sh [--check]" >&2
  exit 2
  ;;
esac
