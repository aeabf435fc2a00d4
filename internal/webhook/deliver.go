package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	clientwebhook "github.com/tpwallet/tpwallet/client/webhook"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/store"
)

// ResponseMax bounds what is read of an answer's body: only its status counts, and a
// receiver must not be able to make tpwallet read without end.
const ResponseMax = 64 << 10

// UserAgent is sent with every webhook.
const UserAgent = "tpwallet-webhooks/1"

// sink delivers one endpoint's events: the Sink of the endpoint's follower. Deliver runs
// on the follower's goroutine only; mu guards what Status reads while it runs.
type sink struct {
	m  *Manager
	ep Endpoint

	// Owned by Deliver, and by Manager.Replay while the follower is stopped.
	runDone    <-chan struct{} // ctx.Done() of the run the state was loaded for
	loaded     bool
	persisted  bool // s/<id> exists in the store
	deliveries ring
	dead       ring
	buf        []byte

	mu          sync.Mutex
	st          state
	lastError   string
	lastErrorAt int64     // Unix ns
	lastSuccess int64     // Unix ns
	counts      [3]uint64 // attempts by outcome: delivered, retrying, dead_lettered
}

func newSink(m *Manager, ep Endpoint) *sink {
	return &sink{m: m, ep: ep,
		deliveries: ring{meta: m.opts.Meta, prefix: deliveryPrefix(ep.ID), max: m.opts.DeliveriesMax},
		dead:       ring{meta: m.opts.Meta, prefix: deadPrefix(ep.ID), max: m.opts.DeadLettersMax}}
}

// Deliver sends evs one after the other, each until it is delivered or dead-lettered,
// and returns early only when ctx ends (or a dead letter cannot be stored), with the
// count delivered so far. It keeps its own retry schedule, since the follower's backoff
// stops at 30 s and knows nothing of retry windows.
func (s *sink) Deliver(ctx context.Context, evs []events.Event) (int, error) {
	// Each run of the follower (a restart, or leadership regained in a PostgreSQL group,
	// where another instance may have delivered meanwhile) starts from the stored state.
	if !s.loaded || ctx.Done() != s.runDone {
		if err := s.load(ctx); err != nil {
			return 0, err
		}
		s.runDone = ctx.Done()
	}
	for i := range evs {
		if err := s.deliver(ctx, &evs[i]); err != nil {
			return i, err
		}
	}
	return len(evs), nil
}

func (s *sink) load(ctx context.Context) error {
	st, persisted, err := loadState(ctx, s.m.opts.Meta, s.ep.ID)
	if err != nil {
		return err
	}
	if err := s.deliveries.load(ctx); err != nil {
		return err
	}
	if err := s.dead.load(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.st, s.persisted, s.loaded = st, persisted, true
	if st.LastError != "" && s.lastError == "" {
		s.lastError = st.LastError
	}
	s.mu.Unlock()
	return nil
}

// deliver sends one event until it is delivered or dead-lettered.
func (s *sink) deliver(ctx context.Context, ev *events.Event) error {
	s.buf = events.AppendJSON(s.buf[:0], ev, events.DefaultSource)
	id := ev.ID()
	s.mu.Lock()
	if s.st.EventID != id {
		s.st.EventID, s.st.Attempts, s.st.FirstAttempt = id, 0, 0
	}
	s.mu.Unlock()
	for {
		if err := s.wait(ctx); err != nil {
			return err
		}
		a := s.attempt(ctx, id, s.buf)
		if ctx.Err() != nil {
			return ctx.Err() // stopped mid-attempt: no outcome; the event goes again next run
		}
		if done, err := s.record(ctx, ev, a); done || err != nil {
			return err
		}
	}
}

// wait waits for the time of the next attempt: the retry schedule, or while the breaker
// is open the next probe.
func (s *sink) wait(ctx context.Context) error {
	s.mu.Lock()
	next := s.st.NextAttempt
	s.mu.Unlock()
	d := time.Duration(next - s.m.opts.Now().UnixNano())
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// result is what one attempt came to.
type result struct {
	start  time.Time
	dur    time.Duration
	status int    // 0: no answer
	err    string // "" when delivered
}

// attempt POSTs the event once.
func (s *sink) attempt(ctx context.Context, id string, body []byte) result {
	r := result{start: s.m.opts.Now()}
	began := time.Now()
	r.status, r.err = s.post(ctx, id, r.start, body)
	r.dur = time.Since(began)
	return r
}

func (s *sink) post(ctx context.Context, id string, now time.Time, body []byte) (int, string) {
	sig, err := clientwebhook.Sign(string(s.ep.Secret), id, now, body)
	if err != nil {
		return 0, "the endpoint's stored secret is unusable: " + err.Error()
	}
	actx, cancel := context.WithTimeout(ctx, s.m.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, s.ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	h := req.Header
	h.Set(clientwebhook.HeaderID, id)
	h.Set(clientwebhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(clientwebhook.HeaderSignature, sig)
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	resp, err := s.m.client.Do(req)
	if err != nil {
		return 0, s.describe(err)
	}
	// Read a little of the body, so that a short answer leaves the connection reusable,
	// but never without bound; the status alone decides.
	io.Copy(io.Discard, io.LimitReader(resp.Body, ResponseMax))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c <= 299:
		return c, ""
	case c >= 300 && c <= 399:
		return c, "HTTP " + strconv.Itoa(c) + ": redirects are not followed"
	default:
		return c, "HTTP " + strconv.Itoa(c)
	}
}

// describe says why a request failed, without the URL (which may hold a token).
func (s *sink) describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "no answer within " + s.m.opts.Timeout.String()
		}
		err = ue.Err
	}
	return clip(err.Error(), 300)
}

// step computes what an attempt changes: the state after it, its delivery log entry,
// and the dead letter when the retry window has passed. It does no I/O.
func step(st state, ev *events.Event, a result, now int64, o *Options) (state, Delivery, *DeadLetter) {
	st.Attempts++
	if st.FirstAttempt == 0 {
		st.FirstAttempt = a.start.UnixNano()
	}
	d := Delivery{EventID: st.EventID, EventType: ev.Type, Attempt: st.Attempts, Status: a.status,
		Error: a.err, Time: a.start.UnixNano(), DurationMs: float64(a.dur.Microseconds()) / 1000}
	if a.err == "" {
		d.Outcome = OutcomeDelivered
		return state{}, d, nil
	}
	st.Failures++
	st.LastError = a.err
	st.Backoff = int64(nextBackoff(time.Duration(st.Backoff), o.MinBackoff, o.MaxBackoff))
	if st.Failures == o.BreakerAfter {
		st.OpenedAt = now
	}
	st.NextAttempt = now + int64(jitter(time.Duration(st.Backoff)))
	if time.Duration(now-st.FirstAttempt) < o.RetryFor {
		d.Outcome, d.NextAttempt = OutcomeRetrying, st.NextAttempt
		return st, d, nil
	}
	d.Outcome = OutcomeDeadLettered
	dl := &DeadLetter{EventID: st.EventID, EventType: ev.Type, Seq: ev.Seq, Index: ev.Index,
		Attempts: st.Attempts, FirstAttempt: st.FirstAttempt, Time: now, LastStatus: a.status, LastError: a.err}
	// The next event waits for the next probe while the breaker is open, else goes at once.
	if st.Failures < o.BreakerAfter {
		st.NextAttempt = 0
	}
	st.EventID, st.Attempts, st.FirstAttempt = "", 0, 0
	return st, d, dl
}

// record stores the attempt in the delivery log (and the dead letter) with the new state
// in one write. done reports that the event is delivered or dead-lettered; err that its
// dead letter could not be stored, in which case the event keeps its attempts and window
// and is tried again after the backoff. A failed write of anything else is only logged:
// the log is for people, the follower's cursor is what counts.
func (s *sink) record(ctx context.Context, ev *events.Event, a result) (done bool, err error) {
	o := &s.m.opts
	now := o.Now().UnixNano()
	s.mu.Lock()
	before := s.st
	persisted := s.persisted
	s.mu.Unlock()
	st, d, dl := step(before, ev, a, now, o)
	var ops []store.MetaOp
	if dl != nil {
		v, _ := json.Marshal(dl)
		ops = append(ops, s.dead.ops(v)...)
	}
	v, _ := json.Marshal(d)
	ops = append(ops, s.deliveries.ops(v)...)
	if st != (state{}) {
		sv, _ := json.Marshal(st)
		ops = append(ops, store.MetaOp{NS: NS, Key: stateKey(s.ep.ID), Value: sv})
	} else if persisted {
		ops = append(ops, store.MetaOp{NS: NS, Key: stateKey(s.ep.ID)})
	}
	werr := o.Meta.WriteMeta(ctx, ops...)
	if werr == nil {
		s.deliveries.committed()
		if dl != nil {
			s.dead.committed()
		}
	} else if dl != nil { // not dead-lettered after all
		d.Outcome = OutcomeRetrying
		st.EventID, st.Attempts, st.FirstAttempt = d.EventID, d.Attempt, dl.FirstAttempt
		st.NextAttempt = now + int64(jitter(time.Duration(st.Backoff)))
	}
	s.mu.Lock()
	s.st = st
	if werr == nil {
		s.persisted = st != (state{})
	}
	s.counts[outcomeIndex(d.Outcome)]++
	if a.err == "" {
		s.lastSuccess = now
	} else {
		s.lastError, s.lastErrorAt = a.err, now
	}
	s.mu.Unlock()
	s.logChange(before, st, d, dl, werr)
	if werr != nil && dl != nil {
		return false, fmt.Errorf("webhook: dead letter of %s: %w", d.EventID, werr)
	}
	return d.Outcome != OutcomeRetrying, nil
}

// logChange logs what people need to know: the breaker opening or closing, a dead letter,
// a log write that failed. Attempts themselves are metrics, not log lines.
func (s *sink) logChange(before, after state, d Delivery, dl *DeadLetter, werr error) {
	log, n := s.m.opts.Logger, s.m.opts.BreakerAfter
	if werr != nil {
		log.Warn("webhook: delivery log write failed", "endpoint", s.ep.ID, "event", d.EventID, "err", werr)
	}
	switch wasOpen, isOpen := before.Failures >= n, after.Failures >= n; {
	case isOpen && !wasOpen:
		log.Warn("webhook endpoint failing: breaker open", "endpoint", s.ep.ID, "failures", after.Failures, "err", d.Error)
	case wasOpen && !isOpen:
		log.Info("webhook endpoint recovered: breaker closed", "endpoint", s.ep.ID)
	}
	if dl != nil && werr == nil {
		log.Warn("webhook event dead-lettered", "endpoint", s.ep.ID, "event", dl.EventID, "attempts", dl.Attempts)
	}
}

func outcomeIndex(o string) int {
	switch o {
	case OutcomeDelivered:
		return 0
	case OutcomeRetrying:
		return 1
	}
	return 2
}

// breakerState names the breaker's state.
func breakerState(failures, after int) string {
	if failures >= after {
		return "open"
	}
	return "closed"
}
