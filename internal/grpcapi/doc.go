// Package grpcapi is the gRPC API (proto/tpwallet/v1, docs/grpc.md): the REST API of
// api.md mirrored over the same service layer, with REST's scopes, idempotency and error
// codes, plus a bidirectional stream of transfers that joins what arrives into large
// ledger batches, and a server stream of the journal's events.
//
// It holds the handlers, the authentication and limit interceptors, the code table from
// api.md codes to gRPC codes, and the health service that mirrors /readyz. The generated
// code is in the public package tpwalletv1, which clients import; this package is not.
package grpcapi
