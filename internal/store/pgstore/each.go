package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// These iterate everything the store holds, for `tpwallet verify`, which rebuilds the state
// from the journal and compares it with the stored rows. Each streams one query; run them
// while no engine commits. fn may return an error to stop; it is returned as is.

// EachRecord calls fn with every journal record in seq order. A record that does not decode,
// or whose row's seq differs from the record's, ends the walk with an error.
func (s *Store) EachRecord(ctx context.Context, fn func(*journal.Record) error) error {
	rows, _ := s.pool.Query(ctx, `SELECT seq, record FROM journal ORDER BY seq`)
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			return fmt.Errorf("pgstore: journal: %w", unavailable(err))
		}
		r, err := journal.DecodeRecord(raw)
		if err != nil {
			return fmt.Errorf("pgstore: journal row %d: %w", seq, unavailable(err))
		}
		if r.Seq != uint64(seq) {
			return fmt.Errorf("pgstore: journal row %d holds record %d", seq, r.Seq)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachAccount calls fn with every stored account, ordered by id.
func (s *Store) EachAccount(ctx context.Context, fn func(*ledger.Account) error) error {
	rows, _ := s.pool.Query(ctx, `SELECT id, record FROM accounts ORDER BY id`)
	defer rows.Close()
	for rows.Next() {
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return fmt.Errorf("pgstore: accounts: %w", unavailable(err))
		}
		a, err := decodeAccount(id, raw)
		if err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachPending calls fn with the id of every transfer listed as pending, ordered by id.
func (s *Store) EachPending(ctx context.Context, fn func(id string) error) error {
	rows, _ := s.pool.Query(ctx, `SELECT id FROM pending ORDER BY id`)
	defer rows.Close()
	var ids []string // collected first: fn may query the pool (Transfer) meanwhile
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("pgstore: pending: %w", unavailable(err))
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pgstore: pending: %w", unavailable(err))
	}
	rows.Close()
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// EachEntry calls fn with every entry (posted movement) of account (of every account when
// account is ""), ordered by account, then time (oldest first).
func (s *Store) EachEntry(ctx context.Context, account string, fn func(journal.Entry) error) error {
	rows, _ := s.pool.Query(ctx, `SELECT account, time, transfer_id, direction, amount::text, kind, posted_after::text
		FROM activity WHERE posts AND ($1 = '' OR account = $1) ORDER BY account, time`, account)
	defer rows.Close()
	for rows.Next() {
		var e journal.Entry
		var dir, amount, kind, after string
		if err := rows.Scan(&e.Account, &e.Time, &e.TransferID, &dir, &amount, &kind, &after); err != nil {
			return fmt.Errorf("pgstore: entries: %w", unavailable(err))
		}
		if err := decodeEntry(&e, dir, amount, kind, after); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// decodeEntry fills e from an activity row's text columns: direction, amount, kind and the
// posted balance after it.
func decodeEntry(e *journal.Entry, dir, amount, kind, after string) error {
	var err1, err2, err3 error
	e.Kind = ledger.TransferKind(kind)
	e.Amount, err1 = ledger.ParseAmount(amount)
	e.PostedAfter, err2 = ledger.ParseBalance(after)
	switch dir {
	case "debit":
		e.Direction = journal.Debit
	case "credit":
		e.Direction = journal.Credit
	default:
		err3 = fmt.Errorf("direction %q", dir)
	}
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("pgstore: entry of %q at %d: %w", e.Account, e.Time, err)
	}
	return nil
}
