package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/store"
)

// Idempotency returns the stored answer for (scope, key), or store.ErrNotFound when there is
// none or it expired before now (Unix ns): an answer is good up to and including ExpiresAt.
func (s *Store) Idempotency(_ context.Context, scope, key string, now int64) (*journal.Idempotency, error) {
	v, err := s.get(pairKey(nil, prefixIdem, scope, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("pebblestore: idempotency key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pebblestore: idempotency key: %w", err)
	}
	ans, err := decodeIdempotency(v)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: idempotency key: %w", err)
	}
	if ans.ExpiresAt < now {
		return nil, fmt.Errorf("pebblestore: idempotency key: expired: %w", store.ErrNotFound)
	}
	ans.Scope, ans.Key = scope, key
	return &ans, nil
}

// sweepChunk bounds the answers one step of DeleteExpiredIdempotency examines while it holds
// the writer lock, so that a sweep delays a Commit by little.
const sweepChunk = 4096

// DeleteExpiredIdempotency removes the answers that expired before now, returning how many.
// It scans every answer (an expiry index would cost a key per request on the commit path),
// a chunk at a time. Each chunk holds the writer lock from reading to deleting, so that an
// answer a Commit stores again meanwhile is never deleted.
func (s *Store) DeleteExpiredIdempotency(ctx context.Context, now int64) (int, error) {
	prefix := []byte{prefixIdem, '/'}
	from := prefix
	deleted := 0
	for from != nil {
		n, next, err := s.sweep(ctx, prefix, from, now)
		deleted += n
		if err != nil {
			return deleted, fmt.Errorf("pebblestore: delete expired idempotency keys: %w", err)
		}
		from = next
	}
	return deleted, nil
}

// sweep deletes the expired answers among up to sweepChunk from from on, returning where
// to go on (nil at the end).
func (s *Store) sweep(ctx context.Context, prefix, from []byte, now int64) (int, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	seen := 0
	var next []byte
	err := s.scan(ctx, prefix, from, false, func(k, v []byte) error {
		if seen == sweepChunk {
			next = bytes.Clone(k)
			return errStop
		}
		seen++
		at, err := expiresAt(v)
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		if at < now {
			return b.Delete(k, nil)
		}
		return nil
	})
	if err == nil && !b.Empty() {
		if err = b.Commit(s.wo); err == nil {
			s.publishView()
		}
	}
	if err != nil {
		return 0, nil, err
	}
	return int(b.Count()), next, nil
}

// APIKeys returns every stored API key, revoked ones included, ordered by id.
func (s *Store) APIKeys(ctx context.Context) ([]journal.APIKey, error) {
	var keys []journal.APIKey
	err := s.each(ctx, []byte{prefixAPIKey, '/'}, func(k, v []byte) error {
		key, err := decodeAPIKey(string(k[2:]), v)
		keys = append(keys, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: api keys: %w", err)
	}
	return keys, nil
}

// APIKeyByHash returns the key whose secret hashes to h, revoked or not (callers check
// Revoked), or store.ErrNotFound.
func (s *Store) APIKeyByHash(_ context.Context, h journal.Hash) (*journal.APIKey, error) {
	id, err := s.get(append([]byte{prefixKeyHash, '/'}, h[:]...))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("pebblestore: api key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pebblestore: api key: %w", err)
	}
	v, err := s.get(idKey(nil, prefixAPIKey, string(id)))
	if err != nil { // h/ is written with k/, so k/ is there
		return nil, fmt.Errorf("pebblestore: api key %q: %w", id, err)
	}
	k, err := decodeAPIKey(string(id), v)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: %w", err)
	}
	return &k, nil
}
