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
	// ErrClosed (which is also ErrStopped): the submission came after Close and was not
	// queued, so nothing of it was applied.
	ErrClosed = fmt.Errorf("%w: closed", ErrStopped)
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
	// Observer, when set, sees every batch committed or failed (metrics).
	Observer Observer
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
	Timing  Timing          // when the submission went through the writer
}

// Timing is when a submission went through the writer, so that a caller can draw its
// queue wait, apply and commit as trace spans after the fact (the engine does not trace).
// The stamps are time.Now readings, wall clock with a monotonic reading, taken whether or
// not anyone traces: one per submission and four per batch. Queued ≤ ApplyStart ≤
// ApplyEnd ≤ CommitStart ≤ CommitEnd; between ApplyEnd and CommitStart the batch waits
// for the commit of the batch before it.
type Timing struct {
	Queued                 time.Time // Submit put the submission on the queue
	ApplyStart, ApplyEnd   time.Time // its batch: prefetch, Apply, seal, idempotent answers
	CommitStart, CommitEnd time.Time // its batch's Store.Commit
	BatchRequests          int       // requests in its batch, all submissions together
}

type call struct {
	sub    *Submission
	reply  chan result // capacity 1: the writer never blocks on a slow caller
	queued time.Time   // Reply.Timing.Queued
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
	head  journal.Head  // the latest record applied (maybe not yet durable); writer-owned

	closeOnce sync.Once
	closeErr  error

	mu       sync.RWMutex // guards closed and sending on requests
	closed   bool
	requests chan *call
	done     chan struct{} // closed when the writer and the committer have exited

	failed    atomic.Pointer[error] // set once, when a commit fails
	assetList atomic.Pointer[[]ledger.Asset]
	headSeq   atomic.Uint64
	batches   atomic.Uint64
	inMemory  atomic.Uint64 // batches applied in memory, durable or not
	applied   atomic.Uint64
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
	// Stamped before the send, so that Queued ≤ ApplyStart even when the writer takes
	// the call at once.
	c := &call{sub: s, reply: make(chan result, 1), queued: time.Now()}
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return Reply{}, ErrClosed
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
	Applied  uint64 // batches applied in memory (some may still be committing)
	Batches  uint64 // commits
	Requests uint64 // requests applied (accepted or rejected)
}

// Stats returns counters since Open.
func (e *Engine) Stats() Stats {
	return Stats{Applied: e.inMemory.Load(), Batches: e.batches.Load(), Requests: e.applied.Load()}
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
	e.closeOnce.Do(func() { e.closeErr = e.store.Close() })
	return e.closeErr
}

// run is the writer: it takes whatever is queued, with no timer, up to the batch bound,
// applies it and hands the commit to the committer goroutine, so that the next batch is
// applied while this one syncs. For a store that asks for large batches (LargeBatcher) it
// commits each batch itself instead, and takes the next one only when the commit is done:
// a batch then holds everything that queued during the commit before it. Nobody is
// answered before their batch is durable.
func (e *Engine) run() {
	lb, ok := e.store.(LargeBatcher)
	inline := ok && lb.LargeBatches()
	commits := make(chan *pending, 1)
	committed := make(chan struct{})
	go e.commitLoop(commits, committed)
	defer func() {
		close(commits)
		<-committed
		close(e.done)
	}()
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
		var batch []*call
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
		if p := e.apply(batch, n); p != nil {
			if inline {
				e.commit(p)
			} else {
				commits <- p
			}
		}
		// Memory keeps finished transfers only until the store can answer for them: wait
		// for every commit in flight, then forget. This is rare (every recentMax finished
		// transfers), so the pipeline stalls rarely.
		if e.state.RecentCount() > recentMax {
			e.drain(commits)
			e.state.ForgetRecent()
		}
	}
}

// pending is a batch applied in memory and waiting to be durable.
type pending struct {
	batch   []*call
	results [][]ledger.Result
	time    int64
	commit  journal.Commit
	assets  []ledger.Asset // the new asset list, when the batch created an asset
	barrier chan struct{}  // set for a drain request: closed when all before it are durable
	holds   int            // pending holds after it
	timing  Timing         // its apply stamps and size; Queued is per call
}

// drain waits until every commit handed to the committer is done.
func (e *Engine) drain(commits chan<- *pending) {
	b := make(chan struct{})
	commits <- &pending{barrier: b}
	<-b
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

// apply applies one batch of n requests in memory, seals its record and renders its
// idempotent answers. It returns nil when the batch was answered already (the engine has
// stopped).
func (e *Engine) apply(batch []*call, n int) *pending {
	if err := e.Err(); err != nil {
		reply(batch, result{err: err})
		return nil
	}
	start := time.Now()
	ctx := context.Background()
	if err := e.prefetch(ctx, batch); err != nil {
		e.fail(fmt.Errorf("read transfer: %w", err), batch)
		return nil
	}
	cmds := e.cmds[:0]
	for _, c := range batch {
		cmds = append(cmds, c.sub.Command)
	}
	b := e.state.Apply(e.opts.Now(), cmds)
	clear(cmds)
	e.cmds = cmds[:0]

	p := &pending{batch: batch, results: b.Results, time: b.Time, commit: journal.Commit{Accounts: b.Touched},
		timing: Timing{ApplyStart: start, BatchRequests: n}}
	if len(b.Changes) > 0 {
		p.commit.Record = &journal.Record{Seq: e.head.Seq + 1, PrevHash: e.head.Hash,
			Timestamp: b.Time, Changes: b.Changes}
		journal.Seal(p.commit.Record)
		e.head = journal.Head{Seq: p.commit.Record.Seq, Hash: p.commit.Record.Hash}
		for i := range b.Changes {
			if b.Changes[i].Op == ledger.ChangeAssetCreate {
				p.assets = e.state.Assets()
				break
			}
		}
	}
	for i, c := range batch {
		p.commit.APIKeys = append(p.commit.APIKeys, c.sub.APIKeys...)
		if id := c.sub.Idempotency; id != nil {
			status, body, keep := id.Render(b.Results[i])
			if keep {
				p.commit.Idempotency = append(p.commit.Idempotency, journal.Idempotency{
					Scope: id.Scope, Key: id.Key, RequestHash: id.RequestHash, Status: status,
					Body: body, ExpiresAt: b.Time + int64(id.TTL)})
			}
		}
	}
	if invariants.Enabled {
		if err := e.state.CheckInvariants(); err != nil {
			panic("engine: " + err.Error())
		}
	}
	e.inMemory.Add(1)
	p.timing.ApplyEnd = time.Now()
	if e.opts.Observer != nil {
		p.holds = e.state.HoldCount()
	}
	return p
}

// commitLoop is the committer: it makes each applied batch durable in order, with one
// Store.Commit, and only then replies. After a failed commit it commits nothing more: the
// batches applied after it answer ErrStopped.
func (e *Engine) commitLoop(commits <-chan *pending, done chan<- struct{}) {
	defer close(done)
	for p := range commits {
		if p.barrier != nil {
			close(p.barrier)
			continue
		}
		e.commit(p)
	}
}

// commit makes p durable with one Store.Commit and then replies to its callers. It runs on
// the committer goroutine, or on the writer when the writer commits inline (never both in
// one engine), one batch at a time, in order.
func (e *Engine) commit(p *pending) {
	if err := e.Err(); err != nil {
		reply(p.batch, result{err: err})
		return
	}
	c := &p.commit
	p.timing.CommitStart = time.Now()
	if c.Record != nil || len(c.Idempotency) > 0 || len(c.APIKeys) > 0 {
		if err := e.store.Commit(context.Background(), c); err != nil {
			e.observe(p, 0, err)
			e.fail(fmt.Errorf("commit: %w", err), p.batch)
			return
		}
	}
	p.timing.CommitEnd = time.Now()
	e.observe(p, p.timing.CommitEnd.Sub(p.timing.CommitStart), nil)
	seq := e.headSeq.Load()
	if c.Record != nil {
		seq = c.Record.Seq
		e.headSeq.Store(seq)
	}
	if p.assets != nil {
		e.assetList.Store(&p.assets)
	}
	e.batches.Add(1)
	for i, cl := range p.batch {
		e.applied.Add(uint64(len(cl.sub.Command.Requests)))
		t := p.timing
		t.Queued = cl.queued
		cl.reply <- result{reply: Reply{Results: p.results[i], Seq: seq, Time: p.time, Timing: t}}
	}
}

// observe tells the Observer about p.
func (e *Engine) observe(p *pending, commit time.Duration, err error) {
	o := e.opts.Observer
	if o == nil {
		return
	}
	cmds := make([]ledger.Command, len(p.batch))
	for i, c := range p.batch {
		cmds[i] = c.sub.Command
	}
	o.Batch(&BatchInfo{Commands: cmds, Results: p.results, Record: p.commit.Record,
		Apply:  p.timing.ApplyEnd.Sub(p.timing.ApplyStart),
		Commit: commit, Err: err, Holds: p.holds})
}

// prefetch makes sure the state knows every existing transfer the batch names by id.
// Pending transfers are always in memory; finished ones are history in the store, or in
// memory (State.recent) while a commit that wrote them may still be in flight.
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
		"err", err)
	reply(batch, result{err: stopped})
}

func reply(batch []*call, r result) {
	for _, c := range batch {
		c.reply <- r
	}
}
