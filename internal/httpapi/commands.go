package httpapi

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strconv"
	"strings"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
)

// Command is a transfer submitted through a message broker (NATS, Kafka) rather than REST:
// the asynchronous interface for systems that integrate by queue. It has what a POST
// /v1/transfers has, and is checked the same way.
type Command struct {
	// Authorization is "Bearer <api key>", as on REST; the key needs the write scope.
	Authorization string
	// IdempotencyKey is required: a broker redelivers, and only the key makes a
	// redelivered command apply once. It shares its scope (the API key) with REST's
	// Idempotency-Key, so the same key sent both ways applies once.
	IdempotencyKey string
	// Body is the JSON of POST /v1/transfers.
	Body []byte
}

// CommandResult is the answer to a Command: what POST /v1/transfers would have answered.
type CommandResult struct {
	IdempotencyKey string
	Status         int
	Replayed       bool   // the stored answer to an earlier identical command or request
	Body           []byte // the Transfer, or an RFC 9457 problem
}

// AppendJSON appends the result as the reply message carries it:
// {"idempotency_key":"...","status":201,"replayed":false,"body":{...}}.
func (c *CommandResult) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"idempotency_key":`...)
	dst = journal.AppendJSONString(dst, c.IdempotencyKey)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(c.Status), 10)
	dst = append(dst, `,"replayed":`...)
	dst = strconv.AppendBool(dst, c.Replayed)
	dst = append(dst, `,"body":`...)
	dst = append(dst, c.Body...)
	return append(dst, '}')
}

// Retryable reports whether the command should be tried again later rather than answered:
// 5xx (unavailable, not_leader, overloaded), 429 and idempotency_in_flight answers are not
// stored under the key, so a broker that redelivers the command gets another chance.
func (c *CommandResult) Retryable() bool {
	return !keep(c.Status) || c.Status == http.StatusConflict &&
		strings.Contains(string(c.Body), `"code":"idempotency_in_flight"`)
}

// SubmitTransfer runs a Command: authentication and scope, the idempotency key, strict
// decoding, the ledger's checks and the commit, exactly as POST /v1/transfers does (the
// idempotency request hash is the same too).
func (s *Server) SubmitTransfer(ctx context.Context, c Command) CommandResult {
	res := CommandResult{IdempotencyKey: c.IdempotencyKey}
	fail := func(p Problem) CommandResult {
		res.Status, res.Body = p.Status, p.body()
		return res
	}
	secret, ok := strings.CutPrefix(c.Authorization, "Bearer ")
	if !ok {
		return fail(problemOf(ledger.CodeUnauthenticated, "send Authorization: Bearer <api key>"))
	}
	p, err := s.svc.Authenticate(strings.TrimSpace(secret))
	if err != nil {
		return fail(problemFromError(err))
	}
	if !p.Can(service.ScopeWrite) {
		return fail(problemOf(ledger.CodeForbidden, "this API key lacks the write scope"))
	}
	if !validIdemKey(c.IdempotencyKey) {
		return fail(problemOf(ledger.CodeInvalidRequest,
			"a command needs an idempotency key of 1-255 printable ASCII characters"))
	}
	if len(c.Body) > bodyMax {
		return fail(problemOf(ledger.CodeRequestTooLarge, "the body exceeds "+strconv.Itoa(bodyMax)+" bytes"))
	}
	if len(c.Body) == 0 {
		return fail(problemOf(ledger.CodeInvalidRequest, "the body is empty"))
	}
	idem := &service.IdemRequest{Key: c.IdempotencyKey}
	h := sha256.New()
	h.Write([]byte(http.MethodPost + "\n/v1/transfers\n"))
	h.Write(c.Body)
	h.Sum(idem.Hash[:0])
	t, err := decodeTransfer(c.Body)
	if err != nil {
		return fail(problemFromError(err))
	}
	req, err := t.request()
	if err != nil {
		return fail(problemFromError(err))
	}
	ans, err := s.svc.Write(ctx, p, idem, one(req), renderOne(http.StatusCreated))
	if err != nil {
		return fail(problemFromError(err))
	}
	res.Status, res.Body, res.Replayed = ans.Status, ans.Body, ans.Replayed
	return res
}
