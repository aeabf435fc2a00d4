package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tpwallet/tpwallet/internal/store"
)

// Sink is where a follower delivers events.
type Sink interface {
	// Deliver hands evs on, in order. It returns how many of them, from the first, are
	// delivered for good (the follower's cursor moves past those), and an error when that
	// is not all of them: the follower retries the rest after a backoff. It must return
	// when ctx is done.
	Deliver(ctx context.Context, evs []Event) (int, error)
}

// SinkFunc makes a function a Sink.
type SinkFunc func(ctx context.Context, evs []Event) (int, error)

// Deliver calls f.
func (f SinkFunc) Deliver(ctx context.Context, evs []Event) (int, error) { return f(ctx, evs) }

// CursorNS is the store.Meta namespace of follower cursors, keyed by follower name.
const CursorNS = "cursor"

// cursorValue is a cursor as stored: JSON, so that an operator can read it.
type cursorValue struct {
	Position
	UpdatedAt time.Time `json:"updated_at"`
}

// LoadCursor returns the stored position of follower name, Start when it has none.
func LoadCursor(ctx context.Context, m store.Meta, name string) (Position, error) {
	v, err := m.GetMeta(ctx, CursorNS, name)
	if errors.Is(err, store.ErrNotFound) {
		return Start, nil
	}
	if err != nil {
		return Position{}, err
	}
	var c cursorValue
	if err := json.Unmarshal(v, &c); err != nil || c.Seq == 0 || c.Index < 0 {
		return Position{}, fmt.Errorf("events: cursor of %s: %q is not a position", name, v)
	}
	return c.Position, nil
}

// CursorOp is the store write that saves p as follower name's position.
func CursorOp(name string, p Position, now time.Time) store.MetaOp {
	v, _ := json.Marshal(cursorValue{Position: p, UpdatedAt: now.UTC()})
	return store.MetaOp{NS: CursorNS, Key: name, Value: v}
}

// Follower delivers the journal's events to a Sink, at least once and in order, from a
// cursor it keeps in the store.
type Follower struct {
	Name   string // unique among followers; names the cursor and the metrics
	Source Source
	Meta   store.Meta
	Hub    *Hub // optional: wakes the follower on commits instead of polling
	Sink   Sink
	Filter Filter
	// Batch is the most events one Deliver gets (default 1024).
	Batch int
	// Poll is how long the follower waits for new records without word from the hub
	// (default 200 ms).
	Poll time.Duration
	// SaveEvery is how often the cursor is saved while events flow (default 100 ms); it
	// is saved too whenever the follower catches up and when it stops.
	SaveEvery time.Duration
	// MinBackoff and MaxBackoff bound the wait before retrying after an error (defaults
	// 100 ms and 30 s); it doubles from one to the other, with jitter.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	Now                    func() time.Time

	mu     sync.Mutex
	st     Status
	seekTo *Position
	wake   chan struct{}
}

// Status is what a follower reports about itself.
type Status struct {
	Name      string   `json:"name"`
	Position  Position `json:"position"`  // the next event to deliver
	Delivered uint64   `json:"delivered"` // events delivered since start
	Errors    uint64   `json:"errors"`    // failed reads, deliveries and cursor writes since start
	LastError string   `json:"last_error,omitempty"`
	// LagRecords is how many records lie at or after Position; LagSeconds how old the
	// record at Position is (0 when caught up).
	LagRecords uint64  `json:"lag_records"`
	LagSeconds float64 `json:"lag_seconds"`
	Running    bool    `json:"running"`
	// pendingTime is the timestamp of the record at Position, 0 when caught up.
	pendingTime int64
}

func (f *Follower) defaults() {
	if f.Batch <= 0 {
		f.Batch = 1024
	}
	if f.Poll <= 0 {
		f.Poll = 200 * time.Millisecond
	}
	if f.SaveEvery <= 0 {
		f.SaveEvery = 100 * time.Millisecond
	}
	if f.MinBackoff <= 0 {
		f.MinBackoff = 100 * time.Millisecond
	}
	if f.MaxBackoff < f.MinBackoff {
		f.MaxBackoff = max(30*time.Second, f.MinBackoff)
	}
	if f.Logger == nil {
		f.Logger = slog.New(slog.DiscardHandler)
	}
	if f.Now == nil {
		f.Now = time.Now
	}
	f.mu.Lock()
	if f.wake == nil {
		f.wake = make(chan struct{}, 1)
	}
	f.st.Name = f.Name
	f.mu.Unlock()
}

// Status returns the follower's state. Lag is measured against head, the journal's newest
// seq as the caller knows it.
func (f *Follower) Status(head uint64) Status {
	f.mu.Lock()
	s := f.st
	f.mu.Unlock()
	s.Name = f.Name
	if s.Position.Seq == 0 { // not loaded yet
		s.Position = Start
	}
	if head >= s.Position.Seq {
		s.LagRecords = head - s.Position.Seq + 1
	}
	if s.LagRecords > 0 && s.pendingTime > 0 {
		now := time.Now
		if f.Now != nil {
			now = f.Now
		}
		s.LagSeconds = max(0, float64(now().UnixNano()-s.pendingTime)/1e9)
	}
	return s
}

// Seek moves the follower to p (a replay when p is behind it), saving p as its cursor
// before it takes effect: a Run in progress picks it up before its next read.
func (f *Follower) Seek(ctx context.Context, p Position) error {
	f.defaults()
	if p.Seq == 0 {
		p = Start
	}
	if err := f.Meta.WriteMeta(ctx, CursorOp(f.Name, p, f.Now())); err != nil {
		return err
	}
	f.mu.Lock()
	f.seekTo = &p
	f.st.Position, f.st.pendingTime = p, 0
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return nil
}

func (f *Follower) setErr(err error) {
	f.mu.Lock()
	f.st.Errors++
	f.st.LastError = err.Error()
	f.mu.Unlock()
}

// Run delivers events until ctx is done, then returns ctx's error. Errors on the way
// (store unreachable, sink failing) are retried with backoff, logged and counted in Status.
//
// The cursor is saved at most every SaveEvery while events flow, whenever the follower
// catches up, and when it stops: after a crash, what was delivered since the last save
// comes again (at least once).
func (f *Follower) Run(ctx context.Context) error {
	f.defaults()
	f.mu.Lock()
	f.st.Running = true
	f.mu.Unlock()
	var p Position
	var saved time.Time // when the cursor was last saved
	dirty := false      // p is ahead of the saved cursor
	save := func(ctx context.Context) {
		if !dirty {
			return
		}
		if err := f.Meta.WriteMeta(ctx, CursorOp(f.Name, p, f.Now())); err != nil {
			if ctx.Err() == nil {
				f.setErr(fmt.Errorf("save cursor: %w", err))
				f.Logger.Warn("follower: save cursor failed; retrying", "follower", f.Name, "err", err)
			}
			return
		}
		dirty, saved = false, time.Now()
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		f.mu.Lock()
		seeking := f.seekTo != nil
		f.mu.Unlock()
		if !seeking {
			save(sctx)
		}
		f.mu.Lock()
		f.st.Running = false
		f.mu.Unlock()
	}()
	backoff := time.Duration(0)
	failed := func(what string, err error) {
		if ctx.Err() != nil {
			return
		}
		f.setErr(fmt.Errorf("%s: %w", what, err))
		backoff = min(max(2*backoff, f.MinBackoff), f.MaxBackoff)
		f.Logger.Warn("follower: "+what+" failed; retrying", "follower", f.Name, "err", err, "retry_in", backoff)
		f.sleep(ctx, jitter(backoff))
	}
	// delivered moves p past n more delivered events, unless a Seek came meanwhile.
	delivered := func(to Position, n int) {
		f.mu.Lock()
		f.st.Delivered += uint64(n)
		if f.seekTo == nil {
			p, f.st.Position, dirty = to, to, true
		}
		f.mu.Unlock()
		if time.Since(saved) >= f.SaveEvery {
			save(ctx)
		}
	}
	loaded := false
	for ctx.Err() == nil {
		if !loaded {
			var err error
			if p, err = LoadCursor(ctx, f.Meta, f.Name); err != nil {
				failed("load cursor", err)
				continue
			}
			loaded, saved = true, time.Now()
			f.mu.Lock()
			f.st.Position = p
			f.mu.Unlock()
		}
		f.mu.Lock()
		if f.seekTo != nil { // Seek saved it
			p, f.seekTo, dirty = *f.seekTo, nil, false
		}
		f.mu.Unlock()
		evs, next, first, err := Read(ctx, f.Source, p, f.Batch, f.Filter)
		if err != nil {
			failed("read journal", err)
			continue
		}
		f.mu.Lock()
		f.st.pendingTime = first
		f.mu.Unlock()
		if next == p { // caught up
			save(ctx)
			if err := Wait(ctx, f.Hub, p.Seq-1, f.Poll); err != nil {
				break
			}
			select { // a Seek woke us
			case <-f.wake:
			default:
			}
			continue
		}
		if len(evs) > 0 {
			n, err := f.Sink.Deliver(ctx, evs)
			n = min(max(n, 0), len(evs))
			if n < len(evs) {
				if n > 0 {
					delivered(Next(evs[n-1].Seq, evs[n-1].Index), n)
				}
				if err == nil {
					err = errors.New("sink delivered only part of the batch")
				}
				failed("deliver", err)
				continue
			}
		}
		delivered(next, len(evs))
		backoff = 0
	}
	return ctx.Err()
}

func (f *Follower) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-f.wake:
	}
}

// jitter returns a duration in [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}
