package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
)

// The store.Meta space is the table meta (migrations/0005_meta.sql).

var _ store.Meta = (*Store)(nil)

func validMeta(parts ...string) error {
	for _, p := range parts {
		if !ledger.ValidText(p) {
			return fmt.Errorf("pgstore: meta key %q: NUL or invalid UTF-8", p)
		}
	}
	return nil
}

// GetMeta returns the value of (ns, key), or store.ErrNotFound.
func (s *Store) GetMeta(ctx context.Context, ns, key string) ([]byte, error) {
	if err := validMeta(ns, key); err != nil {
		return nil, err
	}
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE ns = $1 AND key = $2`, ns, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: meta %s/%s: %w", ns, key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: meta %s/%s: %w", ns, key, unavailable(err))
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// WriteMeta applies ops in one transaction.
func (s *Store) WriteMeta(ctx context.Context, ops ...store.MetaOp) error {
	if len(ops) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, op := range ops {
		if err := validMeta(op.NS, op.Key); err != nil {
			return err
		}
		if op.Value == nil {
			b.Queue(`DELETE FROM meta WHERE ns = $1 AND key = $2`, op.NS, op.Key)
		} else {
			b.Queue(`INSERT INTO meta (ns, key, value) VALUES ($1, $2, $3)
				ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value`, op.NS, op.Key, op.Value)
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("pgstore: write meta: %w", unavailable(err))
	}
	return nil
}

// ScanMeta returns up to limit keys of ns starting with prefix, from from on (or backwards
// from before from, when reverse).
func (s *Store) ScanMeta(ctx context.Context, ns, prefix, from string, reverse bool, limit int) ([]store.MetaKV, error) {
	if err := validMeta(ns, prefix, from); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	q := `SELECT key, value FROM meta WHERE ns = $1 AND starts_with(key, $2) AND key >= $3 ORDER BY key LIMIT $4`
	if reverse {
		q = `SELECT key, value FROM meta WHERE ns = $1 AND starts_with(key, $2) AND ($3 = '' OR key < $3)
			ORDER BY key DESC LIMIT $4`
	}
	rows, _ := s.pool.Query(ctx, q, ns, prefix, from, limit)
	defer rows.Close()
	var out []store.MetaKV
	for rows.Next() {
		var kv store.MetaKV
		if err := rows.Scan(&kv.Key, &kv.Value); err != nil {
			return nil, fmt.Errorf("pgstore: scan meta %s: %w", ns, unavailable(err))
		}
		out = append(out, kv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: scan meta %s: %w", ns, unavailable(err))
	}
	return out, nil
}
