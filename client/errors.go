package client

import (
	"errors"
	"fmt"
	"time"
)

// Code is the stable, machine-readable reason of a rejection: the "code" of an api.md
// problem (docs/api-errors.md lists each with its HTTP status). Codes are added, never
// renamed; a client must treat a code it does not know like any other error of its status.
type Code string

// Every code of api.md.
const (
	CodeInvalidRequest       Code = "invalid_request"
	CodeBatchTooLarge        Code = "batch_too_large"
	CodeUnauthenticated      Code = "unauthenticated"
	CodeForbidden            Code = "forbidden"
	CodeNotFound             Code = "not_found"
	CodeAccountNotFound      Code = "account_not_found"
	CodeTransferNotFound     Code = "transfer_not_found"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeAccountExists        Code = "account_exists"
	CodeAssetExists          Code = "asset_exists"
	CodeTransferExists       Code = "transfer_exists"
	CodeTransferNotPending   Code = "transfer_not_pending"
	CodeHoldExpired          Code = "hold_expired"
	CodeIdempotencyInFlight  Code = "idempotency_in_flight"
	CodeRequestTooLarge      Code = "request_too_large"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	CodeAssetUnknown         Code = "asset_unknown"
	CodeAccountFrozen        Code = "account_frozen"
	CodeAccountClosed        Code = "account_closed"
	CodeInsufficientFunds    Code = "insufficient_funds"
	CodeAssetMismatch        Code = "asset_mismatch"
	CodeSameAccount          Code = "same_account"
	CodeAmountOverflow       Code = "amount_overflow"
	CodeAmountExceedsHold    Code = "amount_exceeds_hold"
	CodeBatchFailed          Code = "batch_failed"
	CodeRateLimited          Code = "rate_limited"
	CodeInternal             Code = "internal"
	CodeOverloaded           Code = "overloaded"
	CodeNotLeader            Code = "not_leader"
	CodeUnavailable          Code = "unavailable"
	CodeWebhookNotFound      Code = "webhook_not_found"
	CodeWebhookURLForbidden  Code = "webhook_url_forbidden"
)

// A sentinel for every code, so that callers branch with errors.Is:
//
//	if errors.Is(err, client.ErrInsufficientFunds) { ... }
//
// An *Error matches the sentinel of its Code (and a BatchError's *Error the sentinel of its
// item's code).
var (
	ErrInvalidRequest       = sentinel(CodeInvalidRequest)
	ErrBatchTooLarge        = sentinel(CodeBatchTooLarge)
	ErrUnauthenticated      = sentinel(CodeUnauthenticated)
	ErrForbidden            = sentinel(CodeForbidden)
	ErrNotFound             = sentinel(CodeNotFound)
	ErrAccountNotFound      = sentinel(CodeAccountNotFound)
	ErrTransferNotFound     = sentinel(CodeTransferNotFound)
	ErrMethodNotAllowed     = sentinel(CodeMethodNotAllowed)
	ErrAccountExists        = sentinel(CodeAccountExists)
	ErrAssetExists          = sentinel(CodeAssetExists)
	ErrTransferExists       = sentinel(CodeTransferExists)
	ErrTransferNotPending   = sentinel(CodeTransferNotPending)
	ErrHoldExpired          = sentinel(CodeHoldExpired)
	ErrIdempotencyInFlight  = sentinel(CodeIdempotencyInFlight)
	ErrRequestTooLarge      = sentinel(CodeRequestTooLarge)
	ErrUnsupportedMediaType = sentinel(CodeUnsupportedMediaType)
	ErrIdempotencyKeyReused = sentinel(CodeIdempotencyKeyReused)
	ErrAssetUnknown         = sentinel(CodeAssetUnknown)
	ErrAccountFrozen        = sentinel(CodeAccountFrozen)
	ErrAccountClosed        = sentinel(CodeAccountClosed)
	ErrInsufficientFunds    = sentinel(CodeInsufficientFunds)
	ErrAssetMismatch        = sentinel(CodeAssetMismatch)
	ErrSameAccount          = sentinel(CodeSameAccount)
	ErrAmountOverflow       = sentinel(CodeAmountOverflow)
	ErrAmountExceedsHold    = sentinel(CodeAmountExceedsHold)
	ErrBatchFailed          = sentinel(CodeBatchFailed)
	ErrRateLimited          = sentinel(CodeRateLimited)
	ErrInternal             = sentinel(CodeInternal)
	ErrOverloaded           = sentinel(CodeOverloaded)
	ErrNotLeader            = sentinel(CodeNotLeader)
	ErrUnavailable          = sentinel(CodeUnavailable)
	ErrWebhookNotFound      = sentinel(CodeWebhookNotFound)
	ErrWebhookURLForbidden  = sentinel(CodeWebhookURLForbidden)
)

// codeError is the type of the sentinels: it knows its code, so CodeOf works on them too.
type codeError struct{ code Code }

func sentinel(c Code) error { return &codeError{code: c} }

func (e *codeError) Error() string { return "tpwallet: " + string(e.code) }

// Error is a problem the server answered (RFC 9457 application/problem+json): a rejection
// that changed nothing, or a server-side failure. Match it with errors.Is against the Err*
// sentinels, or read it with errors.As.
type Error struct {
	Status    int    // HTTP status: 400, 404, 409, 422, 429, 503, ...
	Code      Code   // the stable reason; "" if the answer was not a problem document
	Title     string // the status text
	Detail    string // a human explanation for this occurrence; do not parse it
	Type      string // the problem type URI
	RequestID string // X-Request-Id of the answer: it finds the request in the server's logs
	// Errors lists the failed items of an atomic batch (Code batch_failed): nothing of the
	// batch was applied.
	Errors []BatchError
	// Leader is where the leader is, in not_leader answers, when the server knows it.
	Leader string
	// RetryAfter is the server's Retry-After (429 and 503 answers), 0 when absent.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	what := string(e.Code)
	if what == "" {
		what = e.Title
	}
	s := "tpwallet: " + what
	if e.Status != 0 { // 0 for an item of a batch, which has no status of its own
		s = fmt.Sprintf("tpwallet: %d %s", e.Status, what)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*codeError)
	return ok && e.Code != "" && t.code == e.Code
}

// BatchError is one failed transfer of a batch: its index in the request, and why.
type BatchError struct {
	Index  int    `json:"index"`
	Code   Code   `json:"code"`
	Detail string `json:"detail"`
}

// Err returns the item's rejection as an *Error, for errors.Is against the sentinels.
func (b BatchError) Err() error { return &Error{Code: b.Code, Detail: b.Detail} }

// CodeOf returns the api.md code of err: that of an *Error (or a sentinel) in its chain, or ""
// when there is none (a network error, a cancelled context, ...).
func CodeOf(err error) Code {
	if e := (*Error)(nil); errors.As(err, &e) {
		return e.Code
	}
	if e := (*codeError)(nil); errors.As(err, &e) {
		return e.code
	}
	return ""
}
