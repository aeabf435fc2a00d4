// Package store holds what every storage backend shares with the engine that owns it: the
// errors its reads return. Backends live in subpackages named for their dependency
// (pebblestore, pgstore); the interface they satisfy is engine.Store.
package store

import "errors"

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
