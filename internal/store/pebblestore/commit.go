package pebblestore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/invariants"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Commit writes c as one Pebble batch, synced once (unless Options.NoSync): the record and
// every key it derives, the idempotency answers and the API keys. The accounts go to memory
// once the batch is durable, and to Pebble only with a checkpoint: when a threshold of
// Store.policy is reached, the batch also holds the a/ key of every account changed since the
// last checkpoint and m/checkpoint naming this record. It refuses, writing nothing, a record
// that does not follow the head (seq, prev_hash), whose hash is not journal.RecordHash of it
// (the write half of a pair assertion; Load does the read half), or side data whose key would
// be ambiguous. A Commit with a nil Record writes only side data. Commit must follow a
// successful Load.
func (s *Store) Commit(ctx context.Context, c *journal.Commit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var seq uint64
	if r := c.Record; r != nil {
		seq = r.Seq
	}
	if err := s.checkCommit(c); err != nil {
		return fmt.Errorf("pebblestore: commit %d: %w", seq, err)
	}
	// The hash check (the write half of the pair assertion) reads only c.Record, and the
	// batch is built only from c, so both run at once. Nothing is written before hashed
	// says the hash checks out. The engine sealed the record from the same bytes just
	// before, so the check guards against our own bugs and memory corruption only; it
	// costs about 6% of the CPU of a large batch (the other core is busy applying the next
	// batch and compacting), so like the other whole-batch checks it runs with invariants
	// enabled (-race or -tags invariants, as in CI). Load and verify always check hashes.
	var hashed chan error
	if r := c.Record; r != nil && invariants.Enabled {
		hashed = make(chan error, 1)
		go func() {
			if h := journal.RecordHash(r); h != r.Hash {
				hashed <- fmt.Errorf("hash %s is not the record's hash %s", r.Hash, h)
			}
			close(hashed)
		}()
	}
	w := &s.w
	w.addCommit(c)
	dirtyMark := len(s.dirty)
	s.stageAccounts(c.Accounts)
	var ckpt *checkpoint
	if r := c.Record; r != nil && s.checkpointDue(r) {
		ckpt = &checkpoint{Seq: r.Seq, Time: r.Timestamp}
		w.checkpoint(s.dirty, *ckpt)
	}
	if s.batch == nil {
		s.batch = s.db.NewBatch(pebble.WithMaxRetainedSizeBytes(batchRetainedMax))
	}
	b := s.batch
	defer b.Reset() // keeps its buffer for the next Commit
	var err error
	if r := c.Record; r != nil {
		// The record is one large value: added as is, not copied again to be sorted.
		s.rec = journal.AppendRecord(s.rec[:0], r)
		err = b.Set(recordKey(w.key[:0], r.Seq), s.rec, nil)
	}
	if err == nil {
		err = w.addTo(b)
	}
	if hashed != nil {
		err = errors.Join(<-hashed, err) // always wait: the goroutine must not outlive Commit
	}
	if err == nil {
		s.lastKeys = int(b.Count())
		// Pebble applies a batch to its memtable before it learns that the WAL sync failed,
		// then panics (Fatalf): if that panic is recovered, this Commit never returns an
		// error and the staged accounts stay staged. failed stays set unless b.Commit
		// returns nil, so Close will not checkpoint them; once set it stays set.
		failedBefore := s.failed
		s.failed = true
		err = b.Commit(s.wo)
		s.failed = failedBefore || err != nil
	}
	if err != nil {
		s.unstageAccounts(dirtyMark)
		return fmt.Errorf("pebblestore: commit %d: %w", seq, err)
	}
	if s.afterBatch != nil {
		s.afterBatch()
	}
	s.publishAccounts(s.gen + 1)
	if r := c.Record; r != nil {
		s.sinceRecords++
		s.sinceChanges += uint64(len(r.Changes))
		s.headTime = r.Timestamp
		if ckpt != nil {
			s.checkpointed(*ckpt)
		}
		s.head.Store(&journal.Head{Seq: r.Seq, Hash: r.Hash})
	}
	// Published last, all at once: readers see the batch's keys, accounts and head together
	// (view.go), never the keys alone as Pebble shows them from before the sync returns.
	s.publishView()
	return nil
}

// stageAccounts makes each account of c the next value of its entry (a new entry for a new
// account) and marks it dirty.
func (s *Store) stageAccounts(accounts []*ledger.Account) {
	m := s.accounts.Load()
	s.ents = s.ents[:0]
	clear(s.fresh)
	for _, a := range accounts {
		e := m.entry(a.ID)
		if e == nil {
			if e = s.fresh[a.ID]; e == nil { // the same new account twice: one entry
				e = &accountEntry{}
				s.fresh[a.ID] = e
			}
		}
		e.next = a
		s.ents = append(s.ents, e)
		if !e.dirty {
			e.dirty = true
			s.dirty = append(s.dirty, e)
		}
	}
}

// unstageAccounts undoes stageAccounts after a failed Commit.
func (s *Store) unstageAccounts(dirtyMark int) {
	for _, e := range s.ents {
		e.next = nil
	}
	for _, e := range s.dirty[dirtyMark:] {
		e.dirty = false
	}
	clear(s.dirty[dirtyMark:])
	s.dirty = s.dirty[:dirtyMark]
	s.ents = s.ents[:0]
	clear(s.fresh)
}

// publishAccounts makes the staged values current as of generation gen, once the batch is
// durable; readers see them from the view of gen on (view.go), new accounts too.
func (s *Store) publishAccounts(gen uint64) {
	for _, e := range s.ents {
		if e.next != nil { // nil: a second value of the same account, already published
			v := &accountVersion{a: e.next, gen: gen}
			if old := e.cur.Load(); old != nil {
				v.prev, v.prevGen = old.a, old.gen
			}
			e.cur.Store(v)
			e.next = nil
		}
	}
	s.ents = s.ents[:0]
	if len(s.fresh) == 0 {
		return
	}
	m := s.accounts.Load()
	ids := make([]string, 0, len(s.fresh))
	for id, e := range s.fresh {
		m.add(id, e)
		ids = append(ids, id)
	}
	clear(s.fresh)
	slices.Sort(ids)
	old := *s.created.Load()
	merged := make([]string, 0, len(old)+len(ids))
	for i, j := 0, 0; i < len(old) || j < len(ids); {
		if j == len(ids) || i < len(old) && old[i] < ids[j] {
			merged = append(merged, old[i])
			i++
		} else {
			merged = append(merged, ids[j])
			j++
		}
	}
	s.created.Store(&merged)
}

// checkpointDue reports whether the Commit of r writes a checkpoint.
func (s *Store) checkpointDue(r *journal.Record) bool {
	p := &s.policy
	return len(s.dirty) >= p.accounts || s.sinceRecords+1 >= p.records ||
		s.sinceChanges+uint64(len(r.Changes)) >= p.changes || r.Timestamp-s.ckpt.Time >= p.interval
}

// checkpointed notes a durable checkpoint: nothing is dirty any more, every account is in a/.
func (s *Store) checkpointed(c checkpoint) {
	for _, e := range s.dirty {
		e.dirty = false
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	s.ckpt = c
	s.sinceRecords, s.sinceChanges = 0, 0
	if len(*s.created.Load()) > 0 {
		s.created.Store(new([]string))
	}
}

// batchRetainedMax bounds the buffer the reused batch keeps between commits: enough for a
// batch of 8,190 transfers with little metadata; larger ones allocate afresh.
const batchRetainedMax = 64 << 20

// checkCommit refuses what Commit must not write.
func (s *Store) checkCommit(c *journal.Commit) error {
	if !s.loaded {
		return errors.New("commit before a successful load")
	}
	if r := c.Record; r != nil {
		head := s.head.Load()
		switch {
		case r.Seq != head.Seq+1:
			return fmt.Errorf("seq does not follow the head %d", head.Seq)
		case r.PrevHash != head.Hash:
			return fmt.Errorf("prev_hash %s is not the head's hash %s", r.PrevHash, head.Hash)
		}
	}
	for i := range c.Idempotency {
		if hasSep(c.Idempotency[i].Scope) {
			return errors.New("idempotency scope contains 0x00")
		}
	}
	for i := range c.APIKeys {
		if c.APIKeys[i].ID == "" {
			return errors.New("api key without an id")
		}
	}
	return nil
}

// sortedBatch collects the keys of one Commit and adds them to a Pebble batch in key order.
// Pebble inserts a batch into its memtable (a skiplist) key by key, starting each search
// from where the previous key went when it can: in key order most inserts start next to
// the one before instead of at the top, which makes a batch of tens of thousands of keys
// several times cheaper to apply (BenchmarkCommit). Entries are kept apart by prefix, so
// that only the runs that are not in order already get sorted: t/ keys of server ids come in
// order, x/ keys and a checkpoint's a/ keys do not. Its buffers are reused by every Commit.
type sortedBatch struct {
	arena    []byte                       // keys and values back to back
	ents     [len(prefixes)][]sortedEntry // by prefix, in the order of prefixes
	key, val []byte                       // scratch to build one key and value in
}

// prefixes lists every key prefix in key order.
const prefixes = "ahijkmopstx"

// prefixIndex maps a key's first byte to its place in prefixes.
var prefixIndex = func() (ix [256]uint8) {
	for i := range len(prefixes) {
		ix[prefixes[i]] = uint8(i)
	}
	return ix
}()

// sortedEntry is arena[key:val] → arena[val:end], or a deletion of arena[key:val].
type sortedEntry struct {
	key, val, end uint32
	del           bool
}

func (w *sortedBatch) reset() {
	w.arena = w.arena[:0]
	for i := range w.ents {
		w.ents[i] = w.ents[i][:0]
	}
}

// set adds key → val, both built on w.key and w.val, which keep what they grew to.
func (w *sortedBatch) set(key, val []byte) {
	w.add(key, val, false)
	w.val = val
}

func (w *sortedBatch) delete(key []byte) { w.add(key, nil, true) }

func (w *sortedBatch) add(key, val []byte, del bool) {
	e := sortedEntry{key: uint32(len(w.arena)), del: del}
	w.arena = append(w.arena, key...)
	e.val = uint32(len(w.arena))
	w.arena = append(w.arena, val...)
	e.end = uint32(len(w.arena))
	p := prefixIndex[key[0]]
	w.ents[p] = append(w.ents[p], e)
	w.key = key
}

// addTo adds the entries to b in key order. Entries with equal keys (a transfer changed twice
// in one batch) keep the order they were added in, so the later one wins.
func (w *sortedBatch) addTo(b *pebble.Batch) error {
	a := w.arena
	byKey := func(x, y sortedEntry) int {
		if c := bytes.Compare(a[x.key:x.val], a[y.key:y.val]); c != 0 {
			return c
		}
		return cmp.Compare(x.key, y.key) // arena offsets grow in the order of adding
	}
	for _, ents := range w.ents {
		if !slices.IsSortedFunc(ents, byKey) {
			slices.SortFunc(ents, byKey)
		}
		for _, e := range ents {
			var err error
			if e.del {
				err = b.Delete(a[e.key:e.val], nil)
			} else {
				err = b.Set(a[e.key:e.val], a[e.val:e.end], nil)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// addCommit collects every key of c but the record's own (j/), in w's reset buffers.
func (w *sortedBatch) addCommit(c *journal.Commit) {
	w.reset()
	if r := c.Record; r != nil {
		for i := range r.Changes {
			w.change(&r.Changes[i])
		}
		w.set(append(w.key[:0], keyHead...), appendHead(w.val[:0], journal.Head{Seq: r.Seq, Hash: r.Hash}))
	}
	for i := range c.Idempotency {
		v := &c.Idempotency[i]
		w.set(pairKey(w.key[:0], prefixIdem, v.Scope, v.Key), appendIdempotency(w.val[:0], v))
	}
	for i := range c.APIKeys {
		k := &c.APIKeys[i]
		w.set(idKey(w.key[:0], prefixAPIKey, k.ID), appendAPIKey(w.val[:0], k))
		w.set(append(appendPrefix(w.key[:0], prefixKeyHash), k.Hash[:]...), append(w.val[:0], k.ID...))
	}
}

// checkpoint adds the a/ key of every dirty account and m/checkpoint = c.
func (w *sortedBatch) checkpoint(dirty []*accountEntry, c checkpoint) {
	for _, e := range dirty {
		a := e.value()
		w.set(idKey(w.key[:0], prefixAccount, a.ID), journal.AppendAccount(w.val[:0], a))
	}
	w.set(append(w.key[:0], keyCheckpoint...), appendCheckpoint(w.val[:0], c))
}

// change adds the keys a change derives.
func (w *sortedBatch) change(c *ledger.Change) {
	switch c.Op {
	case ledger.ChangeAccountCreate:
		if a := c.Account; a.Owner != "" {
			w.add(pairKey(w.key[:0], prefixOwner, a.Owner, a.ID), nil, false)
		}
	case ledger.ChangeAssetCreate:
		w.set(idKey(w.key[:0], prefixAsset, c.Asset.Code), append(w.val[:0], c.Asset.Scale))
	case ledger.ChangeCreate, ledger.ChangePost, ledger.ChangeIncrease, ledger.ChangeVoid, ledger.ChangeExpire:
		w.transfer(c)
	}
}

// transfer writes t/ (a later change of the same transfer in the batch overwrites it), p/
// while a hold is pending, and one activity row on each account.
func (w *sortedBatch) transfer(c *ledger.Change) {
	t := c.Transfer
	w.set(idKey(w.key[:0], prefixTransfer, t.ID), journal.AppendTransfer(w.val[:0], t))
	if t.Hold {
		switch {
		case c.Op == ledger.ChangeCreate:
			w.add(idKey(w.key[:0], prefixPending, t.ID), nil, false)
		case t.Final():
			w.delete(idKey(w.key[:0], prefixPending, t.ID))
		}
	}
	a := Activity{Op: c.Op, Posts: c.Posts(), Entry: journal.Entry{TransferID: t.ID,
		Direction: journal.Debit, Amount: c.Amount, Kind: t.Kind, PostedAfter: c.SourceAfter}}
	w.set(activityKey(w.key[:0], t.Source, c.Time), appendActivity(w.val[:0], &a))
	a.Direction, a.PostedAfter = journal.Credit, c.DestinationAfter
	w.set(activityKey(w.key[:0], t.Destination, c.Time), appendActivity(w.val[:0], &a))
}
