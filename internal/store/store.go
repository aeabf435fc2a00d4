// Package store holds what every storage backend shares with the engine that owns it: the
// errors its reads return. Backends live in subpackages named for their dependency
// (pebblestore, pgstore); the interface they satisfy is engine.Store.
package store

import (
	"context"
	"errors"
)

// ErrNotFound is returned by Store reads for an id, key or record that does not exist.
var ErrNotFound = errors.New("not found")

// ErrBadCursor is returned by Store pages for a cursor the store did not make.
var ErrBadCursor = errors.New("bad cursor")

// ErrFenced is returned (wrapped) by a Commit refused because another instance has taken
// the leader lease since this one took it: the commit wrote nothing, and this instance must
// stop writing.
var ErrFenced = errors.New("fenced: another instance holds the leader lease")

// ErrUnavailable is returned (wrapped) by a read or commit that failed because the store
// could not be reached (a database down, restarting or out of connections): a retry may
// succeed. The API answers 503 unavailable.
var ErrUnavailable = errors.New("store unavailable")

// MetaOp is one write of a Meta batch: Value nil deletes the key.
type MetaOp struct {
	NS, Key string
	Value   []byte
}

// MetaKV is one key and value Meta.ScanMeta returns.
type MetaKV struct {
	Key   string
	Value []byte
}

// Meta is a small durable key-value space beside the ledger, in namespaces, for the state
// of what follows the journal (cursors, webhook endpoints, delivery logs). It is not part
// of the ledger: its writes do not go through the engine and are not in the journal, and a
// standby may read it. Reads see every acknowledged write at once. Namespaces and keys are
// valid UTF-8 without NUL; keys order bytewise.
type Meta interface {
	// GetMeta returns the value of (ns, key), or ErrNotFound.
	GetMeta(ctx context.Context, ns, key string) ([]byte, error)
	// WriteMeta applies ops atomically and durably.
	WriteMeta(ctx context.Context, ops ...MetaOp) error
	// ScanMeta returns up to limit keys of ns with the given prefix, in order from the
	// first key ≥ from (or, when reverse, backwards from the last key < from; from ""
	// then means the end).
	ScanMeta(ctx context.Context, ns, prefix, from string, reverse bool, limit int) ([]MetaKV, error)
}
