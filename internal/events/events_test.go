package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

// ledgerT is a real engine on a Pebble store, with a hub fed by the engine.
type ledgerT struct {
	st  *pebblestore.Store
	eng *engine.Engine
	hub *events.Hub
}

func openLedger(t *testing.T) *ledgerT { return openLedgerTB(t) }

func openLedgerTB(t testing.TB) *ledgerT {
	t.Helper()
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hub := events.NewHub()
	eng, err := engine.Open(context.Background(), st, engine.Options{Observer: hub})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return &ledgerT{st: st, eng: eng, hub: hub}
}

func (l *ledgerT) submit(t *testing.T, reqs ...ledger.Request) []ledger.Result {
	t.Helper()
	r, err := l.eng.Submit(context.Background(), &engine.Submission{Command: ledger.Command{Requests: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range r.Results {
		if res.Code != ledger.CodeOK {
			t.Fatalf("request %d: %s %s", i, res.Code, res.Detail)
		}
	}
	return r.Results
}

func account(id string, neg bool) ledger.Request {
	return ledger.Request{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: id, Asset: "USD", AllowNegative: neg}}
}

func pay(src, dst string, amount uint64, hold bool) ledger.Request {
	return ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{Source: src, Destination: dst,
		Amount: ledger.AmountFromUint64(amount), Hold: hold}}
}

// history makes every kind of event and returns the types in journal order.
func (l *ledgerT) history(t *testing.T) []string {
	t.Helper()
	l.submit(t, account("treasury", true), account("alice", false), account("bob", false))
	l.submit(t, pay("treasury", "alice", 1000, false))
	h := l.submit(t, pay("alice", "bob", 300, true))[0].Transfer.ID
	l.submit(t, ledger.Request{Op: ledger.OpIncrease, TransferID: h, Amount: ledger.AmountFromUint64(50)})
	l.submit(t, ledger.Request{Op: ledger.OpPost, TransferID: h, Amount: ledger.AmountFromUint64(100), AmountSet: true, NotFinal: true})
	l.submit(t, ledger.Request{Op: ledger.OpPost, TransferID: h})
	v := l.submit(t, pay("alice", "bob", 10, true))[0].Transfer.ID
	l.submit(t, ledger.Request{Op: ledger.OpVoid, TransferID: v})
	l.submit(t, ledger.Request{Op: ledger.OpFreeze, AccountID: "bob"}, ledger.Request{Op: ledger.OpUnfreeze, AccountID: "bob"})
	l.submit(t, ledger.Request{Op: ledger.OpCreateAsset, Asset: ledger.Asset{Code: "XAU", Scale: 3}})
	return []string{events.AccountCreated, events.AccountCreated, events.AccountCreated, events.TransferPosted,
		events.TransferPending, events.TransferIncreased, events.TransferPartiallyPosted, events.TransferPosted,
		events.TransferPending, events.TransferVoided, events.AccountFrozen, events.AccountUnfrozen, events.AssetCreated}
}

// all reads every event of the journal.
func all(t *testing.T, src events.Source) []events.Event {
	t.Helper()
	var out []events.Event
	p := events.Start
	for {
		evs, next, _, err := events.Read(t.Context(), src, p, 5, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
		if next == p {
			return out
		}
		p = next
	}
}

func TestTypesAndJSON(t *testing.T) {
	l := openLedger(t)
	want := l.history(t)
	evs := all(t, l.st)
	var got []string
	for _, e := range evs {
		got = append(got, e.Type)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("types:\n got %v\nwant %v", got, want)
	}
	recs, err := l.st.Journal(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, r := range recs {
		for j := range r.Changes {
			e := evs[i]
			i++
			if e.Seq != r.Seq || e.Index != j || e.ID() != fmt.Sprintf("%d-%d", r.Seq, j) {
				t.Errorf("event %d: id %s, want %d-%d", i, e.ID(), r.Seq, j)
			}
			var ce map[string]any
			b := events.AppendJSON(nil, &e, events.DefaultSource)
			if err := json.Unmarshal(b, &ce); err != nil {
				t.Fatalf("event %s: %v: %s", e.ID(), err, b)
			}
			var data any
			json.Unmarshal(journal.AppendChangeJSON(nil, &r.Changes[j]), &data)
			if ce["specversion"] != "1.0" || ce["id"] != e.ID() || ce["type"] != e.Type || ce["source"] != "/tpwallet" ||
				ce["subject"] != e.Subject() || ce["partitionkey"] != e.Key() || ce["journalseq"] != float64(r.Seq) ||
				ce["time"] != journal.FormatTime(r.Changes[j].Time) || fmt.Sprint(ce["data"]) != fmt.Sprint(data) {
				t.Errorf("event %s: %s", e.ID(), b)
			}
		}
	}
	if e := evs[3]; e.Key() != "treasury" || !slices.Equal(e.Accounts(), []string{"treasury", "alice"}) {
		t.Errorf("funding transfer: key %q, accounts %v", e.Key(), e.Accounts())
	}
}

func TestParseAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want events.Position
	}{
		{"0", events.Start}, {"7", events.Position{Seq: 8}}, {"7-0", events.Position{Seq: 7, Index: 1}},
		{"7-41", events.Position{Seq: 7, Index: 42}},
	} {
		got, err := events.ParseAfter(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseAfter(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := events.ParseAfter(got.Cursor()); err != nil || back != got {
			t.Errorf("ParseAfter(%v.Cursor() = %q) = %v, %v", got, got.Cursor(), back, err)
		}
	}
	for _, bad := range []string{"", "-1", "+1", "a", "1-", "1--1", "1-+1", "0-0", "1-x", "18446744073709551615", "1-1073741824", " 1"} {
		if p, err := events.ParseAfter(bad); !errors.Is(err, events.ErrBadPosition) {
			t.Errorf("ParseAfter(%q) = %v, %v; want ErrBadPosition", bad, p, err)
		}
	}
}

func FuzzParseAfter(f *testing.F) {
	for _, s := range []string{"0", "12", "12-3", "x", "1-", "-", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := events.ParseAfter(s)
		if err != nil {
			return
		}
		if p.Seq == 0 || p.Index < 0 {
			t.Fatalf("ParseAfter(%q) = %v: not a position", s, p)
		}
		if back, err := events.ParseAfter(p.Cursor()); err != nil || back != p {
			t.Fatalf("ParseAfter(%q) = %v; its cursor %q reads back as %v, %v", s, p, p.Cursor(), back, err)
		}
	})
}

// recorder is a sink that records what it is given and fails on demand: fail(call) says
// how many of the call's events to accept (-1: all) and with what error.
type recorder struct {
	mu   sync.Mutex
	got  []string
	call int
	fail func(call, n int) (int, error)
}

func (r *recorder) Deliver(_ context.Context, evs []events.Event) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.call++
	n, err := len(evs), error(nil)
	if r.fail != nil {
		if k, e := r.fail(r.call, len(evs)); k >= 0 {
			n, err = k, e
		}
	}
	for _, e := range evs[:n] {
		r.got = append(r.got, e.ID())
	}
	return n, err
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func idsOf(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = evs[i].ID()
	}
	return out
}

// flaky is a Source whose reads fail while down is set.
type flaky struct {
	events.Source
	mu   sync.Mutex
	down int // the next reads that fail
}

func (f *flaky) Journal(ctx context.Context, after uint64, limit int) ([]*journal.Record, error) {
	f.mu.Lock()
	down := f.down > 0
	if down {
		f.down--
	}
	f.mu.Unlock()
	if down {
		return nil, fmt.Errorf("journal read: %w", store.ErrUnavailable)
	}
	return f.Source.Journal(ctx, after, limit)
}

func TestFollowerAtLeastOnceInOrder(t *testing.T) {
	l := openLedger(t)
	l.history(t)
	for i := range 50 {
		l.submit(t, pay("treasury", "alice", uint64(i+1), false), pay("treasury", "bob", 1, false))
	}
	src := &flaky{Source: l.st, down: 3}
	// The sink fails outright on call 2, takes 3 events on call 4, then everything.
	rec := &recorder{fail: func(call, n int) (int, error) {
		switch call {
		case 2:
			return 0, errors.New("broker down")
		case 4:
			return min(3, n), errors.New("partly")
		}
		return -1, nil
	}}
	f := &events.Follower{Name: "test", Source: src, Meta: l.st, Hub: l.hub, Sink: rec, Batch: 7,
		MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	if st := f.Status(l.eng.HeadSeq()); st.LagRecords != l.eng.HeadSeq() || st.Position != events.Start {
		t.Errorf("status before running: %+v, want lag %d at the start", st, l.eng.HeadSeq())
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	want := idsOf(all(t, l.st))
	waitFor(t, "the follower to catch up", func() bool { return f.Status(l.eng.HeadSeq()).LagRecords == 0 })
	// Events committed while it runs reach it too (through the hub, not polling).
	l.submit(t, pay("treasury", "alice", 5, false))
	want = idsOf(all(t, l.st))
	waitFor(t, "the new event", func() bool { return len(rec.ids()) > 0 && rec.ids()[len(rec.ids())-1] == want[len(want)-1] })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	// In order, every event, none twice: the failures above were all before delivery.
	if got := rec.ids(); !slices.Equal(got, want) {
		t.Fatalf("delivered %d events, want %d in journal order:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	st := f.Status(l.eng.HeadSeq())
	if st.Errors < 5 || st.Delivered != uint64(len(want)) || st.LagRecords != 0 || st.Running {
		t.Errorf("status: %+v; want ≥5 errors (3 reads, 2 deliveries), %d delivered, no lag", st, len(want))
	}
	// A new follower of the same name resumes from the stored cursor: nothing again.
	p, err := events.LoadCursor(t.Context(), l.st, "test")
	if err != nil || p != (events.Position{Seq: l.eng.HeadSeq() + 1}) {
		t.Fatalf("stored cursor %v, %v; want just past the head %d", p, err, l.eng.HeadSeq())
	}
	// Seek replays: from record 4 on, with the same ids.
	rec2 := &recorder{}
	f2 := &events.Follower{Name: "test", Source: l.st, Meta: l.st, Hub: l.hub, Sink: rec2}
	if err := f2.Seek(t.Context(), events.Position{Seq: 4}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	go func() { done <- f2.Run(ctx) }()
	waitFor(t, "the replay", func() bool { return f2.Status(l.eng.HeadSeq()).LagRecords == 0 })
	cancel()
	<-done
	var replay []string
	for _, id := range want {
		var seq uint64
		fmt.Sscanf(id, "%d-", &seq)
		if seq >= 4 {
			replay = append(replay, id)
		}
	}
	if got := rec2.ids(); !slices.Equal(got, replay) {
		t.Fatalf("replay from seq 4: got %v, want %v", got, replay)
	}
}

func TestFollowerFilterAndSet(t *testing.T) {
	l := openLedger(t)
	l.history(t)
	set := events.NewSet(l.hub)
	rec := &recorder{}
	set.Add(&events.Follower{Name: "pending-only", Source: l.st, Meta: l.st, Hub: l.hub, Sink: rec,
		Filter: func(e *events.Event) bool { return e.Type == events.TransferPending }})
	set.Start(t.Context())
	waitFor(t, "the filtered follower", func() bool { return set.Statuses()[0].LagRecords == 0 })
	set.Stop()
	if got := rec.ids(); len(got) != 2 {
		t.Fatalf("filtered follower got %v, want the 2 transfer.pending events", got)
	}
	for _, id := range rec.ids() {
		var seq uint64
		var idx int
		fmt.Sscanf(id, "%d-%d", &seq, &idx)
		recs, _ := l.st.Journal(t.Context(), seq-1, 1)
		if events.TypeOf(&recs[0].Changes[idx]) != events.TransferPending {
			t.Errorf("event %s is not transfer.pending", id)
		}
	}
	st := set.Statuses()
	if len(st) != 1 || st[0].Running || st[0].Name != "pending-only" {
		t.Errorf("statuses after Stop: %+v", st)
	}
	// Metrics describe every follower.
	ch := make(chan prometheus.Metric, 16)
	go func() { set.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	if n != 5 {
		t.Errorf("Collect gave %d metrics for one follower, want 5", n)
	}
}

func TestHubWait(t *testing.T) {
	h := events.NewHub()
	if h.Wait(t.Context(), 0, time.Millisecond) {
		t.Fatal("Wait on an empty hub returned true")
	}
	go h.Committed(3)
	if !h.Wait(t.Context(), 2, time.Minute) {
		t.Fatal("Wait past 2 did not see seq 3")
	}
	if h.Head() != 3 {
		t.Fatalf("Head %d, want 3", h.Head())
	}
	h.Committed(1) // never backwards
	if h.Head() != 3 {
		t.Fatalf("Head %d after an older seq, want 3", h.Head())
	}
}
