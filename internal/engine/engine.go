package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tpwallet/tpwallet/internal/invariants"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Limits of one engine. A batch holds at most BatchRequestsMax requests, except that a single
// submission of up to ledger.BatchTransfersMax is never split.
const (
	BatchRequestsMax = 8192
	QueueDepthMax    = 4 * 8192
	recentMax        = 1 << 16 // finished transfers remembered between batches
)

const _ = uint(BatchRequestsMax - ledger.BatchTransfersMax) // a batch request must fit in one batch

// Sentinel errors a caller branches on.
var (
	// ErrOverloaded: the queue is full; retry later (the API answers 503 overloaded).
	ErrOverloaded = errors.New("engine: overloaded")
	// ErrStopped: the engine takes no more writes, after Close or a failed commit.
	ErrStopped = errors.New("engine: stopped")
)

// Options configure an Engine. The zero value is usable.
type Options struct {
	// BatchRequestsMax bounds the requests applied in one batch (default BatchRequestsMax).
	BatchRequestsMax int
	// QueueDepth bounds the submissions waiting for the writer (default QueueDepthMax).
	QueueDepth int
	// Now returns engine time in Unix ns (default the wall clock). Times the engine assigns
	// strictly increase even if Now goes backwards.
	Now func() int64
	// Logger receives lifecycle and failure messages (default: discard).
	Logger *slog.Logger
}

// EnsureDefaults fills in zero fields.
func (o *Options) EnsureDefaults() {
	if o.BatchRequestsMax <= 0 {
		o.BatchRequestsMax = BatchRequestsMax
	}
	if o.QueueDepth <= 0 {
		o.QueueDepth = QueueDepthMax
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixNano() }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Submission is what a caller asks the writer to do atomically with one commit.
type Submission struct {
	Command ledger.Command
	// Idempotency, when set, makes the answer durable in the same commit as the write.
	Idempotency *Idempotency
	// APIKeys are stored in the same commit (created or revoked keys).
	APIKeys []journal.APIKey
}

// Idempotency asks the writer to store the answer to a request sent with an
// Idempotency-Key. Render runs on the writer goroutine after Apply and before the commit:
// it must be quick and must not block. When it returns store false, nothing is kept.
type Idempotency struct {
	Scope       string
	Key         string
	RequestHash journal.Hash
	TTL         time.Duration
	Render      func(results []ledger.Result) (status int, body []byte, store bool)
}

// Reply is the writer's answer to a Submission, sent only once the batch is durable.
type Reply struct {
	Results []ledger.Result // one per request of the Command
	Seq     uint64          // the journal record of the batch; 0 if it changed nothing
	Time    int64           // the batch's engine time
}

type call struct {
	sub   *Submission
	reply chan result // capacity 1: the writer never blocks on a slow caller
}

type result struct {
	reply Reply
	err   error
}

// Engine is the single writer of one ledger. Submit is safe for concurrent use.
type Engine struct {
	opts  Options
	store Store
	state *ledger.State // owned by the writer goroutine
	head  journal.Head  // owned by the writer goroutine

	mu       sync.RWMutex // guards closed and sending on requests
	closed   bool
	requests chan *call
	done     chan struct{} // closed when the writer has exited

	failed    atomic.Pointer[error] // set once, when a commit fails
	assetList atomic.Pointer[[]ledger.Asset]
	headSeq   atomic.Uint64
	batches   atomic.Uint64
	applied   atomic.Uint64
	buf       []*call
	cmds      []ledger.Command
}

// Open loads the state from store and starts the writer. The engine owns store from now on:
// Close closes it.
func Open(ctx context.Context, store Store, o Options) (*Engine, error) {
	o.EnsureDefaults()
	st, head, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine: load: %w", err)
	}
	if invariants.Enabled {
		if err := st.CheckInvariants(); err != nil {
			return nil, fmt.Errorf("engine: loaded state: %w", err)
		}
	}
	e := &Engine{
		opts:     o,
		store:    store,
		state:    st,
		head:     head,
		requests: make(chan *call, o.QueueDepth),
		done:     make(chan struct{}),
	}
	e.headSeq.Store(head.Seq)
	assets := st.Assets()
	e.assetList.Store(&assets)
	o.Logger.Info("engine open", "head_seq", head.Seq, "accounts", st.AccountCount(),
		"holds", len(st.Holds()))
	go e.run()
	return e, nil
}

// Submit queues s and waits until its batch is durable. It returns ErrOverloaded at once
// if the queue is full, ErrStopped once the engine takes no more writes, and ctx.Err() if
// ctx ends first — in that case the write may still be applied: the caller retries with
// the same Idempotency-Key (or transfer id) to learn the outcome.
func (e *Engine) Submit(ctx context.Context, s *Submission) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	if err := e.Err(); err != nil {
		return Reply{}, err
	}
	c := &call{sub: s, reply: make(chan result, 1)}
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return Reply{}, ErrStopped
	}
	select {
	case e.requests <- c:
	default:
		e.mu.RUnlock()
		return Reply{}, ErrOverloaded
	}
	e.mu.RUnlock()
	select {
	case r := <-c.reply:
		return r.reply, r.err
	case <-ctx.Done():
		return Reply{}, ctx.Err()
	}
}

// Err returns nil while the engine takes writes, else why not (wrapping ErrStopped).
func (e *Engine) Err() error {
	if p := e.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// HeadSeq returns the seq of the latest committed journal record.
func (e *Engine) HeadSeq() uint64 { return e.headSeq.Load() }

// Queued returns how many submissions wait for the writer.
func (e *Engine) Queued() int { return len(e.requests) }

// Assets returns every asset, sorted by code, as of the latest commit.
func (e *Engine) Assets() []ledger.Asset { return *e.assetList.Load() }

// Stats are counters since Open.
type Stats struct {
	Batches  uint64 // commits
	Requests uint64 // requests applied (accepted or rejected)
}

// Stats returns counters since Open.
func (e *Engine) Stats() Stats {
	return Stats{Batches: e.batches.Load(), Requests: e.applied.Load()}
}

// Close stops taking submissions, lets the writer finish every queued one, and closes the
// store. It is safe to call more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.requests)
	}
	e.mu.Unlock()
	<-e.done
	return e.store.Close()
}

// run is the writer: it takes whatever is queued, with no timer, up to the batch bound.
func (e *Engine) run() {
	defer close(e.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.armExpiry(timer)
		var first *call
		select {
		case c, ok := <-e.requests:
			if !ok {
				return
			}
			first = c
		case <-timer.C:
		}
		batch := e.buf[:0]
		n := 0
		if first != nil {
			batch = append(batch, first)
			n = len(first.sub.Command.Requests)
		}
	drain:
		for n < e.opts.BatchRequestsMax {
			select {
			case c, ok := <-e.requests:
				if !ok {
					break drain
				}
				batch = append(batch, c)
				n += len(c.sub.Command.Requests)
			default:
				break drain
			}
		}
		e.process(batch)
		clear(batch)
		e.buf = batch[:0]
	}
}

// armExpiry sets timer to fire when the earliest hold is due.
func (e *Engine) armExpiry(timer *time.Timer) {
	if !timer.Stop() {
		select {
		case <-timer.C:
		default:
		}
	}
	next := e.state.NextExpiry()
	if next == 0 || e.Err() != nil {
		timer.Reset(time.Hour)
		return
	}
	d := time.Duration(next - e.opts.Now())
	if d < 0 {
		d = 0
	}
	timer.Reset(d)
}

// process applies one batch, commits it with one sync and only then replies.
func (e *Engine) process(batch []*call) {
	if err := e.Err(); err != nil {
		reply(batch, result{err: err})
		return
	}
	ctx := context.Background()
	if err := e.prefetch(ctx, batch); err != nil {
		e.fail(fmt.Errorf("read transfer: %w", err), batch)
		return
	}
	cmds := e.cmds[:0]
	for _, c := range batch {
		cmds = append(cmds, c.sub.Command)
	}
	b := e.state.Apply(e.opts.Now(), cmds)
	clear(cmds)
	e.cmds = cmds[:0]

	commit := journal.Commit{Accounts: b.Touched}
	if len(b.Changes) > 0 {
		commit.Record = &journal.Record{Seq: e.head.Seq + 1, PrevHash: e.head.Hash,
			Timestamp: b.Time, Changes: b.Changes}
		journal.Seal(commit.Record)
	}
	for i, c := range batch {
		commit.APIKeys = append(commit.APIKeys, c.sub.APIKeys...)
		if id := c.sub.Idempotency; id != nil {
			status, body, keep := id.Render(b.Results[i])
			if keep {
				commit.Idempotency = append(commit.Idempotency, journal.Idempotency{
					Scope: id.Scope, Key: id.Key, RequestHash: id.RequestHash, Status: status,
					Body: body, ExpiresAt: b.Time + int64(id.TTL)})
			}
		}
	}
	if commit.Record != nil || len(commit.Idempotency) > 0 || len(commit.APIKeys) > 0 {
		if err := e.store.Commit(ctx, &commit); err != nil {
			e.fail(fmt.Errorf("commit: %w", err), batch)
			return
		}
	}
	if commit.Record != nil {
		e.head = journal.Head{Seq: commit.Record.Seq, Hash: commit.Record.Hash}
		e.headSeq.Store(e.head.Seq)
		for i := range b.Changes {
			if b.Changes[i].Op == ledger.ChangeAssetCreate {
				assets := e.state.Assets()
				e.assetList.Store(&assets)
				break
			}
		}
	}
	e.batches.Add(1)
	for i, c := range batch {
		e.applied.Add(uint64(len(c.sub.Command.Requests)))
		c.reply <- result{reply: Reply{Results: b.Results[i], Seq: e.head.Seq, Time: b.Time}}
	}
	if invariants.Enabled {
		if err := e.state.CheckInvariants(); err != nil {
			panic("engine: " + err.Error())
		}
	}
	// Every change so far is durable, so the store can answer for finished transfers.
	if e.state.RecentCount() > recentMax {
		e.state.ForgetRecent()
	}
}

// prefetch makes sure the state knows every existing transfer the batch names by id.
// Pending transfers are always in memory; finished ones are history in the store.
func (e *Engine) prefetch(ctx context.Context, batch []*call) error {
	for _, c := range batch {
		for i := range c.sub.Command.Requests {
			r := &c.sub.Command.Requests[i]
			id := r.TransferID
			if r.Op == ledger.OpTransfer {
				id = r.Transfer.ID
			}
			if id == "" || !ledger.ValidID(id) {
				continue
			}
			if _, ok := e.state.Transfer(id); ok {
				continue
			}
			t, err := e.store.Transfer(ctx, id)
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				return err
			case t.Final():
				e.state.Remember(t)
			default:
				return fmt.Errorf("transfer %s is pending in the store but not in memory", id)
			}
		}
	}
	return nil
}

// fail stops the engine for good: the in-memory state may now be ahead of the store, so
// only a restart, which reloads from the store, may take writes again.
func (e *Engine) fail(err error, batch []*call) {
	stopped := fmt.Errorf("%w: %w", ErrStopped, err)
	e.failed.CompareAndSwap(nil, &stopped)
	e.opts.Logger.Error("engine stopped: commit failed; restart to recover from the store",
		"err", err, "head_seq", e.head.Seq)
	reply(batch, result{err: stopped})
}

func reply(batch []*call, r result) {
	for _, c := range batch {
		c.reply <- r
	}
}
