package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Load returns the state to resume from and the head of the journal, read in one
// repeatable-read transaction. It first checks the head record (see the package doc), then
// reads the assets created, the accounts and the pending holds.
func (s *Store) Load(ctx context.Context) (*ledger.State, journal.Head, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		head   journal.Head
		last   int64
		assets []ledger.Asset
		accts  []*ledger.Account
		holds  []*ledger.Transfer
	)
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			var err error
			if head, last, err = checkHead(ctx, tx); err != nil {
				return err
			}
			rows, _ := tx.Query(ctx, `SELECT code, scale FROM assets ORDER BY code`)
			assets, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Asset, error) {
				var a ledger.Asset
				var scale int16
				err := r.Scan(&a.Code, &scale)
				a.Scale = uint8(scale)
				return a, err
			})
			if err != nil {
				return fmt.Errorf("assets: %w", err)
			}
			rows, _ = tx.Query(ctx, `SELECT id, record FROM accounts`)
			accts, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*ledger.Account, error) {
				var id string
				var rec []byte
				if err := r.Scan(&id, &rec); err != nil {
					return nil, err
				}
				a, err := journal.DecodeAccount(rec)
				if err == nil && a.ID != id {
					err = fmt.Errorf("account %s stored as %s", a.ID, id)
				}
				return a, err
			})
			if err != nil {
				return fmt.Errorf("accounts: %w", err)
			}
			rows, _ = tx.Query(ctx, `SELECT p.id, t.record FROM pending p LEFT JOIN transfers t ON t.id = p.id`)
			holds, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*ledger.Transfer, error) {
				var id string
				var rec []byte
				if err := r.Scan(&id, &rec); err != nil {
					return nil, err
				}
				if rec == nil {
					return nil, fmt.Errorf("pending hold %s has no transfer row", id)
				}
				t, err := journal.DecodeTransfer(rec)
				switch {
				case err != nil:
					return nil, fmt.Errorf("transfer %s: %w", id, err)
				case t.ID != id:
					return nil, fmt.Errorf("transfer %s stored as %s", t.ID, id)
				case t.Status != ledger.TransferPending:
					return nil, fmt.Errorf("transfer %s is listed pending but is %s", id, t.Status)
				}
				return t, nil
			})
			if err != nil {
				return fmt.Errorf("holds: %w", err)
			}
			return nil
		})
	if err != nil {
		return nil, journal.Head{}, fmt.Errorf("pgstore: load: %w", err)
	}
	st := ledger.NewState()
	st.Restore(assets, accts, holds, last)
	s.loaded = true
	s.opts.Logger.Info("pgstore loaded", "head_seq", head.Seq, "accounts", len(accts), "holds", len(holds),
		"assets_created", len(assets))
	return st, head, nil
}

// checkHead reads the head row and checks the record it names: present, decodable, under its
// own seq, hashing to its hash, equal to the head's hash and linked to the record before. It
// returns the head and the time of the latest change.
func checkHead(ctx context.Context, tx pgx.Tx) (journal.Head, int64, error) {
	var seq, lastTime int64
	var hash []byte
	if err := tx.QueryRow(ctx, `SELECT seq, hash, last_time FROM head`).Scan(&seq, &hash, &lastTime); err != nil {
		return journal.Head{}, 0, fmt.Errorf("read head: %w", err)
	}
	var maxSeq int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM journal`).Scan(&maxSeq); err != nil {
		return journal.Head{}, 0, fmt.Errorf("read journal: %w", err)
	}
	if maxSeq != seq {
		return journal.Head{}, 0, &journal.CorruptionError{Seq: uint64(maxSeq),
			What: "the newest record is not the one the head row names",
			Want: strconv.FormatInt(seq, 10), Got: strconv.FormatInt(maxSeq, 10)}
	}
	if seq == 0 {
		return journal.Head{}, 0, nil
	}
	rec, err := checkedRecord(ctx, tx, seq)
	if err != nil {
		return journal.Head{}, 0, err
	}
	if string(rec.Hash[:]) != string(hash) {
		return journal.Head{}, 0, &journal.CorruptionError{Seq: rec.Seq, What: "hash differs from the head row",
			Want: fmt.Sprintf("%x", hash), Got: rec.Hash.String()}
	}
	var prevHash journal.Hash
	if seq > 1 {
		prev, err := checkedRecord(ctx, tx, seq-1)
		if err != nil {
			return journal.Head{}, 0, err
		}
		prevHash = prev.Hash
	}
	if rec.PrevHash != prevHash {
		return journal.Head{}, 0, &journal.CorruptionError{Seq: rec.Seq, What: "prev_hash",
			Want: prevHash.String(), Got: rec.PrevHash.String()}
	}
	last := rec.Timestamp
	if n := len(rec.Changes); n > 0 {
		last = rec.Changes[n-1].Time
	}
	return journal.Head{Seq: rec.Seq, Hash: rec.Hash}, last, nil
}

// checkedRecord reads journal row seq and checks that it decodes, says it is seq, and hashes
// to its hash (journal.RecordHash), and that the hash column agrees.
func checkedRecord(ctx context.Context, tx pgx.Tx, seq int64) (*journal.Record, error) {
	var b, hash []byte
	err := tx.QueryRow(ctx, `SELECT record, hash FROM journal WHERE seq = $1`, seq).Scan(&b, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &journal.CorruptionError{Seq: uint64(seq), What: "record missing"}
	}
	if err != nil {
		return nil, fmt.Errorf("read record %d: %w", seq, err)
	}
	rec, err := journal.DecodeRecord(b)
	if err != nil {
		return nil, &journal.CorruptionError{Seq: uint64(seq), What: "record does not decode: " + err.Error()}
	}
	if rec.Seq != uint64(seq) {
		return nil, &journal.CorruptionError{Seq: uint64(seq), What: "seq inside the record",
			Want: strconv.FormatInt(seq, 10), Got: strconv.FormatUint(rec.Seq, 10)}
	}
	if h := journal.RecordHash(rec); h != rec.Hash {
		return nil, &journal.CorruptionError{Seq: uint64(seq), What: "hash", Want: h.String(), Got: rec.Hash.String()}
	}
	if string(hash) != string(rec.Hash[:]) {
		return nil, &journal.CorruptionError{Seq: uint64(seq), What: "hash column",
			Want: rec.Hash.String(), Got: fmt.Sprintf("%x", hash)}
	}
	return rec, nil
}
