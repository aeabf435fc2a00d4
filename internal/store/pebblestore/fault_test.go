package pebblestore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

// isWALSync reports whether op syncs a WAL file.
func isWALSync(op errorfs.Op) bool {
	return strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData)
}

// failSyncs fails every WAL sync once switched on.
type failSyncs struct{ on atomic.Bool }

func (f *failSyncs) String() string { return "failSyncs" }

func (f *failSyncs) MaybeError(op errorfs.Op) error {
	if f.on.Load() && isWALSync(op) {
		return errorfs.ErrInjected
	}
	return nil
}

// TestCloseAfterFailedSync: when the WAL sync of a Commit fails, Pebble has already applied
// the batch to its memtable and then calls Fatalf, which panics. If that panic is recovered
// (the simulation in internal/sim does, to go on as after a crash), Close must still close
// the database, without writing a final checkpoint from accounts the failed batch staged;
// and the disk as synced holds every record up to the one before.
func TestCloseAfterFailedSync(t *testing.T) {
	mem := vfs.NewCrashableMem()
	inj := &failSyncs{}
	s, err := pebblestore.Open("db", pebblestore.Options{FS: errorfs.Wrap(mem, inj)})
	if err != nil {
		t.Fatal(err)
	}
	st, head, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := int64(1_767_225_600e9)
	head = commitBatches(t, s, st, head, now,
		[]ledger.Command{account("treasury", true), account("alice", false)},
		[]ledger.Command{pay("f1", "treasury", "alice", 1000, false)})

	inj.on.Store(true)
	b := st.Apply(now+10e9, []ledger.Command{pay("f2", "treasury", "alice", 5, false)})
	r := &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: b.Time, Changes: b.Changes}
	journal.Seal(r)
	if err := commitRecovering(s, &journal.Commit{Record: r, Accounts: b.Touched}); err == nil {
		t.Fatal("Commit with a failing WAL sync: got nil, want an error or a panic")
	}
	var closeErr error
	if p := func() (p any) {
		defer func() { p = recover() }()
		closeErr = s.Close()
		return nil
	}(); p != nil {
		t.Fatalf("Close after a failed Commit panicked: %v", p)
	}
	if closeErr == nil {
		t.Error("Close after a failed WAL sync: got nil, want the WAL's error")
	}

	s2, err := pebblestore.Open("db", pebblestore.Options{FS: mem.CrashClone(vfs.CrashCloneCfg{})})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	st2, head2, err := s2.Load(t.Context())
	if err != nil {
		t.Fatalf("Load after the crash: %v", err)
	}
	if head2 != head {
		t.Errorf("head after the crash: %d, want %d", head2.Seq, head.Seq)
	}
	if a, _ := st2.Account("alice"); a.Posted().String() != "1000" {
		t.Errorf("alice after the crash: %s, want 1000", a.Posted())
	}
}

// commitRecovering calls Commit and turns a panic into an error.
func commitRecovering(s *pebblestore.Store, c *journal.Commit) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return s.Commit(context.Background(), c)
}

// holdSync holds the next WAL sync, once armed, until release is closed.
type holdSync struct {
	armed   atomic.Bool
	reached chan struct{} // closed when the sync is held
	release chan struct{}
}

func (h *holdSync) String() string { return "holdSync" }

func (h *holdSync) MaybeError(op errorfs.Op) error {
	if isWALSync(op) && h.armed.CompareAndSwap(true, false) {
		close(h.reached)
		<-h.release
	}
	return nil
}

// TestJournalOnlyDurable: Pebble makes a batch visible before its WAL sync returns. While a
// Commit's sync is pending its record is not durable (a crash now loses it, and the next
// record after restart takes its seq), so Journal must not return it, nor Head name it;
// once the Commit returns, both do.
func TestJournalOnlyDurable(t *testing.T) {
	mem := vfs.NewCrashableMem()
	h := &holdSync{reached: make(chan struct{}), release: make(chan struct{})}
	s, err := pebblestore.Open("db", pebblestore.Options{FS: errorfs.Wrap(mem, h)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, head, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := int64(1_767_225_600e9)
	head = commitBatches(t, s, st, head, now, []ledger.Command{account("treasury", true), account("alice", false)})

	b := st.Apply(now+10e9, []ledger.Command{pay("f1", "treasury", "alice", 1000, false)})
	r := &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: b.Time, Changes: b.Changes}
	journal.Seal(r)
	h.armed.Store(true)
	done := make(chan error, 1)
	go func() { done <- s.Commit(context.Background(), &journal.Commit{Record: r, Accounts: b.Touched}) }()
	<-h.reached
	for deadline := time.Now().Add(10 * time.Second); !s.PebbleHasRecord(r.Seq); runtime.Gosched() {
		if time.Now().After(deadline) { // Pebble applies the batch without waiting for the sync
			t.Fatalf("Pebble did not show record %d within 10 s of its WAL sync", r.Seq)
		}
	}
	if recs, err := s.Journal(t.Context(), 0, 10); err != nil || len(recs) != int(head.Seq) {
		t.Errorf("Journal while record %d's sync is pending: got %d records (%v), want %d", r.Seq, len(recs), err, head.Seq)
	}
	if got, _ := s.Head(t.Context()); got != head {
		t.Errorf("Head while record %d's sync is pending: got %d, want %d", r.Seq, got.Seq, head.Seq)
	}
	// Nor does any other read show what a crash now would lose.
	if tr, err := s.Transfer(t.Context(), "f1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Transfer f1 while its sync is pending: %+v %v, want not found", tr, err)
	}
	if es, _, err := s.Entries(t.Context(), "alice", "", 10); err != nil || len(es) != 0 {
		t.Errorf("Entries of alice while f1's sync is pending: %d (%v), want none", len(es), err)
	}
	crashed, err := pebblestore.Open("db", pebblestore.Options{FS: mem.CrashClone(vfs.CrashCloneCfg{})})
	if err != nil {
		t.Fatal(err)
	}
	if _, ch, err := crashed.Load(t.Context()); err != nil || ch != head {
		t.Errorf("a crash while record %d's sync is pending: head %d (%v), want %d", r.Seq, ch.Seq, err, head.Seq)
	}
	crashed.Close()

	close(h.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if recs, err := s.Journal(t.Context(), 0, 10); err != nil || len(recs) != int(r.Seq) {
		t.Errorf("Journal after the Commit: got %d records (%v), want %d", len(recs), err, r.Seq)
	}
}
