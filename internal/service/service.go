package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
)

// Options configure a Service.
type Options struct {
	// IdempotencyTTL is how long answers to Idempotency-Key requests are kept
	// (default 7 days, as api.md requires at least).
	IdempotencyTTL time.Duration
	// Now is the wall clock (default time.Now); used for idempotency expiry checks.
	Now    func() time.Time
	Logger *slog.Logger
}

// EnsureDefaults fills in zero fields.
func (o *Options) EnsureDefaults() {
	if o.IdempotencyTTL <= 0 {
		o.IdempotencyTTL = 7 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Service is what every transport shares: authentication and scopes, idempotency, and the
// reads and writes of the ledger. It holds no business rules of its own: those are in
// ledger, applied by the engine.
type Service struct {
	opts   Options
	eng    atomic.Pointer[engine.Engine] // nil on a standby
	leader atomic.Pointer[string]        // where the leader is, when known
	store  engine.Store
	keys   keyCache

	mu       sync.Mutex
	inflight map[idemKey]struct{}
}

type idemKey struct{ scope, key string }

// New returns a Service over an open engine and its store. With a nil engine it is a
// standby: it serves reads from the store and answers writes with not_leader until Promote.
func New(ctx context.Context, eng *engine.Engine, store engine.Store, o Options) (*Service, error) {
	o.EnsureDefaults()
	s := &Service{opts: o, store: store, inflight: make(map[idemKey]struct{})}
	if err := s.keys.load(ctx, store); err != nil {
		return nil, fmt.Errorf("service: load api keys: %w", err)
	}
	s.eng.Store(eng)
	return s, nil
}

// Store returns the store reads go to.
func (s *Service) Store() engine.Store { return s.store }

// Engine returns the engine writes go to, nil on a standby.
func (s *Service) Engine() *engine.Engine { return s.eng.Load() }

// Promote makes s the leader, writing through eng (opened on the store after taking the
// lease). It first reloads the API keys, which the previous leader may have changed.
func (s *Service) Promote(ctx context.Context, eng *engine.Engine) error {
	if err := s.ReloadKeys(ctx); err != nil {
		return err
	}
	s.leader.Store(nil)
	s.eng.Store(eng)
	return nil
}

// Demote makes s a standby: writes from now on answer not_leader naming leader (when not
// ""). It returns the engine it wrote through, for the caller to close: writes already
// queued on it still finish (or are refused by fencing).
func (s *Service) Demote(leader string) *engine.Engine {
	s.SetLeader(leader)
	return s.eng.Swap(nil)
}

// SetLeader records where the leader is, for not_leader answers ("" when unknown).
func (s *Service) SetLeader(addr string) { s.leader.Store(&addr) }

// Leader returns where the leader is, "" when unknown or when s is the leader.
func (s *Service) Leader() string {
	if p := s.leader.Load(); p != nil && s.eng.Load() == nil {
		return *p
	}
	return ""
}

// IsLeader reports whether s takes writes (it has an engine, which may have stopped).
func (s *Service) IsLeader() bool { return s.eng.Load() != nil }

// ReloadKeys rereads the API keys from the store: a standby calls it periodically, since
// the leader creates and revokes keys.
func (s *Service) ReloadKeys(ctx context.Context) error {
	if err := s.keys.load(ctx, s.store); err != nil {
		return fmt.Errorf("service: load api keys: %w", err)
	}
	return nil
}

// NotLeaderError is the answer to a write sent to a standby. It unwraps to the api.md
// error not_leader.
type NotLeaderError struct {
	Leader string // where the leader is, "" when unknown
}

func (e *NotLeaderError) Error() string { return e.Unwrap().Error() }

// Unwrap returns the *ledger.Error with code not_leader.
func (e *NotLeaderError) Unwrap() error {
	if e.Leader == "" {
		return ledger.Errorf(ledger.CodeNotLeader, "this instance is a standby and the leader is not known yet; retry shortly")
	}
	return ledger.Errorf(ledger.CodeNotLeader, "this instance is a standby; send writes to the leader at %s", e.Leader)
}

// writer returns the engine to write through, or a NotLeaderError on a standby.
func (s *Service) writer() (*engine.Engine, error) {
	if e := s.eng.Load(); e != nil {
		return e, nil
	}
	return nil, &NotLeaderError{Leader: s.Leader()}
}

// Render turns the results of a write into a transport answer. It runs on the engine's
// writer goroutine when the write has an idempotency key, so it must be quick. keep says
// whether the answer may be replayed (api.md: not 5xx, 429 or idempotency_in_flight).
type Render func(results []ledger.Result) (status int, body []byte, keep bool)

// Answer is a transport answer to a write.
type Answer struct {
	Status   int
	Body     []byte
	Replayed bool // a stored answer to an earlier identical request
	Results  []ledger.Result
}

// IdemRequest identifies a request sent with an Idempotency-Key.
type IdemRequest struct {
	Key  string
	Hash journal.Hash // over method, path and body bytes
}

// Write submits cmd for p. With idem set, it replays a stored answer to the same request,
// refuses the key reused with another request (idempotency_key_reused) or while the first
// is in flight (idempotency_in_flight), and otherwise stores the answer in the same commit
// as the write. Errors are *ledger.Error with an edge code, or engine errors mapped to
// overloaded/unavailable.
//
// When ctx holds a recorded span, Write adds its children: the idempotency lookup and,
// from the engine's Reply.Timing, the queue wait, apply and commit.
func (s *Service) Write(ctx context.Context, p *Principal, idem *IdemRequest, cmd ledger.Command, render Render) (Answer, error) {
	eng, err := s.writer()
	if err != nil {
		return Answer{}, err
	}
	parent := trace.SpanFromContext(ctx)
	traced := parent.IsRecording()
	sub := &engine.Submission{Command: cmd}
	if idem != nil {
		k := idemKey{p.KeyID, idem.Key}
		var span trace.Span
		if traced {
			_, span = tracer(parent).Start(ctx, "idempotency")
		}
		ans, outcome, err := s.lookup(ctx, k, idem)
		if span != nil {
			endIdempotency(span, outcome)
		}
		if outcome != idemNew {
			return ans, err
		}
		defer s.release(k) // only once the engine has answered: see submitCtx
		sub.Idempotency = &engine.Idempotency{Scope: p.KeyID, Key: idem.Key,
			RequestHash: idem.Hash, TTL: s.opts.IdempotencyTTL, Render: render}
	}
	submitCtx := ctx
	if idem != nil {
		// Once queued, an idempotent write is waited for even if the client goes away:
		// releasing its key from the in-flight set before the engine answers would let a
		// retry with the same key apply the write a second time.
		if err := ctx.Err(); err != nil {
			return Answer{}, err
		}
		submitCtx = context.WithoutCancel(ctx)
	}
	reply, err := eng.Submit(submitCtx, sub)
	if err != nil {
		return Answer{}, s.engineError(err)
	}
	if traced {
		engineSpans(ctx, parent, &reply)
	}
	status, body, _ := render(reply.Results)
	return Answer{Status: status, Body: body, Results: reply.Results}, nil
}

// Outcomes of an idempotency lookup (also the tpwallet.idempotency attribute of its span).
const (
	idemNew      = "new"       // no answer stored: the write goes on, its key held in flight
	idemReplayed = "replayed"  // the stored answer to the same request
	idemReused   = "reused"    // the key was used with another request
	idemInFlight = "in_flight" // the first request with the key is not answered yet
	idemFailed   = "error"     // the store could not be read
)

// lookup holds k in flight and looks for a stored answer. Unless the outcome is idemNew,
// it has released k again and returns the answer or error to give; with idemNew the
// caller releases k once the engine has answered.
func (s *Service) lookup(ctx context.Context, k idemKey, idem *IdemRequest) (Answer, string, error) {
	s.mu.Lock()
	if _, busy := s.inflight[k]; busy {
		s.mu.Unlock()
		return Answer{}, idemInFlight, ledger.Errorf(ledger.CodeIdempotencyInFlight,
			"a request with this Idempotency-Key is still in flight")
	}
	s.inflight[k] = struct{}{}
	s.mu.Unlock()
	stored, err := s.store.Idempotency(ctx, k.scope, k.key, s.opts.Now().UnixNano())
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return Answer{}, idemNew, nil
	case err == nil && stored.RequestHash == idem.Hash:
		s.release(k)
		return Answer{Status: stored.Status, Body: stored.Body, Replayed: true}, idemReplayed, nil
	case err == nil:
		s.release(k)
		return Answer{}, idemReused, ledger.Errorf(ledger.CodeIdempotencyKeyReused,
			"this Idempotency-Key was used with a different request")
	}
	s.release(k)
	return Answer{}, idemFailed, fmt.Errorf("service: idempotency lookup: %w", err)
}

func (s *Service) release(k idemKey) {
	s.mu.Lock()
	delete(s.inflight, k)
	s.mu.Unlock()
}

// engineError maps engine sentinels to edge codes.
func (s *Service) engineError(err error) error {
	switch {
	case errors.Is(err, store.ErrFenced),
		errors.Is(err, engine.ErrClosed) && !s.IsLeader(): // stepped down before it was queued
		return &NotLeaderError{Leader: s.Leader()}
	case errors.Is(err, engine.ErrOverloaded):
		return ledger.Errorf(ledger.CodeOverloaded, "the ledger's queue is full; retry shortly")
	case errors.Is(err, engine.ErrStopped):
		return ledger.Errorf(ledger.CodeUnavailable, "the ledger is not taking writes (a commit failed, or it is shutting down); the outcome of this request is unknown: retry it with the same Idempotency-Key")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return err
}

// AssetLister is a store that lists assets itself (so that a standby, without an engine,
// can answer GET /v1/assets).
type AssetLister interface {
	Assets(ctx context.Context) ([]ledger.Asset, error)
}

// Assets returns every asset, sorted by code: the engine's on the leader, the store's on
// a standby.
func (s *Service) Assets(ctx context.Context) ([]ledger.Asset, error) {
	if e := s.eng.Load(); e != nil {
		return e.Assets(), nil
	}
	if l, ok := s.store.(AssetLister); ok {
		return l.Assets(ctx)
	}
	return nil, &NotLeaderError{Leader: s.Leader()}
}

// Ready returns nil when the engine takes writes: a NotLeaderError on a standby, an error
// wrapping engine.ErrStopped after a failed commit.
func (s *Service) Ready() error {
	e, err := s.writer()
	if err != nil {
		return err
	}
	if err := e.Err(); err != nil {
		if errors.Is(err, store.ErrFenced) {
			return &NotLeaderError{Leader: s.Leader()}
		}
		return err
	}
	return nil
}

// SweepIdempotency deletes expired idempotency answers; serve runs it periodically.
func (s *Service) SweepIdempotency(ctx context.Context) (int, error) {
	return s.store.DeleteExpiredIdempotency(ctx, s.opts.Now().UnixNano())
}
