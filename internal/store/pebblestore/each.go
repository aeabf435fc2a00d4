package pebblestore

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// These iterate everything the store holds, for `tpwallet verify`, which rebuilds the state
// from the journal and compares it with every derived key. They read a consistent view
// only if no Commit runs meanwhile (verify opens the store without an engine). fn may
// return an error to stop; it is returned as is.

// EachRecord calls fn with every journal record in seq order. A record that does not decode,
// or is stored under another seq, ends the walk with an error wrapping journal.ErrFormat or
// naming the seq; checking the chain is the caller's (journal.Verifier).
func (s *Store) EachRecord(ctx context.Context, fn func(*journal.Record) error) error {
	return s.eachRecord(ctx, 1, fn)
}

// EachAccount calls fn with every account as of the head, ordered by id: what Load restores,
// the checkpoint (a/) with the records after it replayed. So `tpwallet verify`, which
// compares these with a replay of the whole journal, checks the checkpoint, and the replay of
// the tail of the journal that Load does. A record after the checkpoint that does not
// replay ends the walk with a *journal.CorruptionError.
func (s *Store) EachAccount(ctx context.Context, fn func(*ledger.Account) error) error {
	head := *s.head.Load()
	res, err := s.restoreAccounts(ctx, head, 0)
	if err != nil {
		return fmt.Errorf("pebblestore: accounts: %w", err)
	}
	ids := slices.Sorted(maps.Keys(res.accounts))
	for _, id := range ids {
		if err := fn(res.accounts[id]); err != nil {
			return err
		}
	}
	return nil
}

// EachTransfer calls fn with every stored transfer (t/) as of its latest change, ordered
// by id.
func (s *Store) EachTransfer(ctx context.Context, fn func(*ledger.Transfer) error) error {
	return s.each(ctx, []byte{prefixTransfer, '/'}, func(k, v []byte) error {
		t, err := decodeTransferAt(k, v)
		if err != nil {
			return err
		}
		return fn(t)
	})
}

// EachPending calls fn with the id of every transfer listed as pending (p/), ordered by id:
// what Load restores as holds.
func (s *Store) EachPending(ctx context.Context, fn func(id string) error) error {
	return s.each(ctx, []byte{prefixPending, '/'}, func(k, _ []byte) error {
		return fn(string(k[2:]))
	})
}

// EachActivity calls fn with every activity row of account (of every account when account
// is ""), ordered by account, then time (oldest first). Rows with Posts are the entries.
func (s *Store) EachActivity(ctx context.Context, account string, fn func(*Activity) error) error {
	prefix := []byte{prefixActivity, '/'}
	if account != "" {
		prefix = activityPrefix(nil, account)
	}
	return s.each(ctx, prefix, func(k, v []byte) error {
		a, err := decodeActivityAt(k, v)
		if err != nil {
			return err
		}
		return fn(&a)
	})
}

// EachEntry calls fn with every entry (posted movement) of account (of every account when
// account is ""), ordered by account, then time (oldest first).
func (s *Store) EachEntry(ctx context.Context, account string, fn func(journal.Entry) error) error {
	return s.EachActivity(ctx, account, func(a *Activity) error {
		if !a.Posts {
			return nil
		}
		return fn(a.Entry)
	})
}

// EachAsset calls fn with every asset an asset_create change added (s/), ordered by code;
// the preloaded assets are not stored.
func (s *Store) EachAsset(ctx context.Context, fn func(ledger.Asset) error) error {
	assets, err := s.loadAssets(ctx)
	if err != nil {
		return fmt.Errorf("pebblestore: assets: %w", err)
	}
	for _, a := range assets {
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}
