package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
)

// followerBatch is the most events one Deliver gets: the cursor is saved after each
// batch, so it bounds what a crash sends again.
const followerBatch = 64

// Manager keeps the endpoints and runs a follower for each in the Set. Its methods are
// safe for concurrent use; the ones that change endpoints are serialised.
type Manager struct {
	opts   Options
	client *http.Client

	opMu sync.Mutex // Create, Delete, Replay and sync, one at a time

	mu  sync.Mutex
	eps map[string]*member

	cancel context.CancelFunc
	done   chan struct{}
}

// member is an endpoint this instance runs a follower for.
type member struct {
	ep   Endpoint
	sink *sink
	f    *events.Follower
}

// Open loads the stored endpoints, adds their followers to o.Set, and keeps reading them
// every o.SyncEvery until Close or until ctx ends.
func Open(ctx context.Context, o Options) (*Manager, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{opts: o, client: newClient(&o), eps: map[string]*member{}, done: make(chan struct{})}
	live, err := m.sync(ctx)
	if err != nil {
		return nil, fmt.Errorf("webhook: load endpoints: %w", err)
	}
	if err := m.sweepOrphans(ctx, live); err != nil {
		o.Logger.Warn("webhook: sweeping what deleted endpoints left failed", "err", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	go m.syncLoop(sctx)
	return m, nil
}

// Close stops reading the endpoints and removes their followers from the Set.
func (m *Manager) Close() {
	m.cancel()
	<-m.done
	m.opMu.Lock()
	defer m.opMu.Unlock()
	for id := range m.members() {
		m.stop(id)
	}
}

func (m *Manager) members() map[string]*member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*member, len(m.eps))
	for id, mem := range m.eps {
		out[id] = mem
	}
	return out
}

func (m *Manager) member(id string) *member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.eps[id]
}

// start adds ep's follower to the Set (it runs at once if the Set does).
func (m *Manager) start(ep Endpoint) {
	s := newSink(m, ep)
	f := &events.Follower{Name: followerName(ep.ID), Source: m.opts.Source, Meta: m.opts.Meta,
		Hub: m.opts.Hub, Sink: s, Filter: filter(ep.EventTypes), Batch: followerBatch,
		Logger: m.opts.Logger, Now: m.opts.Now}
	m.mu.Lock()
	m.eps[ep.ID] = &member{ep: ep, sink: s, f: f}
	m.mu.Unlock()
	m.opts.Set.Add(f)
}

// stop removes id's follower, waiting until it has stopped: no attempt is in flight after.
func (m *Manager) stop(id string) {
	m.opts.Set.Remove(followerName(id))
	m.mu.Lock()
	delete(m.eps, id)
	m.mu.Unlock()
}

// stored reads every endpoint from the store.
func (m *Manager) stored(ctx context.Context) (map[string]Endpoint, error) {
	out := map[string]Endpoint{}
	from := ""
	for {
		kvs, err := m.opts.Meta.ScanMeta(ctx, NS, "e/", from, false, 500)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			ep, err := decodeEndpoint(kv.Value)
			if err != nil {
				return nil, err
			}
			out[ep.ID] = ep
		}
		if len(kvs) < 500 {
			return out, nil
		}
		from = kvs[len(kvs)-1].Key + " " // ids have one length: the next key is past this
	}
}

// sync makes the followers match the stored endpoints (endpoints never change, they are
// only created and deleted), and returns the stored ids.
func (m *Manager) sync(ctx context.Context) (map[string]bool, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	eps, err := m.stored(ctx)
	if err != nil {
		return nil, err
	}
	live := make(map[string]bool, len(eps))
	running := m.members()
	for id, ep := range eps {
		live[id] = true
		if running[id] == nil {
			m.start(ep)
		}
	}
	for id := range running {
		if !live[id] {
			m.stop(id)
		}
	}
	return live, nil
}

func (m *Manager) syncLoop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.opts.SyncEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := m.sync(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			m.opts.Logger.Warn("webhook: reading the endpoints failed; retrying", "err", err)
		case err == nil && failing:
			m.opts.Logger.Info("webhook: reading the endpoints works again")
		}
		failing = err != nil
	}
}

// sweepOrphans deletes the state, logs and cursors of endpoints that are gone (a crash
// in the middle of Delete leaves them), skipping from one endpoint's keys to the next.
func (m *Manager) sweepOrphans(ctx context.Context, live map[string]bool) error {
	for _, p := range []struct{ ns, prefix string }{{NS, "s/"}, {NS, "d/"}, {NS, "x/"}, {events.CursorNS, "webhook:"}} {
		from := p.prefix
		for {
			kvs, err := m.opts.Meta.ScanMeta(ctx, p.ns, p.prefix, from, false, 1)
			if err != nil || len(kvs) == 0 {
				if err != nil {
					return err
				}
				break
			}
			id, _, _ := strings.Cut(strings.TrimPrefix(kvs[0].Key, p.prefix), "/")
			if !live[id] {
				if err := sweepNS(ctx, m.opts.Meta, p.ns, p.prefix+id); err != nil {
					return err
				}
			}
			from = p.prefix + id + "0" // past every key of id: '0' sorts after '/', and ids have one length
		}
	}
	return nil
}

// Create registers an endpoint and starts delivering to it the events committed from
// now on (Replay delivers older ones). The returned Endpoint has its Secret, which no
// other call returns. Errors: invalid_request (a bad URL, an unknown event type, a long
// description, too many endpoints), webhook_url_forbidden (a host that is not public).
func (m *Manager) Create(ctx context.Context, spec Spec) (Endpoint, error) {
	types, err := spec.check()
	if err != nil {
		return Endpoint{}, err
	}
	if err := checkURL(ctx, spec.URL, m.opts.AllowPrivate, m.opts.Resolver); err != nil {
		return Endpoint{}, err
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	eps, err := m.stored(ctx)
	if err != nil {
		return Endpoint{}, err
	}
	if len(eps) >= EndpointsMax {
		return Endpoint{}, ledger.Errorf(ledger.CodeInvalidRequest, "this server has %d webhook endpoints, the most it takes; delete one first", EndpointsMax)
	}
	head, err := m.opts.Source.Head(ctx)
	if err != nil {
		return Endpoint{}, err
	}
	now := m.opts.Now()
	ep := Endpoint{ID: newID(), URL: spec.URL, EventTypes: types, Description: spec.Description,
		Secret: newSecret(), CreatedAt: now.UnixNano()}
	v, _ := json.Marshal(ep)
	if err := m.opts.Meta.WriteMeta(ctx, store.MetaOp{NS: NS, Key: endpointKey(ep.ID), Value: v},
		events.CursorOp(followerName(ep.ID), events.Position{Seq: head.Seq + 1}, now)); err != nil {
		return Endpoint{}, err
	}
	m.start(ep)
	m.opts.Logger.Info("webhook endpoint created", "endpoint", ep.ID, "event_types", len(types))
	return ep, nil
}

// errNotFound is the answer for an unknown endpoint id.
var errNotFound = ledger.Errorf(ledger.CodeWebhookNotFound, "no webhook endpoint with that id")

// Get returns an endpoint without its secret. Errors: webhook_not_found.
func (m *Manager) Get(ctx context.Context, id string) (Endpoint, error) {
	if !ValidID(id) {
		return Endpoint{}, errNotFound
	}
	v, err := m.opts.Meta.GetMeta(ctx, NS, endpointKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return Endpoint{}, errNotFound
	}
	if err != nil {
		return Endpoint{}, err
	}
	ep, err := decodeEndpoint(v)
	ep.Secret = ""
	return ep, err
}

// List returns up to limit endpoints without their secrets, ordered by id, after cursor
// (the id of the last endpoint of the page before); next is "" on a short page.
func (m *Manager) List(ctx context.Context, cursor string, limit int) (eps []Endpoint, next string, err error) {
	from := "e/"
	if cursor != "" {
		if !ValidID(cursor) {
			return nil, "", errBadCursor
		}
		from = endpointKey(cursor) + " " // past the cursor's key: ids have one length
	}
	kvs, err := m.opts.Meta.ScanMeta(ctx, NS, "e/", from, false, limit)
	if err != nil {
		return nil, "", err
	}
	for _, kv := range kvs {
		ep, err := decodeEndpoint(kv.Value)
		if err != nil {
			return nil, "", err
		}
		ep.Secret = ""
		eps = append(eps, ep)
	}
	if len(eps) == limit {
		next = eps[len(eps)-1].ID
	}
	return eps, next, nil
}

// Delete removes an endpoint: delivery stops at once (an attempt in flight is cut off),
// and with the endpoint go its state, logs and cursor. Errors: webhook_not_found.
func (m *Manager) Delete(ctx context.Context, id string) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if _, err := m.Get(ctx, id); err != nil {
		return err
	}
	m.stop(id)
	if err := m.opts.Meta.WriteMeta(ctx, store.MetaOp{NS: NS, Key: endpointKey(id)},
		store.MetaOp{NS: NS, Key: stateKey(id)}, store.MetaOp{NS: events.CursorNS, Key: followerName(id)}); err != nil {
		return err // the sync puts the follower back within SyncEvery
	}
	m.opts.Logger.Info("webhook endpoint deleted", "endpoint", id)
	for _, p := range []string{deliveryPrefix(id), deadPrefix(id)} {
		if err := sweepNS(ctx, m.opts.Meta, NS, p); err != nil {
			// Gone from the API already; the next start sweeps what is left.
			m.opts.Logger.Warn("webhook: deleting an endpoint's logs failed", "endpoint", id, "err", err)
			break
		}
	}
	return nil
}

// Replay makes the endpoint deliver again from the first event of journal record
// fromSeq (1 to the head's seq + 1), with the events' own ids. The event being retried,
// if any, is dropped, the next attempt is made at once, and the replayed events get
// fresh retry windows; the breaker's count of failures stays. Errors: webhook_not_found,
// invalid_request (fromSeq out of range).
func (m *Manager) Replay(ctx context.Context, id string, fromSeq uint64) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if _, err := m.Get(ctx, id); err != nil {
		return err
	}
	head, err := m.opts.Source.Head(ctx)
	if err != nil {
		return err
	}
	if fromSeq < 1 || fromSeq > head.Seq+1 {
		return ledger.Errorf(ledger.CodeInvalidRequest, "from_seq must be from 1 to %d (the journal's head + 1)", head.Seq+1)
	}
	mem := m.member(id)
	if mem != nil {
		// Stop the follower, so that no attempt and no cursor write of the old position
		// races the new one; it starts again below from the stored cursor.
		m.opts.Set.Remove(mem.f.Name)
		defer m.opts.Set.Add(mem.f)
	}
	st, _, err := loadState(ctx, m.opts.Meta, id)
	if err != nil {
		return err
	}
	st.EventID, st.Attempts, st.FirstAttempt, st.NextAttempt = "", 0, 0, 0
	op := store.MetaOp{NS: NS, Key: stateKey(id)}
	if st != (state{}) {
		op.Value, _ = json.Marshal(st)
	}
	name := followerName(id)
	if err := m.opts.Meta.WriteMeta(ctx, op, events.CursorOp(name, events.Position{Seq: fromSeq}, m.opts.Now())); err != nil {
		return err
	}
	if mem != nil {
		mem.sink.mu.Lock()
		mem.sink.loaded = false // the follower is stopped: Deliver does not run
		mem.sink.mu.Unlock()
	}
	m.opts.Logger.Info("webhook replay", "endpoint", id, "from_seq", fromSeq)
	return nil
}

// Deliveries returns up to limit entries of the endpoint's delivery log, newest first,
// from after cursor. Errors: webhook_not_found, invalid_request (a bad cursor).
func (m *Manager) Deliveries(ctx context.Context, id, cursor string, limit int) ([]Delivery, string, error) {
	if _, err := m.Get(ctx, id); err != nil {
		return nil, "", err
	}
	kvs, cursors, next, err := page(ctx, m.opts.Meta, deliveryPrefix(id), cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]Delivery, len(kvs))
	for i, kv := range kvs {
		if err := json.Unmarshal(kv.Value, &out[i]); err != nil {
			return nil, "", fmt.Errorf("webhook: delivery %s: %w", kv.Key, err)
		}
		out[i].Cursor = cursors[i]
	}
	return out, next, nil
}

// DeadLetters returns up to limit of the endpoint's dead letters, newest first, from
// after cursor. Errors: webhook_not_found, invalid_request (a bad cursor).
func (m *Manager) DeadLetters(ctx context.Context, id, cursor string, limit int) ([]DeadLetter, string, error) {
	if _, err := m.Get(ctx, id); err != nil {
		return nil, "", err
	}
	kvs, cursors, next, err := page(ctx, m.opts.Meta, deadPrefix(id), cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]DeadLetter, len(kvs))
	for i, kv := range kvs {
		if err := json.Unmarshal(kv.Value, &out[i]); err != nil {
			return nil, "", fmt.Errorf("webhook: dead letter %s: %w", kv.Key, err)
		}
		out[i].Cursor = cursors[i]
	}
	return out, next, nil
}
