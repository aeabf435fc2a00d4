package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
)

// statusOf is the one table from codes to HTTP statuses (api.md).
var statusOf = map[ledger.Code]int{
	ledger.CodeInvalidRequest:       http.StatusBadRequest,
	ledger.CodeBatchTooLarge:        http.StatusBadRequest,
	ledger.CodeUnauthenticated:      http.StatusUnauthorized,
	ledger.CodeForbidden:            http.StatusForbidden,
	ledger.CodeNotFound:             http.StatusNotFound,
	ledger.CodeAccountNotFound:      http.StatusNotFound,
	ledger.CodeTransferNotFound:     http.StatusNotFound,
	ledger.CodeWebhookNotFound:      http.StatusNotFound,
	ledger.CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	ledger.CodeAccountExists:        http.StatusConflict,
	ledger.CodeAssetExists:          http.StatusConflict,
	ledger.CodeTransferExists:       http.StatusConflict,
	ledger.CodeTransferNotPending:   http.StatusConflict,
	ledger.CodeHoldExpired:          http.StatusConflict,
	ledger.CodeIdempotencyInFlight:  http.StatusConflict,
	ledger.CodeRequestTooLarge:      http.StatusRequestEntityTooLarge,
	ledger.CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	ledger.CodeIdempotencyKeyReused: http.StatusUnprocessableEntity,
	ledger.CodeAssetUnknown:         http.StatusUnprocessableEntity,
	ledger.CodeAccountFrozen:        http.StatusUnprocessableEntity,
	ledger.CodeAccountClosed:        http.StatusUnprocessableEntity,
	ledger.CodeInsufficientFunds:    http.StatusUnprocessableEntity,
	ledger.CodeAssetMismatch:        http.StatusUnprocessableEntity,
	ledger.CodeSameAccount:          http.StatusUnprocessableEntity,
	ledger.CodeAmountOverflow:       http.StatusUnprocessableEntity,
	ledger.CodeAmountExceedsHold:    http.StatusUnprocessableEntity,
	ledger.CodeBatchFailed:          http.StatusUnprocessableEntity,
	ledger.CodeWebhookURLForbidden:  http.StatusUnprocessableEntity,
	ledger.CodeRateLimited:          http.StatusTooManyRequests,
	ledger.CodeInternal:             http.StatusInternalServerError,
	ledger.CodeOverloaded:           http.StatusServiceUnavailable,
	ledger.CodeNotLeader:            http.StatusServiceUnavailable,
	ledger.CodeUnavailable:          http.StatusServiceUnavailable,
}

// StatusOf returns the HTTP status of a code (500 for an unknown one).
func StatusOf(c ledger.Code) int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Problem is an RFC 9457 problem with api.md's stable code.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Code   ledger.Code  `json:"code"`
	Errors []BatchError `json:"errors,omitempty"`
	// Role is set by /readyz: leader or standby.
	Role string `json:"role,omitempty"`
	// Leader is where the leader is, in not_leader answers, when known.
	Leader string `json:"leader,omitempty"`
}

// BatchError is one failed item of a batch.
type BatchError struct {
	Index  int         `json:"index"`
	Code   ledger.Code `json:"code"`
	Detail string      `json:"detail"`
}

func problemOf(code ledger.Code, detail string) Problem {
	status := StatusOf(code)
	return Problem{Type: "https://tpwallet.dev/problems/" + string(code), Title: http.StatusText(status),
		Status: status, Detail: detail, Code: code}
}

func (p Problem) body() []byte {
	b, _ := json.Marshal(p)
	return b
}

// problemFromError turns any error into a problem; anything not an *ledger.Error is internal
// and its text is not shown.
func problemFromError(err error) Problem {
	var nl *service.NotLeaderError
	if errors.As(err, &nl) {
		p := problemOf(ledger.CodeNotLeader, nl.Unwrap().(*ledger.Error).Detail)
		p.Leader = nl.Leader
		return p
	}
	var e *ledger.Error
	if errors.As(err, &e) {
		return problemOf(e.Code, e.Detail)
	}
	if errors.Is(err, engine.ErrUnavailable) {
		return problemOf(ledger.CodeUnavailable, "the store cannot be reached; retry shortly")
	}
	return problemOf(ledger.CodeInternal, "an internal error occurred; the request id identifies it in the logs")
}

func writeProblem(w http.ResponseWriter, p Problem) {
	if sw, ok := w.(*statusWriter); ok {
		sw.code = p.Code
	}
	writeRaw(w, p.Status, p.body(), true)
}

func writeRaw(w http.ResponseWriter, status int, body []byte, problem bool) {
	h := w.Header()
	if problem {
		h.Set("Content-Type", "application/problem+json")
	} else {
		h.Set("Content-Type", "application/json")
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		h.Set("Retry-After", "1")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
