package pebblestore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
)

// PageLimitMax bounds every page; callers validate limits (api.md: 1–1000) and the store
// clamps defensively.
const PageLimitMax = 1000

func clampLimit(limit int) int { return min(max(limit, 1), PageLimitMax) }

// Cursor kinds: a cursor is base64url(kind + the key to continue from), so that one list's
// cursor is refused by another (store.ErrBadCursor).
const (
	cursorAccounts         = 'a'
	cursorOwnerAccounts    = 'o'
	cursorEntries          = 'e'
	cursorAccountTransfers = 'c'
	cursorTransfers        = 'T'
)

func makeCursor(kind byte, key []byte) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{kind}, key...))
}

// parseCursor returns the key of cursor after checking that it belongs to the list of
// that kind and prefix, and that what follows the prefix is suffixLen bytes (any length
// when suffixLen < 0).
func parseCursor(cursor string, kind byte, prefix []byte, suffixLen int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 1 || b[0] != kind || !bytes.HasPrefix(b[1:], prefix) {
		return nil, fmt.Errorf("pebblestore: cursor: %w", store.ErrBadCursor)
	}
	key := b[1:]
	if n := len(key) - len(prefix); n == 0 || suffixLen >= 0 && n != suffixLen {
		return nil, fmt.Errorf("pebblestore: cursor: %w", store.ErrBadCursor)
	}
	return key, nil
}

func notFound(what, id string) error {
	return fmt.Errorf("pebblestore: %s %q: %w", what, id, store.ErrNotFound)
}

// Transfer returns the transfer as of its latest change, or store.ErrNotFound.
func (s *Store) Transfer(_ context.Context, id string) (*ledger.Transfer, error) {
	key := idKey(nil, prefixTransfer, id)
	v, err := s.get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, notFound("transfer", id)
	}
	if err != nil {
		return nil, fmt.Errorf("pebblestore: transfer %q: %w", id, err)
	}
	t, err := decodeTransferAt(key, v)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: %w", err)
	}
	return t, nil
}

// Account returns the account as of the latest commit, or store.ErrNotFound. It reads
// memory (filled by Load, kept by Commit), not Pebble.
func (s *Store) Account(_ context.Context, id string) (*ledger.Account, error) {
	a := s.account(id)
	if a == nil {
		return nil, notFound("account", id)
	}
	return copyAccount(a), nil
}

// Accounts returns a page of the accounts of owner (all accounts when owner is ""),
// ordered by id. The ids come from the o/ index (an owner's) or from a/ merged with the
// accounts created since the checkpoint (all); the accounts from memory, as Account.
func (s *Store) Accounts(ctx context.Context, owner, cursor string, limit int) ([]*ledger.Account, string, error) {
	limit = clampLimit(limit)
	kind, prefix := byte(cursorAccounts), []byte{prefixAccount, '/'}
	if owner != "" {
		kind, prefix = cursorOwnerAccounts, pairKey(nil, prefixOwner, owner, "")
	}
	start := prefix
	if cursor != "" {
		key, err := parseCursor(cursor, kind, prefix, -1)
		if err != nil {
			return nil, "", err
		}
		start = append(key, 0) // the least key after the cursor's
	}
	// One view for the list of accounts created since the checkpoint, the scan of a/ and
	// the accounts: an account is in the list or, if a checkpoint wrote it, in a/.
	view := s.acquire()
	if view == nil {
		return nil, "", fmt.Errorf("pebblestore: accounts: %w", pebble.ErrClosed)
	}
	defer view.release()
	var created []string
	if owner == "" {
		created = view.created
		created = created[sortSearch(created, string(start[len(prefix):])):]
	}
	m := s.accounts.Load()
	var page []*ledger.Account
	var last string
	more := false
	// add adds the account id to the page; it skips an id that the view does not show yet,
	// and reports when the page is full.
	add := func(id string) bool {
		a, ok := m.account(id, view.gen)
		if !ok { // changed twice since the view: the page shows its newer value
			a = s.account(id)
		}
		if a == nil {
			return false
		}
		if len(page) == limit {
			more = true
			return true
		}
		page = append(page, copyAccount(a))
		last = id
		return false
	}
	err := view.scan(ctx, prefix, start, false, func(k, _ []byte) error {
		id := k[len(prefix):]
		if bytes.IndexByte(id, sep) >= 0 { // an owner that extends this one with 0x00
			return nil
		}
		for len(created) > 0 && created[0] < string(id) {
			if add(created[0]) {
				return errStop
			}
			created = created[1:]
		}
		if len(created) > 0 && created[0] == string(id) {
			created = created[1:]
		}
		if add(string(id)) {
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("pebblestore: accounts: %w", err)
	}
	for !more && len(created) > 0 {
		add(created[0])
		created = created[1:]
	}
	var lastKey []byte
	if more {
		lastKey = append(append([]byte(nil), prefix...), last...)
	}
	return page, nextCursor(more, kind, lastKey), nil
}

// sortSearch returns the index of the first of the sorted ids that is at least id.
func sortSearch(ids []string, id string) int {
	i, _ := slices.BinarySearch(ids, id)
	return i
}

func nextCursor(more bool, kind byte, last []byte) string {
	if !more {
		return ""
	}
	return makeCursor(kind, last)
}

// Entries returns a page of account's entries (posted movements), newest first, or
// store.ErrNotFound if there is no such account.
func (s *Store) Entries(ctx context.Context, account, cursor string, limit int) ([]journal.Entry, string, error) {
	var page []journal.Entry
	next, err := s.activity(ctx, account, cursor, cursorEntries, limit,
		func(v []byte) bool { return v[1] == 1 }, // posts
		func(a *Activity) error {
			page = append(page, a.Entry)
			return nil
		})
	if err != nil {
		return nil, "", err
	}
	return page, next, nil
}

// Transfers returns a page of transfers newest first by creation: those whose source or
// destination is account, or all when account is "". An unknown account has none.
func (s *Store) Transfers(ctx context.Context, account, cursor string, limit int) ([]*ledger.Transfer, string, error) {
	if account == "" {
		return s.allTransfers(ctx, cursor, limit)
	}
	var ids []string
	next, err := s.activity(ctx, account, cursor, cursorAccountTransfers, limit,
		func(v []byte) bool { return ledger.ChangeOp(v[0]) == ledger.ChangeCreate },
		func(a *Activity) error {
			ids = append(ids, a.TransferID)
			return nil
		})
	if errors.Is(err, store.ErrNotFound) { // a filter that matches nothing
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	page, err := s.transfersByID(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	return page, next, nil
}

func (s *Store) transfersByID(ctx context.Context, ids []string) ([]*ledger.Transfer, error) {
	page := make([]*ledger.Transfer, len(ids))
	for i, id := range ids {
		t, err := s.Transfer(ctx, id)
		if err != nil {
			return nil, err
		}
		page[i] = t
	}
	return page, nil
}

// activity pages account's x/ rows newest first, passing fn those that keep accepts (it is
// given the raw value, which is at least two bytes); it refuses an unknown account with
// store.ErrNotFound.
func (s *Store) activity(ctx context.Context, account, cursor string, kind byte, limit int,
	keep func(v []byte) bool, fn func(*Activity) error) (string, error) {
	limit = clampLimit(limit)
	prefix := activityPrefix(nil, account)
	end := prefixEnd(prefix)
	if cursor != "" {
		key, err := parseCursor(cursor, kind, prefix, 8)
		if err != nil {
			return "", err
		}
		end = key
	}
	if s.account(account) == nil {
		return "", notFound("account", account)
	}
	var last []byte
	n := 0
	more := false
	err := s.scan(ctx, prefix, end, true, func(k, v []byte) error {
		if len(v) < 2 {
			return fmt.Errorf("%w: activity row %q", errEncoding, k)
		}
		if !keep(v) {
			return nil
		}
		if n == limit {
			more = true
			return errStop
		}
		a, err := decodeActivityAt(k, v)
		if err != nil {
			return err
		}
		n++
		last = append(last[:0], k...)
		return fn(&a)
	})
	if err != nil {
		return "", fmt.Errorf("pebblestore: activity of %q: %w", account, err)
	}
	return nextCursor(more, kind, last), nil
}

// decodeActivityAt decodes the row at x/<account> 0x00 <time>.
func decodeActivityAt(k, v []byte) (Activity, error) {
	if len(k) < 2+1+8 || k[len(k)-9] != sep {
		return Activity{}, fmt.Errorf("%w: activity key %q", errEncoding, k)
	}
	a, err := decodeActivity(v)
	if err != nil {
		return Activity{}, fmt.Errorf("activity row %q: %w", k, err)
	}
	a.Account = string(k[2 : len(k)-9])
	a.Time = int64(binary.BigEndian.Uint64(k[len(k)-8:]))
	return a, nil
}

// allTransfers pages every transfer newest first by reading the journal backwards for
// create changes: it adds no key per transfer on the commit path. The cursor is the
// position of the last create returned: j/<seq> and the change's index (4 bytes).
func (s *Store) allTransfers(ctx context.Context, cursor string, limit int) ([]*ledger.Transfer, string, error) {
	limit = clampLimit(limit)
	prefix := []byte{prefixRecord, '/'}
	end, index := prefixEnd(prefix), uint32(math.MaxUint32)
	if cursor != "" {
		key, err := parseCursor(cursor, cursorTransfers, prefix, 8+4)
		if err != nil {
			return nil, "", err
		}
		end, index = append(key[:2+8:2+8], 0), binary.BigEndian.Uint32(key[2+8:])
	}
	var ids []string
	var last []byte
	more, first := false, true
	err := s.scan(ctx, prefix, end, true, func(k, v []byte) error {
		if cursor != "" && first && !bytes.Equal(k, end[:len(end)-1]) {
			return fmt.Errorf("cursor names no record: %w", store.ErrBadCursor)
		}
		first = false
		rec, err := journal.DecodeRecord(v)
		if err != nil {
			return fmt.Errorf("record %x: %w", k[2:], err)
		}
		for i := min(int64(len(rec.Changes)), int64(index)) - 1; i >= 0; i-- {
			c := &rec.Changes[i]
			if c.Op != ledger.ChangeCreate {
				continue
			}
			if len(ids) == limit {
				more = true
				return errStop
			}
			ids = append(ids, c.Transfer.ID)
			last = binary.BigEndian.AppendUint32(append(last[:0], k...), uint32(i))
		}
		index = math.MaxUint32 // records before the cursor's are read whole
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("pebblestore: transfers: %w", err)
	}
	page, err := s.transfersByID(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	return page, nextCursor(more, cursorTransfers, last), nil
}

// BalanceAt returns account's posted balance just after its last activity at or before at
// (Unix ns), zero if none, or store.ErrNotFound if there is no such account. Every activity
// row carries the balance after it, so one reverse seek answers.
func (s *Store) BalanceAt(ctx context.Context, account string, at int64) (ledger.Balance, error) {
	if s.account(account) == nil {
		return ledger.Balance{}, notFound("account", account)
	}
	if at < 1 { // change times start at 1
		return ledger.Balance{}, nil
	}
	prefix := activityPrefix(nil, account)
	end := prefixEnd(prefix)
	if at < math.MaxInt64 {
		end = activityKey(nil, account, at+1)
	}
	var b ledger.Balance
	err := s.scan(ctx, prefix, end, true, func(k, v []byte) error {
		a, err := decodeActivityAt(k, v)
		b = a.PostedAfter
		if err == nil {
			err = errStop
		}
		return err
	})
	if err != nil {
		return ledger.Balance{}, fmt.Errorf("pebblestore: balance of %q: %w", account, err)
	}
	return b, nil
}

// Journal returns up to limit records with Seq > after, in order, up to the head: Pebble
// makes a Commit's batch visible before its WAL sync returns, so the record after the head
// may be in Pebble while it is not yet durable, and a crash then would give its seq to
// another record. A reader who saw it would see the chain fork.
func (s *Store) Journal(ctx context.Context, after uint64, limit int) ([]*journal.Record, error) {
	limit = clampLimit(limit)
	head := s.head.Load().Seq
	if after >= head {
		return nil, nil
	}
	limit = int(min(uint64(limit), head-after))
	var out []*journal.Record
	err := s.eachRecord(ctx, after+1, func(r *journal.Record) error {
		out = append(out, r)
		if len(out) == limit {
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: journal: %w", err)
	}
	return out, nil
}

// eachRecord calls fn with each record from seq from on, in order, checking that each is
// stored under its own seq.
func (s *Store) eachRecord(ctx context.Context, from uint64, fn func(*journal.Record) error) error {
	prefix := []byte{prefixRecord, '/'}
	return s.scan(ctx, prefix, recordKey(nil, from), false, func(k, v []byte) error {
		seq, err := seqOfKey(k)
		if err != nil {
			return err
		}
		r, err := journal.DecodeRecord(v)
		if err != nil {
			return fmt.Errorf("record %d: %w", seq, err)
		}
		if r.Seq != seq {
			return fmt.Errorf("%w: record %d stored at seq %d", errEncoding, r.Seq, seq)
		}
		return fn(r)
	})
}

// Head returns the newest committed record's seq and hash. Before Load it is what m/head
// says, unchecked.
func (s *Store) Head(context.Context) (journal.Head, error) {
	v := s.view.Load()
	if v == nil {
		return journal.Head{}, fmt.Errorf("pebblestore: head: %w", pebble.ErrClosed)
	}
	return v.head, nil
}

// scan calls fn with the keys and values under prefix, forwards from from (inclusive) or,
// when reverse, backwards from before from (exclusive). fn must not keep k or v; it may
// return errStop to end early.
func (s *Store) scan(ctx context.Context, prefix, from []byte, reverse bool, fn func(k, v []byte) error) error {
	view := s.acquire()
	if view == nil {
		return pebble.ErrClosed
	}
	defer view.release()
	return view.scan(ctx, prefix, from, reverse, fn)
}

// scan is Store.scan in vw.
func (vw *view) scan(ctx context.Context, prefix, from []byte, reverse bool, fn func(k, v []byte) error) error {
	o := &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)}
	it, err := vw.snap.NewIterWithContext(ctx, o)
	if err != nil {
		return err
	}
	var ok bool
	step := it.Next
	if reverse {
		ok, step = it.SeekLT(from), it.Prev
	} else {
		ok = it.SeekGE(from)
	}
	for n := 0; ok; ok = step() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return errors.Join(err, it.Close())
			}
		}
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key(), v)
		}
		if errors.Is(err, errStop) {
			break
		}
		if err != nil {
			if cerr := it.Close(); cerr != nil {
				return errors.Join(err, cerr)
			}
			return err // as fn returned it
		}
	}
	return errors.Join(it.Error(), it.Close())
}
