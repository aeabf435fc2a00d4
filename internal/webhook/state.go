package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
)

// state is an endpoint's delivery state, kept in s/<id> while it is not the zero value,
// so that a restart neither resets the retry window of the event being retried nor lets
// an open breaker burst.
type state struct {
	// Failures counts failed attempts in a row, across events; the breaker is open while
	// it is BreakerAfter or more.
	Failures int   `json:"consecutive_failures"`
	OpenedAt int64 `json:"opened_at,omitempty"` // Unix ns the breaker opened
	// Backoff is the current retry interval (ns): it doubles from MinBackoff to MaxBackoff
	// with each failure and is 0 after a success.
	Backoff     int64  `json:"backoff_ns"`
	NextAttempt int64  `json:"next_attempt_at,omitempty"` // Unix ns; 0: at once
	LastError   string `json:"last_error,omitempty"`
	// The event being retried: its id, attempts so far, and when the first one was.
	EventID      string `json:"event_id,omitempty"`
	Attempts     int    `json:"attempts,omitempty"`
	FirstAttempt int64  `json:"first_attempt_at,omitempty"`
}

// Outcomes of an attempt, as the delivery log shows them.
const (
	OutcomeDelivered    = "delivered"
	OutcomeRetrying     = "retrying"      // failed; the event is tried again at NextAttempt
	OutcomeDeadLettered = "dead_lettered" // failed, and the retry window has passed
)

// Delivery is one attempt to deliver an event.
type Delivery struct {
	EventID     string  `json:"event_id"`
	EventType   string  `json:"event_type"`
	Attempt     int     `json:"attempt"`          // 1 for the first attempt at the event
	Status      int     `json:"status,omitempty"` // the HTTP status, 0 when there was no answer
	Error       string  `json:"error,omitempty"`  // why it failed
	Outcome     string  `json:"outcome"`
	Time        int64   `json:"time"` // Unix ns the attempt started
	DurationMs  float64 `json:"duration_ms"`
	NextAttempt int64   `json:"next_attempt_at,omitempty"` // Unix ns, when Outcome is retrying
	Cursor      string  `json:"-"`                         // where a page after this one starts
}

// DeadLetter is an event given up on after its retry window.
type DeadLetter struct {
	EventID      string `json:"event_id"`
	EventType    string `json:"event_type"`
	Seq          uint64 `json:"journal_seq"`
	Index        int    `json:"journal_index"`
	Attempts     int    `json:"attempts"`
	FirstAttempt int64  `json:"first_attempt_at"` // Unix ns
	Time         int64  `json:"time"`             // Unix ns it was dead-lettered
	LastStatus   int    `json:"last_status,omitempty"`
	LastError    string `json:"last_error"`
	Cursor       string `json:"-"`
}

// nextBackoff doubles b from min up to max.
func nextBackoff(b, min, max time.Duration) time.Duration {
	if b < min {
		return min
	}
	if b > max/2 {
		return max
	}
	return 2 * b
}

// jitter spreads d over [3/4 d, 5/4 d), so that endpoints that failed together do not
// retry together.
func jitter(d time.Duration) time.Duration {
	if d < 4 {
		return d
	}
	return d*3/4 + rand.N(d/2)
}

// ring is a bounded log in Meta: keys prefix + 16 hex digits counting up, the newest max
// of them kept. Each append deletes the entry max places back in the same write.
type ring struct {
	meta   store.Meta
	prefix string
	max    int
	next   uint64 // the counter of the next entry
}

func ringKey(prefix string, n uint64) string {
	return fmt.Sprintf("%s%016x", prefix, n)
}

// load sets next after the newest entry in the store.
func (r *ring) load(ctx context.Context) error {
	kvs, err := r.meta.ScanMeta(ctx, NS, r.prefix, "", true, 1)
	if err != nil {
		return err
	}
	r.next = 0
	if len(kvs) == 1 {
		n, err := strconv.ParseUint(strings.TrimPrefix(kvs[0].Key, r.prefix), 16, 64)
		if err != nil {
			return fmt.Errorf("webhook: log key %q", kvs[0].Key)
		}
		r.next = n + 1
	}
	return nil
}

// ops returns the writes that append v; committed must follow once they are written.
func (r *ring) ops(v []byte) []store.MetaOp {
	ops := []store.MetaOp{{NS: NS, Key: ringKey(r.prefix, r.next), Value: v}}
	if r.next >= uint64(r.max) {
		ops = append(ops, store.MetaOp{NS: NS, Key: ringKey(r.prefix, r.next-uint64(r.max))})
	}
	return ops
}

func (r *ring) committed() { r.next++ }

// errBadCursor is a page cursor this package did not make.
var errBadCursor = ledger.Errorf(ledger.CodeInvalidRequest, "the cursor is not one this server made")

// page reads up to limit entries of a ring, newest first, from before cursor (the cursor
// of the last entry of the page before, "" for the first page). next is "" on a short page.
func page(ctx context.Context, m store.Meta, prefix, cursor string, limit int) (kvs []store.MetaKV, cursors []string, next string, err error) {
	from := ""
	if cursor != "" {
		if len(cursor) != 16 || strings.Trim(cursor, "0123456789abcdef") != "" {
			return nil, nil, "", errBadCursor
		}
		from = prefix + cursor
	}
	kvs, err = m.ScanMeta(ctx, NS, prefix, from, true, limit)
	if err != nil {
		return nil, nil, "", err
	}
	cursors = make([]string, len(kvs))
	for i, kv := range kvs {
		cursors[i] = strings.TrimPrefix(kv.Key, prefix)
	}
	if len(kvs) == limit {
		next = cursors[len(cursors)-1]
	}
	return kvs, cursors, next, nil
}

// sweepNS deletes every key of ns with prefix, in chunks.
func sweepNS(ctx context.Context, m store.Meta, ns, prefix string) error {
	for {
		kvs, err := m.ScanMeta(ctx, ns, prefix, "", false, 500)
		if err != nil || len(kvs) == 0 {
			return err
		}
		ops := make([]store.MetaOp, len(kvs))
		for i, kv := range kvs {
			ops[i] = store.MetaOp{NS: ns, Key: kv.Key}
		}
		if err := m.WriteMeta(ctx, ops...); err != nil {
			return err
		}
	}
}

func loadState(ctx context.Context, m store.Meta, id string) (state, bool, error) {
	v, err := m.GetMeta(ctx, NS, stateKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, err
	}
	var s state
	if err := json.Unmarshal(v, &s); err != nil {
		return state{}, false, fmt.Errorf("webhook: state of %s: %q", id, clip(string(v), 80))
	}
	return s, true, nil
}
