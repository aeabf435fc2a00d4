package grpcapi

import (
	"context"
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// Domain is the ErrorInfo domain of every tpwallet error; the reason is the api.md code.
const Domain = "tpwallet.dev"

// retryDelay is the RetryInfo of retryable refusals, REST's Retry-After: 1.
const retryDelay = time.Second

// codeOf is the one table from api.md codes to gRPC codes (docs/grpc.md). It follows the
// HTTP status of each code: 400 InvalidArgument, 401 Unauthenticated, 403 PermissionDenied,
// 404 NotFound, 409 AlreadyExists (an id taken) or FailedPrecondition (a state) or Aborted
// (idempotency_in_flight, a concurrency conflict worth retrying), 413 and 429
// ResourceExhausted, 422 FailedPrecondition (the ledger's rules refused it in its current
// state), 503 Unavailable, 500 Internal.
var codeOf = map[ledger.Code]codes.Code{
	ledger.CodeInvalidRequest:       codes.InvalidArgument,
	ledger.CodeBatchTooLarge:        codes.InvalidArgument,
	ledger.CodeUnsupportedMediaType: codes.InvalidArgument,
	ledger.CodeUnauthenticated:      codes.Unauthenticated,
	ledger.CodeForbidden:            codes.PermissionDenied,
	ledger.CodeNotFound:             codes.NotFound,
	ledger.CodeAccountNotFound:      codes.NotFound,
	ledger.CodeTransferNotFound:     codes.NotFound,
	ledger.CodeWebhookNotFound:      codes.NotFound,
	ledger.CodeMethodNotAllowed:     codes.Unimplemented,
	ledger.CodeAccountExists:        codes.AlreadyExists,
	ledger.CodeAssetExists:          codes.AlreadyExists,
	ledger.CodeTransferExists:       codes.AlreadyExists,
	ledger.CodeTransferNotPending:   codes.FailedPrecondition,
	ledger.CodeHoldExpired:          codes.FailedPrecondition,
	ledger.CodeIdempotencyInFlight:  codes.Aborted,
	ledger.CodeRequestTooLarge:      codes.ResourceExhausted,
	ledger.CodeIdempotencyKeyReused: codes.FailedPrecondition,
	ledger.CodeAssetUnknown:         codes.FailedPrecondition,
	ledger.CodeAccountFrozen:        codes.FailedPrecondition,
	ledger.CodeAccountClosed:        codes.FailedPrecondition,
	ledger.CodeInsufficientFunds:    codes.FailedPrecondition,
	ledger.CodeAssetMismatch:        codes.FailedPrecondition,
	ledger.CodeSameAccount:          codes.FailedPrecondition,
	ledger.CodeAmountOverflow:       codes.FailedPrecondition,
	ledger.CodeAmountExceedsHold:    codes.FailedPrecondition,
	ledger.CodeBatchFailed:          codes.FailedPrecondition,
	ledger.CodeWebhookURLForbidden:  codes.FailedPrecondition,
	ledger.CodeRateLimited:          codes.ResourceExhausted,
	ledger.CodeInternal:             codes.Internal,
	ledger.CodeOverloaded:           codes.Unavailable,
	ledger.CodeNotLeader:            codes.Unavailable,
	ledger.CodeUnavailable:          codes.Unavailable,
}

// CodeOf returns the gRPC code of an api.md code (Internal for an unknown one).
func CodeOf(c ledger.Code) codes.Code {
	if g, ok := codeOf[c]; ok {
		return g
	}
	return codes.Internal
}

// retryable reports whether a refusal is worth retrying as it is, after RetryInfo's delay:
// REST's 503 and 429 answers, the ones that carry Retry-After.
func retryable(c ledger.Code) bool {
	switch c {
	case ledger.CodeOverloaded, ledger.CodeNotLeader, ledger.CodeUnavailable, ledger.CodeRateLimited:
		return true
	}
	return false
}

// keep says whether an answer may be stored for idempotent replay: as REST's keep, not
// for 5xx, 429 or idempotency_in_flight answers.
func keep(c ledger.Code) bool {
	return !retryable(c) && c != ledger.CodeInternal && c != ledger.CodeIdempotencyInFlight
}

// statusOf is the status of a rejection: the gRPC code of c, the detail as its message,
// an ErrorInfo whose reason is c (metadata adds to it: "leader" in not_leader answers),
// and a RetryInfo when retrying may help.
func statusOf(c ledger.Code, detail string, metadata map[string]string) *status.Status {
	st := status.New(CodeOf(c), detail)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: string(c), Domain: Domain, Metadata: metadata}}
	if retryable(c) {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay)})
	}
	return withDetails(st, details...)
}

// batchFailed is the status of an atomic batch that applied nothing: batch_failed with a
// BatchErrors detail listing every failed item.
func batchFailed(errs []*tpwalletv1.BatchError) *status.Status {
	st := statusOf(ledger.CodeBatchFailed, "no transfer of the batch was applied", nil)
	return withDetails(st, &tpwalletv1.BatchErrors{Errors: errs})
}

// errorStatus turns any error into a status; anything not a *ledger.Error (or a context
// error) is internal and its text is not shown.
func errorStatus(err error) *status.Status {
	var nl *service.NotLeaderError
	if errors.As(err, &nl) {
		var md map[string]string
		if nl.Leader != "" {
			md = map[string]string{"leader": nl.Leader}
		}
		return statusOf(ledger.CodeNotLeader, nl.Unwrap().(*ledger.Error).Detail, md)
	}
	var e *ledger.Error
	switch {
	case errors.As(err, &e):
		return statusOf(e.Code, e.Detail, nil)
	case errors.Is(err, engine.ErrUnavailable):
		return statusOf(ledger.CodeUnavailable, "the store cannot be reached; retry shortly", nil)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err)
	}
	return statusOf(ledger.CodeInternal, "an internal error occurred", nil)
}

// withDetails adds details to st. Marshalling them fails only on a string that is not
// UTF-8, which the API never stores; st is then answered without them.
func withDetails(st *status.Status, details ...protoadapt.MessageV1) *status.Status {
	if d, err := st.WithDetails(details...); err == nil {
		return d
	}
	return st
}

// errorOf is errorStatus as an error, for a handler to return.
func errorOf(err error) error { return errorStatus(err).Err() }

// fail is statusOf as an error.
func fail(c ledger.Code, detail string) error { return statusOf(c, detail, nil).Err() }

func invalid(detail string) error { return fail(ledger.CodeInvalidRequest, detail) }
