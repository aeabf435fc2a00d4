package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/store"
)

// The store.Meta space lives under f/<ns> 0x00 <key>. Unlike the ledger's keys it is read
// from the live database, not from the view: its writers are the followers, not the
// engine, and must read back what they wrote at once.

var _ store.Meta = (*Store)(nil)

func metaKey(ns, key string) ([]byte, error) {
	if err := validMeta(ns, key); err != nil {
		return nil, err
	}
	return pairKey(nil, prefixFollow, ns, key), nil
}

func validMeta(parts ...string) error {
	for _, p := range parts {
		if hasSep(p) || !utf8.ValidString(p) {
			return fmt.Errorf("pebblestore: meta key %q: NUL or invalid UTF-8", p)
		}
	}
	return nil
}

// live runs fn unless the store is closed, keeping Close from closing the database under it.
func (s *Store) live(fn func() error) error {
	s.metaMu.RLock()
	defer s.metaMu.RUnlock()
	if s.metaClosed {
		return pebble.ErrClosed
	}
	return fn()
}

// GetMeta returns the value of (ns, key), or store.ErrNotFound.
func (s *Store) GetMeta(_ context.Context, ns, key string) ([]byte, error) {
	k, err := metaKey(ns, key)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = s.live(func() error {
		v, closer, err := s.db.Get(k)
		if err != nil {
			return err
		}
		out = bytes.Clone(v)
		if out == nil {
			out = []byte{}
		}
		return closer.Close()
	})
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("pebblestore: meta %s/%s: %w", ns, key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pebblestore: meta %s/%s: %w", ns, key, err)
	}
	return out, nil
}

// WriteMeta applies ops in one synced batch.
func (s *Store) WriteMeta(_ context.Context, ops ...store.MetaOp) error {
	if len(ops) == 0 {
		return nil
	}
	err := s.live(func() error {
		b := s.db.NewBatch()
		defer b.Close()
		for _, op := range ops {
			k, err := metaKey(op.NS, op.Key)
			if err != nil {
				return err
			}
			if op.Value == nil {
				err = b.Delete(k, nil)
			} else {
				err = b.Set(k, op.Value, nil)
			}
			if err != nil {
				return err
			}
		}
		return b.Commit(s.wo)
	})
	if err != nil {
		return fmt.Errorf("pebblestore: write meta: %w", err)
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
	nsPrefix := pairKey(nil, prefixFollow, ns, "")
	lower := append(bytes.Clone(nsPrefix), prefix...)
	upper := prefixEnd(lower) // valid UTF-8 has no 0xff byte to carry
	var out []store.MetaKV
	err := s.live(func() error {
		it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return err
		}
		var ok bool
		step := it.Next
		switch {
		case reverse && from == "":
			ok, step = it.Last(), it.Prev
		case reverse:
			ok, step = it.SeekLT(append(bytes.Clone(nsPrefix), from...)), it.Prev
		default:
			ok = it.SeekGE(append(bytes.Clone(nsPrefix), from...))
		}
		for ; ok && len(out) < limit; ok = step() {
			v, err := it.ValueAndErr()
			if err != nil {
				return errors.Join(err, it.Close())
			}
			out = append(out, store.MetaKV{Key: string(it.Key()[len(nsPrefix):]), Value: bytes.Clone(v)})
		}
		return errors.Join(it.Error(), it.Close())
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: scan meta %s: %w", ns, err)
	}
	return out, nil
}
