package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Accounts live in memory and reach Pebble only in checkpoints (see the package doc): a
// Commit writes no a/ key unless it is one that checkpoints.

// checkpointPolicy says when a Commit also writes a checkpoint: when any threshold is
// reached since the last one. Together they bound what Load replays.
type checkpointPolicy struct {
	accounts int    // accounts changed (the dirty set)
	records  uint64 // records committed
	changes  uint64 // changes in those records: bounds the replay of large batches
	interval int64  // record time (ns, engine time: deterministic, unlike the wall clock)
}

// defaultCheckpoints: at 8,000 transfers a record the change threshold checkpoints every
// 33 records; at a few dozen, the record threshold every 4,096. Either way a checkpoint
// writes one a/ key per account changed since the last, and Load replays at most about 2^18
// changes (a little more: the record that crosses a threshold is whole), well under a
// second. The account threshold bounds a checkpoint's batch (2^17 accounts: about 13 MB, a
// fifth of a memtable) rather than the replay: set lower, traffic spread over many more
// accounts than it checkpoints every few records and writes about as many a/ keys as a
// write per commit would (BenchmarkCommit with 200,000 accounts: 16,384 gives 4.85 keys and
// 200,000 transfers/s against 4.92 and 236,000 before checkpoints; 2^17 gives 4.18 and
// 233,000).
var defaultCheckpoints = checkpointPolicy{accounts: 1 << 17, records: 4096, changes: 1 << 18, interval: 2e9}

// checkpoint is m/checkpoint: the record up to which the a/ keys are the accounts.
type checkpoint struct {
	Seq  uint64 // 0: no record yet
	Time int64  // that record's timestamp, from which the interval is counted
}

// appendCheckpoint encodes seq (8) + time (8), big-endian.
func appendCheckpoint(dst []byte, c checkpoint) []byte {
	dst = binary.BigEndian.AppendUint64(dst, c.Seq)
	return binary.BigEndian.AppendUint64(dst, uint64(c.Time))
}

func decodeCheckpoint(v []byte) (checkpoint, error) {
	if len(v) != 16 {
		return checkpoint{}, fmt.Errorf("%w: m/checkpoint of %d bytes", errEncoding, len(v))
	}
	return checkpoint{Seq: binary.BigEndian.Uint64(v), Time: int64(binary.BigEndian.Uint64(v[8:]))}, nil
}

// readCheckpoint returns m/checkpoint; found is false in a store written before checkpoints
// existed (store format 1 always had m/checkpoint written with m/format since), whose a/
// keys are the accounts as of m/head.
func (s *Store) readCheckpoint() (c checkpoint, found bool, err error) {
	v, err := s.get(keyCheckpoint)
	if errors.Is(err, pebble.ErrNotFound) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("read checkpoint: %w", err)
	}
	c, err = decodeCheckpoint(v)
	return c, err == nil, err
}

// accountShards spreads the accounts over locks, so that readers rarely meet the writer.
const accountShards = 64

// accountMap holds the current accounts: readers look an account up under its shard's read
// lock and load its value, an immutable *ledger.Account, atomically; so each read sees one
// account as one commit left it, and never waits for a Commit's I/O.
type accountMap struct {
	seed   maphash.Seed
	shards [accountShards]accountShard
}

type accountShard struct {
	mu sync.RWMutex
	m  map[string]*accountEntry
	_  [64 - 24 - 8]byte // one cache line each
}

// accountEntry is one account. cur changes only after the batch that changed it is durable;
// next and dirty belong to the writer (Store.mu).
type accountEntry struct {
	cur   atomic.Pointer[accountVersion] // never changed once stored: replaced
	next  *ledger.Account                // what the Commit in progress writes
	dirty bool                           // changed since the last checkpoint: in Store.dirty
}

// value is what a checkpoint built now writes: the Commit in progress's value if it has
// one, else the durable one.
func (e *accountEntry) value() *ledger.Account {
	if e.next != nil {
		return e.next
	}
	return e.cur.Load().a
}

func newAccountMap(sizeHint int) *accountMap {
	m := &accountMap{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].m = make(map[string]*accountEntry, sizeHint/accountShards)
	}
	return m
}

func (m *accountMap) shard(id string) *accountShard {
	return &m.shards[maphash.String(m.seed, id)%accountShards]
}

func (m *accountMap) entry(id string) *accountEntry {
	sh := m.shard(id)
	sh.mu.RLock()
	e := sh.m[id]
	sh.mu.RUnlock()
	return e
}

// account returns the value of id as of generation gen, or nil, and false if it changed
// twice since gen (see accountVersion.at). Callers must not change it.
func (m *accountMap) account(id string, gen uint64) (*ledger.Account, bool) {
	if e := m.entry(id); e != nil {
		return e.cur.Load().at(gen)
	}
	return nil, true
}

// add makes e, whose cur is set, the entry of id.
func (m *accountMap) add(id string, e *accountEntry) {
	sh := m.shard(id)
	sh.mu.Lock()
	sh.m[id] = e
	sh.mu.Unlock()
}

// copyAccount returns a copy of a that the caller may change (Metadata included): what
// reads hand out, as they did when each read decoded a fresh value.
func copyAccount(a *ledger.Account) *ledger.Account {
	c := *a
	if a.Metadata != nil {
		c.Metadata = make(map[string]string, len(a.Metadata))
		for k, v := range a.Metadata {
			c.Metadata[k] = v
		}
	}
	return &c
}

// restored is the accounts as of a head, rebuilt from the checkpoint and the records after
// it.
type restored struct {
	accounts map[string]*ledger.Account
	ckpt     checkpoint
	legacy   bool     // no m/checkpoint: a/ is as of the head (see readCheckpoint)
	changed  []string // accounts the replay changed, whose a/ is not their value: dirty
	created  []string // accounts the replay created (not in a/ at all), sorted
	records  uint64   // records replayed
	changes  uint64   // changes in them
}

// restoreAccounts reads the checkpoint (a/ and m/checkpoint) and replays every record after
// it through head, applying each change to the accounts and checking every posted balance
// against the change's source_after and destination_after (the read half of a pair
// assertion: the ledger computed them from the same accounts). headTime is head's timestamp,
// the checkpoint time of a store without m/checkpoint. Records are checked against their
// hash; the chain as a whole is Load's (its head) and `tpwallet verify`'s business.
func (s *Store) restoreAccounts(ctx context.Context, head journal.Head, headTime int64) (*restored, error) {
	ckpt, found, err := s.readCheckpoint()
	if err != nil {
		return nil, err
	}
	res := &restored{accounts: make(map[string]*ledger.Account), ckpt: ckpt}
	if !found {
		res.ckpt, res.legacy = checkpoint{Seq: head.Seq, Time: headTime}, true
	}
	if res.ckpt.Seq > head.Seq {
		return nil, &journal.CorruptionError{Seq: res.ckpt.Seq, What: "m/checkpoint is after the head",
			Want: "at most " + strconv.FormatUint(head.Seq, 10), Got: strconv.FormatUint(res.ckpt.Seq, 10)}
	}
	err = s.each(ctx, []byte{prefixAccount, '/'}, func(k, v []byte) error {
		a, err := decodeAccountAt(k, v)
		res.accounts[a.ID] = a
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	if res.ckpt.Seq == head.Seq {
		return res, nil
	}
	rp := replayer{accounts: res.accounts, changed: make(map[string]struct{})}
	next := res.ckpt.Seq + 1
	prefix := []byte{prefixRecord, '/'}
	err = s.scan(ctx, prefix, recordKey(nil, next), false, func(k, v []byte) error {
		seq, err := seqOfKey(k)
		if err != nil {
			return err
		}
		if seq != next {
			return &journal.CorruptionError{Seq: next, What: "record missing after the checkpoint"}
		}
		r, err := journal.DecodeRecord(v)
		if err != nil {
			return &journal.CorruptionError{Seq: seq, What: "record after the checkpoint does not decode: " + err.Error()}
		}
		if r.Seq != seq {
			return &journal.CorruptionError{Seq: seq, What: "seq inside the record",
				Want: strconv.FormatUint(seq, 10), Got: strconv.FormatUint(r.Seq, 10)}
		}
		if h := journal.RecordHash(r); h != r.Hash {
			return &journal.CorruptionError{Seq: seq, What: "hash", Want: h.String(), Got: r.Hash.String()}
		}
		if err := rp.record(r); err != nil {
			return err
		}
		res.records++
		res.changes += uint64(len(r.Changes))
		if next++; next > head.Seq {
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if next <= head.Seq {
		return nil, &journal.CorruptionError{Seq: next, What: "record missing after the checkpoint"}
	}
	res.changed = make([]string, 0, len(rp.changed))
	for id := range rp.changed {
		res.changed = append(res.changed, id)
	}
	slices.Sort(rp.created)
	res.created = rp.created
	return res, nil
}

// replayer applies the changes of records to accounts (which it changes in place).
type replayer struct {
	accounts map[string]*ledger.Account
	changed  map[string]struct{}
	created  []string

	seq   uint64
	index int
	cur   *ledger.Change
}

func (p *replayer) record(r *journal.Record) error {
	p.seq = r.Seq
	for i := range r.Changes {
		p.index, p.cur = i, &r.Changes[i]
		if err := p.change(p.cur); err != nil {
			return err
		}
	}
	return nil
}

// fail returns a CorruptionError naming the record and the change being replayed.
func (p *replayer) fail(what, want, got string) error {
	c, id := p.cur, ""
	switch {
	case c.Transfer != nil:
		id = " " + c.Transfer.ID
	case c.Account != nil:
		id = " " + c.Account.ID
	case c.Asset != nil:
		id = " " + c.Asset.Code
	}
	return &journal.CorruptionError{Seq: p.seq, Want: want, Got: got,
		What: fmt.Sprintf("replaying the journal after the checkpoint: change %d (%s%s): %s", p.index, c.Op, id, what)}
}

func (p *replayer) change(c *ledger.Change) error {
	switch c.Op {
	case ledger.ChangeAssetCreate: // s/ is written with the record: nothing to rebuild
		if c.Asset == nil {
			return p.fail("no asset", "", "")
		}
		return nil
	case ledger.ChangeAccountCreate:
		a := c.Account
		if a == nil {
			return p.fail("no account", "", "")
		}
		if _, ok := p.accounts[a.ID]; ok {
			return p.fail("account created twice", "", a.ID)
		}
		p.accounts[a.ID] = a // the decoded record is not kept: the snapshot is ours
		p.changed[a.ID] = struct{}{}
		p.created = append(p.created, a.ID)
		return nil
	case ledger.ChangeAccountFreeze, ledger.ChangeAccountUnfreeze:
		return p.status(c)
	case ledger.ChangeCreate, ledger.ChangePost, ledger.ChangeIncrease, ledger.ChangeVoid, ledger.ChangeExpire:
		return p.transfer(c)
	}
	return p.fail("unknown op", "", strconv.Itoa(int(c.Op)))
}

// status takes the snapshot a freeze or unfreeze carries, after checking that its totals are
// the replayed ones.
func (p *replayer) status(c *ledger.Change) error {
	a := c.Account
	if a == nil {
		return p.fail("no account", "", "")
	}
	old := p.accounts[a.ID]
	if old == nil {
		return p.fail("account not found", "", a.ID)
	}
	for _, x := range [...]struct {
		name      string
		want, got ledger.Amount
	}{
		{"debits_posted", old.DebitsPosted, a.DebitsPosted},
		{"credits_posted", old.CreditsPosted, a.CreditsPosted},
		{"pending_debits", old.DebitsPending, a.DebitsPending},
		{"pending_credits", old.CreditsPending, a.CreditsPending},
	} {
		if x.want != x.got {
			return p.fail("account "+x.name+" differs from the replayed one", x.want.String(), x.got.String())
		}
	}
	p.accounts[a.ID] = a
	p.changed[a.ID] = struct{}{}
	return nil
}

// transfer applies a transfer change to both accounts' totals, from the change alone:
//   - create: Amount to pending (a hold) or to posted;
//   - post: Amount to posted; from pending, all that was held before the post when the
//     transfer is no longer pending after it (Amount − (AmountPosted − posted now)), else
//     Amount;
//   - increase: Amount to pending;
//   - void, expire: Amount (what was still held) out of pending.
//
// It then checks source_after and destination_after.
func (p *replayer) transfer(c *ledger.Change) error {
	t := c.Transfer
	if t == nil {
		return p.fail("no transfer", "", "")
	}
	src, dst := p.accounts[t.Source], p.accounts[t.Destination]
	switch {
	case src == nil:
		return p.fail("source account not found", "", t.Source)
	case dst == nil:
		return p.fail("destination account not found", "", t.Destination)
	case src == dst:
		return p.fail("source and destination are the same account", "", t.Source)
	}
	var posted, held, release ledger.Amount
	switch c.Op {
	case ledger.ChangeCreate:
		if t.Hold {
			held = c.Amount
		} else {
			posted = c.Amount
		}
	case ledger.ChangePost:
		posted, release = c.Amount, c.Amount
		if t.Status != ledger.TransferPending {
			before, ok := t.AmountPosted.Sub(c.Amount) // posted before this post
			if ok {
				release, ok = t.Amount.Sub(before)
			}
			if !ok {
				return p.fail("post of more than the transfer's amount", t.Amount.String(), t.AmountPosted.String())
			}
		}
	case ledger.ChangeIncrease:
		held = c.Amount
	default: // void, expire
		release = c.Amount
	}
	var ok [6]bool
	src.DebitsPosted, ok[0] = src.DebitsPosted.Add(posted)
	dst.CreditsPosted, ok[1] = dst.CreditsPosted.Add(posted)
	src.DebitsPending, ok[2] = src.DebitsPending.Add(held)
	dst.CreditsPending, ok[3] = dst.CreditsPending.Add(held)
	src.DebitsPending, ok[4] = src.DebitsPending.Sub(release)
	dst.CreditsPending, ok[5] = dst.CreditsPending.Sub(release)
	if ok != [6]bool{true, true, true, true, true, true} {
		return p.fail("an account total leaves 0..2^128-1", "", c.Amount.String())
	}
	p.changed[src.ID] = struct{}{}
	p.changed[dst.ID] = struct{}{}
	if b := src.Posted(); b != c.SourceAfter {
		return p.fail("source_after differs from the replayed balance of "+src.ID, b.String(), c.SourceAfter.String())
	}
	if b := dst.Posted(); b != c.DestinationAfter {
		return p.fail("destination_after differs from the replayed balance of "+dst.ID, b.String(),
			c.DestinationAfter.String())
	}
	return nil
}
