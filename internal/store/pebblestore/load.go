package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Load returns the state to resume from and the head of the journal. It first checks the
// newest record: it must be the one m/head names, its hash must be journal.RecordHash of it,
// and it must link to the record before it (whose hash must check out too). Otherwise it
// refuses with a *journal.CorruptionError, and nothing can be committed; `tpwallet verify`
// then tells how far the chain is sound. The accounts are the checkpoint (a/, m/checkpoint)
// with the records after it replayed (restoreAccounts: a record that does not decode, does
// not hash to its hash, or whose balances do not follow is a *journal.CorruptionError
// naming it); the replay is as long as the checkpoint interval, never the history. Holds are
// the transfers p/ lists.
func (s *Store) Load(ctx context.Context) (*ledger.State, journal.Head, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	head, last, headTime, err := s.checkHead()
	if err != nil {
		return nil, journal.Head{}, fmt.Errorf("pebblestore: load: %w", err)
	}
	assets, err := s.loadAssets(ctx)
	if err != nil {
		return nil, journal.Head{}, fmt.Errorf("pebblestore: load assets: %w", err)
	}
	res, err := s.restoreAccounts(ctx, head, headTime)
	if err != nil {
		return nil, journal.Head{}, fmt.Errorf("pebblestore: load: %w", err)
	}
	if res.legacy { // from now on a/ is a checkpoint: say of which record
		if err := s.db.Set(keyCheckpoint, appendCheckpoint(nil, res.ckpt), pebble.Sync); err != nil {
			return nil, journal.Head{}, fmt.Errorf("pebblestore: load: write checkpoint: %w", err)
		}
		s.publishView()
	}
	holds, err := s.loadHolds(ctx)
	if err != nil {
		return nil, journal.Head{}, fmt.Errorf("pebblestore: load holds: %w", err)
	}
	if err := checkPending(res.accounts, holds); err != nil {
		return nil, journal.Head{}, fmt.Errorf("pebblestore: load: %w", err)
	}
	// The State changes its accounts in place; the store's are immutable: each gets its own.
	m := newAccountMap(len(res.accounts))
	copies := make([]ledger.Account, len(res.accounts))
	accounts := make([]*ledger.Account, 0, len(res.accounts))
	for id, a := range res.accounts {
		e := &accountEntry{}
		e.cur.Store(&accountVersion{a: a}) // generation 0: every view sees it
		m.shard(id).m[id] = e
		copies[len(accounts)] = *a
		accounts = append(accounts, &copies[len(accounts)])
	}
	st := ledger.NewState()
	st.Restore(assets, accounts, holds, last)
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	for _, id := range res.changed { // not in a/ as they are: the next checkpoint writes them
		e := m.shard(id).m[id]
		e.dirty = true
		s.dirty = append(s.dirty, e)
	}
	s.accounts.Store(m)
	s.created.Store(&res.created)
	s.ckpt, s.sinceRecords, s.sinceChanges = res.ckpt, res.records, res.changes
	s.headTime = headTime
	s.head.Store(&head)
	s.publishView()
	s.loaded = true
	s.opts.Logger.Info("pebblestore loaded", "head_seq", head.Seq, "checkpoint_seq", res.ckpt.Seq,
		"records_replayed", res.records, "changes_replayed", res.changes, "accounts", len(accounts),
		"holds", len(holds), "assets_created", len(assets))
	return st, head, nil
}

// checkHead checks the newest record (see Load) and returns the head, the time of the
// latest change, which ledger.State.Restore needs so that times keep increasing, and the
// record's timestamp.
func (s *Store) checkHead() (journal.Head, int64, int64, error) {
	stored := *s.head.Load() // m/head as Open read it
	seq, found, err := s.lastSeq()
	if err != nil {
		return journal.Head{}, 0, 0, err
	}
	if !found {
		if stored.Seq != 0 {
			return journal.Head{}, 0, 0, &journal.CorruptionError{Seq: stored.Seq,
				What: "m/head names a record the journal does not hold",
				Want: "record " + strconv.FormatUint(stored.Seq, 10), Got: "no record"}
		}
		return journal.Head{}, 0, 0, nil
	}
	if seq != stored.Seq {
		return journal.Head{}, 0, 0, &journal.CorruptionError{Seq: seq,
			What: "the newest record is not the one m/head names",
			Want: strconv.FormatUint(stored.Seq, 10), Got: strconv.FormatUint(seq, 10)}
	}
	rec, err := s.checkedRecord(seq)
	if err != nil {
		return journal.Head{}, 0, 0, err
	}
	if rec.Hash != stored.Hash {
		return journal.Head{}, 0, 0, &journal.CorruptionError{Seq: seq, What: "hash differs from m/head",
			Want: stored.Hash.String(), Got: rec.Hash.String()}
	}
	var prevHash journal.Hash // all zeros before the first record
	if seq > 1 {
		prev, err := s.checkedRecord(seq - 1)
		if err != nil {
			return journal.Head{}, 0, 0, err
		}
		prevHash = prev.Hash
	}
	if rec.PrevHash != prevHash {
		return journal.Head{}, 0, 0, &journal.CorruptionError{Seq: seq, What: "prev_hash",
			Want: prevHash.String(), Got: rec.PrevHash.String()}
	}
	last := rec.Timestamp
	if n := len(rec.Changes); n > 0 {
		last = rec.Changes[n-1].Time
	}
	return journal.Head{Seq: seq, Hash: rec.Hash}, last, rec.Timestamp, nil
}

// lastSeq returns the seq of the last j/ key.
func (s *Store) lastSeq() (uint64, bool, error) {
	lower := []byte{prefixRecord, '/'}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return 0, false, err
	}
	var seq uint64
	found := it.Last()
	if found {
		if seq, err = seqOfKey(it.Key()); err != nil {
			return 0, false, errors.Join(err, it.Close())
		}
	}
	return seq, found, errors.Join(it.Error(), it.Close())
}

func seqOfKey(k []byte) (uint64, error) {
	if len(k) != 2+8 || k[0] != prefixRecord || k[1] != '/' {
		return 0, fmt.Errorf("%w: journal key %q", errEncoding, k)
	}
	return binary.BigEndian.Uint64(k[2:]), nil
}

// checkedRecord reads record seq and checks that it is what was written: it decodes, it says
// it is seq, and its hash is the one journal.RecordHash computes (the read half of the pair
// assertion whose write half is in Commit).
func (s *Store) checkedRecord(seq uint64) (*journal.Record, error) {
	v, err := s.get(recordKey(nil, seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, &journal.CorruptionError{Seq: seq, What: "record missing"}
	}
	if err != nil {
		return nil, fmt.Errorf("read record %d: %w", seq, err)
	}
	rec, err := journal.DecodeRecord(v)
	if err != nil {
		return nil, &journal.CorruptionError{Seq: seq, What: "record does not decode: " + err.Error()}
	}
	if rec.Seq != seq {
		return nil, &journal.CorruptionError{Seq: seq, What: "seq inside the record",
			Want: strconv.FormatUint(seq, 10), Got: strconv.FormatUint(rec.Seq, 10)}
	}
	if h := journal.RecordHash(rec); h != rec.Hash {
		return nil, &journal.CorruptionError{Seq: seq, What: "hash", Want: h.String(), Got: rec.Hash.String()}
	}
	return rec, nil
}

func (s *Store) loadAssets(ctx context.Context) ([]ledger.Asset, error) {
	var assets []ledger.Asset
	err := s.each(ctx, []byte{prefixAsset, '/'}, func(k, v []byte) error {
		a := ledger.Asset{Code: string(k[2:])}
		if len(v) != 1 || v[0] > ledger.AssetScaleMax || !ledger.ValidAssetCode(a.Code) {
			return fmt.Errorf("%w: asset %q", errEncoding, k[2:])
		}
		a.Scale = v[0]
		assets = append(assets, a)
		return nil
	})
	return assets, err
}

// loadHolds reads the transfers p/ lists: each must be pending.
func (s *Store) loadHolds(ctx context.Context) ([]*ledger.Transfer, error) {
	var ids []string
	err := s.each(ctx, []byte{prefixPending, '/'}, func(k, _ []byte) error {
		ids = append(ids, string(k[2:]))
		return nil
	})
	if err != nil {
		return nil, err
	}
	holds := make([]*ledger.Transfer, 0, len(ids))
	var key []byte
	for _, id := range ids {
		key = idKey(key[:0], prefixTransfer, id)
		v, err := s.get(key)
		if err != nil {
			return nil, fmt.Errorf("transfer %s: %w", id, err)
		}
		t, err := decodeTransferAt(key, v)
		if err != nil {
			return nil, err
		}
		if t.Status != ledger.TransferPending {
			return nil, fmt.Errorf("%w: transfer %s is listed pending but is %s", errEncoding, id, t.Status)
		}
		holds = append(holds, t)
	}
	return holds, nil
}

// checkPending checks that every account's pending totals are what the pending holds hold:
// the pair assertion for pending totals, which source_after and destination_after (posted
// balances) do not cover, over the checkpoint and the replay alike.
func checkPending(accounts map[string]*ledger.Account, holds []*ledger.Transfer) error {
	type totals struct{ debits, credits ledger.Amount }
	held := make(map[string]*totals)
	add := func(id string, amount ledger.Amount, debit bool) error {
		t := held[id]
		if t == nil {
			t = new(totals)
			held[id] = t
		}
		ok := true
		if debit {
			t.debits, ok = t.debits.Add(amount)
		} else {
			t.credits, ok = t.credits.Add(amount)
		}
		if !ok {
			return fmt.Errorf("account %s: the pending holds hold more than 2^128-1", id)
		}
		return nil
	}
	for _, h := range holds {
		if err := errors.Join(add(h.Source, h.Held(), true), add(h.Destination, h.Held(), false)); err != nil {
			return err
		}
	}
	var bad []string // reported in id order, so that the error is always the same
	for id, a := range accounts {
		t := held[id]
		if t == nil {
			if a.DebitsPending.IsZero() && a.CreditsPending.IsZero() {
				continue
			}
			t = new(totals)
		}
		if a.DebitsPending != t.debits || a.CreditsPending != t.credits {
			bad = append(bad, id)
		} else {
			delete(held, id)
		}
	}
	if len(bad) > 0 {
		id := slices.Min(bad)
		a, t := accounts[id], held[id]
		if t == nil {
			t = new(totals)
		}
		return fmt.Errorf("account %s: pending debits/credits %s/%s, but its pending holds (p/) hold %s/%s",
			id, a.DebitsPending, a.CreditsPending, t.debits, t.credits)
	}
	if len(held) > 0 {
		return fmt.Errorf("a pending hold (p/) names account %s, which does not exist",
			slices.Min(slices.Collect(maps.Keys(held))))
	}
	return nil
}

// decodeAccountAt decodes the account stored at a/<id>, checking that it is that id's.
func decodeAccountAt(k, v []byte) (*ledger.Account, error) {
	a, err := journal.DecodeAccount(v)
	if err != nil {
		return nil, fmt.Errorf("account %q: %w", k[2:], err)
	}
	if a.ID != string(k[2:]) {
		return nil, fmt.Errorf("%w: account %s stored at %q", errEncoding, a.ID, k)
	}
	return a, nil
}

// decodeTransferAt decodes the transfer stored at t/<id>, checking that it is that id's.
func decodeTransferAt(k, v []byte) (*ledger.Transfer, error) {
	t, err := journal.DecodeTransfer(v)
	if err != nil {
		return nil, fmt.Errorf("transfer %q: %w", k[2:], err)
	}
	if t.ID != string(k[2:]) {
		return nil, fmt.Errorf("%w: transfer %s stored at %q", errEncoding, t.ID, k)
	}
	return t, nil
}

// errStop ends a scan early without an error.
var errStop = errors.New("stop")

// each calls fn with every key and value under prefix, in key order (see scan).
func (s *Store) each(ctx context.Context, prefix []byte, fn func(k, v []byte) error) error {
	return s.scan(ctx, prefix, prefix, false, fn)
}
