package pebblestore

import (
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// A view is what reads see: a Pebble snapshot taken after a write had published all of
// itself (its keys, the accounts in memory and the head), numbered by that write's
// generation. Reads never see a write in part.
//
// They would without it: Pebble makes a committed batch visible to plain reads before its
// WAL sync returns (commitPipeline.publish), and a Commit publishes its accounts in memory
// only after that. For the length of a sync, GET /v1/transfers/{id} showed a transfer whose
// balances GET /v1/accounts/{id} did not show yet, and whose client had no answer: a
// history no order explains (docs/reliability.md, "Linearizability").
//
// # Invariants
//
//   - Store.view changes only under Store.mu, after the write is published; a write's
//     generation is Store.gen + 1 while it runs and Store.gen once its view is current.
//   - An account version of generation g is stored before the view of g is current, so a
//     reader at generation h < g finds the value it had at h in the version's prev.
//   - refs counts the readers of the snapshot, plus one while the view is current: the last
//     release closes the snapshot.
type view struct {
	snap    *pebble.Snapshot
	gen     uint64
	head    journal.Head
	created []string // Store.created as of gen
	refs    atomic.Int64
}

// acquire returns the current view with a reference for the caller, who must release it;
// nil once the store is closed.
func (s *Store) acquire() *view {
	for {
		v := s.view.Load()
		if v == nil {
			return nil
		}
		// refs is 0 only after the view was replaced and its last reader left: load again.
		if n := v.refs.Load(); n > 0 && v.refs.CompareAndSwap(n, n+1) {
			return v
		}
	}
}

// release drops a reference taken by acquire.
func (vw *view) release() {
	if vw.refs.Add(-1) == 0 {
		vw.snap.Close()
	}
}

// publishView makes the database as it is now, with the next generation, what reads see.
// Call it with Store.mu held (or before the store is shared) after every write, once the
// write's accounts and head are published.
func (s *Store) publishView() {
	s.gen++
	v := &view{snap: s.db.NewSnapshot(), gen: s.gen, head: *s.head.Load(), created: *s.created.Load()}
	v.refs.Store(1)
	if old := s.view.Swap(v); old != nil {
		old.release()
	}
}

// closeView drops the store's reference to the current view; reads fail from then on.
func (s *Store) closeView() {
	if v := s.view.Swap(nil); v != nil {
		v.release()
	}
}

// accountVersion is an account's value as of a generation, with the value before it, so
// that a reader at an older generation still finds its value.
type accountVersion struct {
	a       *ledger.Account // nil: the account does not exist (yet)
	gen     uint64
	prev    *ledger.Account // nil: the account did not exist before gen
	prevGen uint64
}

// at returns the value as of generation gen, and false if the account changed twice since
// gen, so that the caller must read again at a newer generation.
func (v *accountVersion) at(gen uint64) (*ledger.Account, bool) {
	switch {
	case v.gen <= gen:
		return v.a, true
	case v.prevGen <= gen:
		return v.prev, true
	}
	return nil, false
}

// account returns the value of id that the current view sees, or nil. Callers must not
// change it.
func (s *Store) account(id string) *ledger.Account {
	for {
		v := s.view.Load()
		if v == nil {
			return nil
		}
		if a, ok := s.accounts.Load().account(id, v.gen); ok {
			return a
		}
	}
}
