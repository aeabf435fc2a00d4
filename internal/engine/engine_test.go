package engine_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

// clock is an injected engine clock tests advance by hand.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() int64              { return c.ns.Load() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func openStore(t testing.TB, dir string) *pebblestore.Store {
	t.Helper()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func openEngine(t testing.TB, st engine.Store, o engine.Options) *engine.Engine {
	t.Helper()
	e, err := engine.Open(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func submit(t testing.TB, e *engine.Engine, reqs ...ledger.Request) []ledger.Result {
	t.Helper()
	r, err := e.Submit(context.Background(), &engine.Submission{Command: ledger.Command{Requests: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Results
}

func mustOK(t testing.TB, res []ledger.Result) {
	t.Helper()
	for i, r := range res {
		if r.Code != ledger.CodeOK {
			t.Fatalf("result %d: got %s (%s), want ok", i, r.Code, r.Detail)
		}
	}
}

func account(id string, neg bool) ledger.Request {
	return ledger.Request{Op: ledger.OpCreateAccount,
		Account: ledger.AccountRequest{ID: id, Asset: "USD", AllowNegative: neg}}
}

func transfer(id, src, dst string, amount uint64) ledger.Request {
	return ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{ID: id,
		Source: src, Destination: dst, Amount: ledger.AmountFromUint64(amount)}}
}

func hold(id, src, dst string, amount uint64, timeout uint32) ledger.Request {
	r := transfer(id, src, dst, amount)
	r.Transfer.Hold, r.Transfer.HoldTimeout = true, timeout
	return r
}

func balance(t testing.TB, st engine.Store, id string) string {
	t.Helper()
	a, err := st.Account(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Posted().String()
}

func TestSubmitCommitsBeforeReplying(t *testing.T) {
	st := openStore(t, t.TempDir())
	e := openEngine(t, st, engine.Options{})
	defer e.Close()
	mustOK(t, submit(t, e, account("bank", true), account("alice", false)))
	res := submit(t, e, transfer("t1", "bank", "alice", 500))
	mustOK(t, res)
	// The reply came after the commit: the store already answers for it.
	got, err := st.Transfer(context.Background(), "t1")
	if err != nil || got.Status != ledger.TransferPosted {
		t.Fatalf("transfer t1 after reply: got %v %v, want posted", got, err)
	}
	if b := balance(t, st, "alice"); b != "500" {
		t.Fatalf("alice: got %s, want 500", b)
	}
	if b := balance(t, st, "bank"); b != "-500" {
		t.Fatalf("bank: got %s, want -500", b)
	}
	if res := submit(t, e, transfer("t2", "alice", "bank", 501)); res[0].Code != ledger.CodeInsufficientFunds {
		t.Fatalf("overspend: got %s, want insufficient_funds", res[0].Code)
	}
	h, _ := st.Head(context.Background())
	if h.Seq != e.HeadSeq() || h.Seq != 2 {
		t.Fatalf("head: store %d engine %d, want 2 (a rejected write adds no record)", h.Seq, e.HeadSeq())
	}
}

// inline makes a store ask for large batches (engine.LargeBatcher), as pgstore does: the
// writer then commits each batch itself before it takes the next.
type inline struct{ engine.Store }

func (inline) LargeBatches() bool { return true }

// modes are the two ways the writer hands batches to the store.
var modes = []struct {
	name string
	wrap func(engine.Store) engine.Store
}{
	{"pipelined", func(s engine.Store) engine.Store { return s }},
	{"inline", func(s engine.Store) engine.Store { return inline{s} }},
}

// TestGroupCommit checks that concurrent callers share commits: fewer batches than calls.
func TestGroupCommit(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testGroupCommit(t, m.wrap) })
	}
}

func testGroupCommit(t *testing.T, wrap func(engine.Store) engine.Store) {
	st := openStore(t, t.TempDir())
	e := openEngine(t, wrap(st), engine.Options{})
	defer e.Close()
	mustOK(t, submit(t, e, account("bank", true), account("shop", false)))
	const callers, each = 64, 20
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				mustOK(t, submit(t, e, transfer("", "bank", "shop", 1)))
			}
		}(c)
	}
	wg.Wait()
	if b := balance(t, st, "shop"); b != strconv.Itoa(callers*each) {
		t.Fatalf("shop: got %s, want %d", b, callers*each)
	}
	s := e.Stats()
	if s.Batches >= uint64(callers*each) {
		t.Fatalf("batches: got %d for %d calls, want fewer (group commit)", s.Batches, callers*each)
	}
	t.Logf("%d calls in %d batches", callers*each+1, s.Batches)
}

// TestReplyTimingForTraces checks the stamps a caller draws trace spans from: every reply,
// under concurrent callers, has Queued ≤ ApplyStart ≤ ApplyEnd ≤ CommitStart ≤ CommitEnd and
// a batch at least as large as its own submission.
func TestReplyTimingForTraces(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := openStore(t, t.TempDir())
			e := openEngine(t, m.wrap(st), engine.Options{})
			defer e.Close()
			mustOK(t, submit(t, e, account("bank", true), account("shop", false)))
			var wg sync.WaitGroup
			for c := 0; c < 16; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 10; i++ {
						before := time.Now()
						r, err := e.Submit(context.Background(), &engine.Submission{Command: ledger.Command{
							Requests: []ledger.Request{transfer("", "bank", "shop", 1), transfer("", "bank", "shop", 1)}}})
						after := time.Now()
						if err != nil {
							t.Error(err)
							return
						}
						checkTiming(t, before, r.Timing, after)
					}
				}()
			}
			wg.Wait()
		})
	}
}

func checkTiming(t *testing.T, before time.Time, tm engine.Timing, after time.Time) {
	t.Helper()
	stamps := []struct {
		name string
		at   time.Time
	}{{"before Submit", before}, {"Queued", tm.Queued}, {"ApplyStart", tm.ApplyStart}, {"ApplyEnd", tm.ApplyEnd},
		{"CommitStart", tm.CommitStart}, {"CommitEnd", tm.CommitEnd}, {"after Submit", after}}
	for i := 1; i < len(stamps); i++ {
		if stamps[i].at.Before(stamps[i-1].at) {
			t.Errorf("%s %v is before %s %v", stamps[i].name, stamps[i].at, stamps[i-1].name, stamps[i-1].at)
		}
	}
	if tm.BatchRequests < 2 {
		t.Errorf("BatchRequests: got %d, want ≥ 2 (the submission's own requests)", tm.BatchRequests)
	}
}

// gate is a Store whose Commit waits until released, and can be told to fail: a fault
// injector around the real Pebble store, not a mock of it.
type gate struct {
	engine.Store
	entered chan struct{}
	release chan struct{}
	fail    atomic.Bool
}

func (g *gate) Commit(ctx context.Context, c *journal.Commit) error {
	if g.entered != nil {
		g.entered <- struct{}{}
		<-g.release
	}
	if g.fail.Load() {
		return errors.New("injected fsync failure")
	}
	return g.Store.Commit(ctx, c)
}

func TestOverloadedWhenQueueFull(t *testing.T) {
	g := &gate{Store: openStore(t, t.TempDir()), entered: make(chan struct{}), release: make(chan struct{})}
	e := openEngine(t, g, engine.Options{QueueDepth: 1})
	defer e.Close()
	errs := make(chan error, 4)
	send := func(id string) {
		_, err := e.Submit(context.Background(), &engine.Submission{Command: ledger.Command{
			Requests: []ledger.Request{account(id, false)}}})
		errs <- err
	}
	// The writer absorbs three batches while the committer is blocked: one in Commit, one
	// handed over, one applied and waiting to be handed over. The fourth waits in the queue.
	go send("a")
	<-g.entered
	for i, id := range []string{"b", "c"} {
		go send(id)
		for e.Stats().Applied < uint64(i+2) { // wait until the writer has applied it
			time.Sleep(time.Millisecond)
		}
	}
	go send("d")
	for e.Queued() < 1 { // wait until d occupies the queue's only slot
		time.Sleep(time.Millisecond)
	}
	_, err := e.Submit(context.Background(), &engine.Submission{Command: ledger.Command{
		Requests: []ledger.Request{account("e", false)}}})
	if !errors.Is(err, engine.ErrOverloaded) {
		t.Fatalf("full queue: got %v, want ErrOverloaded", err)
	}
	close(g.release)
	go func() {
		for range g.entered {
		}
	}()
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("accepted submit: %v", err)
		}
	}
}

// TestFailStop: a failed commit stops the engine; nothing of the failed batch is durable,
// and a restart from the store resumes from the last durable state.
func TestFailStop(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testFailStop(t, m.wrap) })
	}
}

func testFailStop(t *testing.T, wrap func(engine.Store) engine.Store) {
	dir := t.TempDir()
	g := &gate{Store: openStore(t, dir)}
	e := openEngine(t, wrap(g), engine.Options{})
	mustOK(t, submit(t, e, account("bank", true), account("alice", false)))
	g.fail.Store(true)
	_, err := e.Submit(context.Background(), &engine.Submission{Command: ledger.Command{
		Requests: []ledger.Request{transfer("lost", "bank", "alice", 7)}}})
	if !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("failed commit: got %v, want ErrStopped", err)
	}
	if e.Err() == nil {
		t.Fatal("engine reports healthy after a failed commit")
	}
	g.fail.Store(false)
	_, err = e.Submit(context.Background(), &engine.Submission{Command: ledger.Command{
		Requests: []ledger.Request{transfer("after", "bank", "alice", 1)}}})
	if !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("submit after failure: got %v, want ErrStopped", err)
	}
	e.Close()

	st := openStore(t, dir)
	e2 := openEngine(t, st, engine.Options{})
	defer e2.Close()
	if b := balance(t, st, "alice"); b != "0" {
		t.Fatalf("alice after restart: got %s, want 0", b)
	}
	mustOK(t, submit(t, e2, transfer("lost", "bank", "alice", 7)))
	if b := balance(t, st, "alice"); b != "7" {
		t.Fatalf("alice: got %s, want 7", b)
	}
}

// TestHoldExpiryAcrossRestart: expiry is driven by the engine's clock inside batches and
// survives a restart.
func TestHoldExpiryAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	e := openEngine(t, openStore(t, dir), engine.Options{Now: clk.now})
	mustOK(t, submit(t, e, account("bank", true), account("alice", false)))
	mustOK(t, submit(t, e, hold("h1", "bank", "alice", 40, 10), hold("h2", "bank", "alice", 2, 0)))
	e.Close()

	clk.advance(11 * time.Second)
	st := openStore(t, dir)
	e2 := openEngine(t, st, engine.Options{Now: clk.now})
	defer e2.Close()
	submit(t, e2) // an empty batch: expiry runs at its engine time
	h1, err := st.Transfer(context.Background(), "h1")
	if err != nil || h1.Status != ledger.TransferExpired {
		t.Fatalf("h1 after its timeout: got %v %v, want expired", h1, err)
	}
	h2, _ := st.Transfer(context.Background(), "h2")
	if h2.Status != ledger.TransferPending {
		t.Fatalf("h2 without timeout: got %s, want pending", h2.Status)
	}
	a, _ := st.Account(context.Background(), "alice")
	if a.CreditsPending.String() != "2" {
		t.Fatalf("alice pending credits: got %s, want 2", a.CreditsPending)
	}
	res := submit(t, e2, ledger.Request{Op: ledger.OpPost, TransferID: "h1"})
	if res[0].Code != ledger.CodeHoldExpired {
		t.Fatalf("post of expired hold: got %s, want hold_expired", res[0].Code)
	}
}

// TestExpiryTimer: with no traffic, the writer wakes up on its own when a hold is due.
func TestExpiryTimer(t *testing.T) {
	st := openStore(t, t.TempDir())
	e := openEngine(t, st, engine.Options{})
	defer e.Close()
	mustOK(t, submit(t, e, account("bank", true), account("alice", false)))
	mustOK(t, submit(t, e, hold("h", "bank", "alice", 5, 1)))
	seq := e.HeadSeq()
	deadline := time.Now().Add(10 * time.Second)
	for e.HeadSeq() == seq { // wait on the journal seq: the expiry is a new record
		if time.Now().After(deadline) {
			t.Fatal("the hold did not expire within 10s of its 1s timeout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	h, _ := st.Transfer(context.Background(), "h")
	if h.Status != ledger.TransferExpired {
		t.Fatalf("got %s, want expired", h.Status)
	}
}

// TestFinishedTransfersFromStore: after a restart the state holds no finished transfers,
// so the engine must load them from the store to keep ids unique and finals final.
func TestFinishedTransfersFromStore(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, openStore(t, dir), engine.Options{})
	mustOK(t, submit(t, e, account("bank", true), account("alice", false)))
	mustOK(t, submit(t, e, transfer("t1", "bank", "alice", 9), hold("h1", "bank", "alice", 3, 0)))
	mustOK(t, submit(t, e, ledger.Request{Op: ledger.OpVoid, TransferID: "h1"}))
	e.Close()

	st := openStore(t, dir)
	e2 := openEngine(t, st, engine.Options{})
	defer e2.Close()
	res := submit(t, e2, transfer("t1", "bank", "alice", 9))
	if res[0].Code != ledger.CodeOK || !res[0].Existing {
		t.Fatalf("same transfer again: got %s existing=%v, want the existing one", res[0].Code, res[0].Existing)
	}
	if res := submit(t, e2, transfer("t1", "bank", "alice", 10)); res[0].Code != ledger.CodeTransferExists {
		t.Fatalf("same id, other amount: got %s, want transfer_exists", res[0].Code)
	}
	if res := submit(t, e2, ledger.Request{Op: ledger.OpPost, TransferID: "h1"}); res[0].Code != ledger.CodeTransferNotPending {
		t.Fatalf("post of voided hold: got %s, want transfer_not_pending", res[0].Code)
	}
	if b := balance(t, st, "alice"); b != "9" {
		t.Fatalf("alice: got %s, want 9", b)
	}
}

func TestIdempotencyCommittedWithWrite(t *testing.T) {
	st := openStore(t, t.TempDir())
	e := openEngine(t, st, engine.Options{})
	defer e.Close()
	sub := &engine.Submission{
		Command: ledger.Command{Requests: []ledger.Request{account("a", false)}},
		Idempotency: &engine.Idempotency{Scope: "k1", Key: "idem-1", TTL: time.Hour,
			Render: func(res []ledger.Result) (int, []byte, bool) { return 201, []byte(res[0].Account.ID), true }},
	}
	if _, err := e.Submit(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	got, err := st.Idempotency(context.Background(), "k1", "idem-1", time.Now().UnixNano())
	if err != nil || got.Status != 201 || string(got.Body) != "a" {
		t.Fatalf("stored answer: got %+v %v, want 201 a", got, err)
	}
}

func TestCloseAnswersQueued(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	e := openEngine(t, st, engine.Options{})
	mustOK(t, submit(t, e, account("bank", true), account("b", false)))
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Submit(context.Background(), &engine.Submission{Command: ledger.Command{
				Requests: []ledger.Request{transfer("", "bank", "b", 1)}}})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, engine.ErrStopped):
			default:
				t.Errorf("submit during close: %v", err)
			}
		}()
	}
	e.Close()
	wg.Wait()
	st2 := openStore(t, dir)
	defer st2.Close()
	if _, _, err := st2.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b := balance(t, st2, "b"); b != strconv.FormatInt(ok.Load(), 10) {
		t.Fatalf("b: got %s, want %d (every acknowledged transfer, no other)", b, ok.Load())
	}
}

func TestCloseTwice(t *testing.T) {
	e := openEngine(t, openStore(t, t.TempDir()), engine.Options{})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: got %v, want nil", err)
	}
	if _, err := e.Submit(context.Background(), &engine.Submission{}); !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("Submit after Close: got %v, want ErrStopped", err)
	}
}
