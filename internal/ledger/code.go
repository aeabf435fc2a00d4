package ledger

import (
	"errors"
	"fmt"
)

// Code is the stable reason for a rejection: the "code" of an api.md problem. Add; never rename.
type Code string

// The codes of api.md, in one list. The edge-only ones (auth, routing, overload) are here too
// so that every transport maps the same words.
const (
	CodeOK                   Code = ""
	CodeInvalidRequest       Code = "invalid_request"
	CodeRequestTooLarge      Code = "request_too_large"
	CodeUnauthenticated      Code = "unauthenticated"
	CodeForbidden            Code = "forbidden"
	CodeNotFound             Code = "not_found"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeOverloaded           Code = "overloaded"
	CodeRateLimited          Code = "rate_limited"
	CodeNotLeader            Code = "not_leader"
	CodeUnavailable          Code = "unavailable" // the engine stopped after a failed commit
	CodeInternal             Code = "internal"

	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	CodeIdempotencyInFlight  Code = "idempotency_in_flight"

	CodeAssetExists       Code = "asset_exists"
	CodeAssetUnknown      Code = "asset_unknown"
	CodeAccountExists     Code = "account_exists"
	CodeAccountNotFound   Code = "account_not_found"
	CodeAccountFrozen     Code = "account_frozen"
	CodeAccountClosed     Code = "account_closed"
	CodeInsufficientFunds Code = "insufficient_funds"
	CodeAssetMismatch     Code = "asset_mismatch"
	CodeSameAccount       Code = "same_account"
	CodeAmountOverflow    Code = "amount_overflow"

	CodeTransferExists     Code = "transfer_exists"
	CodeTransferNotFound   Code = "transfer_not_found"
	CodeTransferNotPending Code = "transfer_not_pending"
	CodeHoldExpired        Code = "hold_expired"
	CodeAmountExceedsHold  Code = "amount_exceeds_hold"

	CodeBatchFailed   Code = "batch_failed"
	CodeBatchTooLarge Code = "batch_too_large"

	CodeWebhookNotFound     Code = "webhook_not_found"     // no webhook endpoint with that id
	CodeWebhookURLForbidden Code = "webhook_url_forbidden" // the URL's host is not a public address
)

// Codes lists every Code but CodeOK, for tables that must cover them all.
var Codes = []Code{
	CodeInvalidRequest, CodeRequestTooLarge, CodeUnauthenticated, CodeForbidden, CodeNotFound,
	CodeMethodNotAllowed, CodeUnsupportedMediaType, CodeOverloaded, CodeRateLimited,
	CodeNotLeader, CodeUnavailable, CodeInternal, CodeIdempotencyKeyReused, CodeIdempotencyInFlight,
	CodeAssetExists, CodeAssetUnknown, CodeAccountExists, CodeAccountNotFound,
	CodeAccountFrozen, CodeAccountClosed, CodeInsufficientFunds, CodeAssetMismatch,
	CodeSameAccount, CodeAmountOverflow, CodeTransferExists, CodeTransferNotFound,
	CodeTransferNotPending, CodeHoldExpired, CodeAmountExceedsHold, CodeBatchFailed,
	CodeBatchTooLarge, CodeWebhookNotFound, CodeWebhookURLForbidden,
}

// Error is a rejection that changed nothing. Index is the position in a batch, or -1.
type Error struct {
	Code   Code
	Index  int
	Detail string // shown to the client: no secrets, no personal data
}

func (e *Error) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("%s at index %d: %s", e.Code, e.Index, e.Detail)
	}
	return string(e.Code) + ": " + e.Detail
}

// Errorf returns an *Error with Index -1.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Index: -1, Detail: fmt.Sprintf(format, args...)}
}

// CodeOf is CodeInternal for any error that is not an *Error: clients never see disk errors.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	if e := (*Error)(nil); errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// detail is the default client-facing sentence for a code raised inside Apply.
func (c Code) detail() string {
	switch c {
	case CodeInsufficientFunds:
		return "the source account's available balance is too low"
	case CodeAccountNotFound:
		return "no account with that id"
	case CodeAccountFrozen:
		return "an account of the transfer is frozen"
	case CodeAccountClosed:
		return "an account of the transfer is closed"
	case CodeAssetMismatch:
		return "the accounts and the transfer must share one asset"
	case CodeSameAccount:
		return "source and destination are the same account"
	case CodeAmountOverflow:
		return "the write would take an account total past 2^128-1"
	case CodeTransferExists:
		return "a transfer with that id exists with different fields"
	case CodeTransferNotFound:
		return "no transfer with that id"
	case CodeTransferNotPending:
		return "the transfer is not pending"
	case CodeHoldExpired:
		return "the hold has expired"
	case CodeAmountExceedsHold:
		return "the amount exceeds what is still held"
	case CodeAccountExists:
		return "an account with that id exists"
	case CodeAssetExists:
		return "an asset with that code exists"
	case CodeAssetUnknown:
		return "unknown asset"
	}
	return string(c)
}

func assert(ok bool, what string) {
	if !ok {
		panic("ledger: invariant violated: " + what)
	}
}
