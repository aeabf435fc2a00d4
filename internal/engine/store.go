package engine

import (
	"context"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
)

// ErrNotFound is returned by Store reads for an id, key or record that does not exist.
var ErrNotFound = store.ErrNotFound

// ErrBadCursor is returned by Store pages for a cursor the store did not make.
var ErrBadCursor = store.ErrBadCursor

// ErrUnavailable is returned (wrapped) by Store reads and commits when the store cannot be
// reached; a retry may succeed.
var ErrUnavailable = store.ErrUnavailable

// Store is what the engine needs from durable storage, and what the service reads. The
// engine is its only writer. If Commit fails, the engine stops taking writes: only a
// restart, which reloads from the store, can tell whether the batch is durable.
//
// Every read sees only committed data, and never waits for the engine.
type Store interface {
	// Load returns the state to resume from: assets, accounts with their balances, pending
	// holds and the time of the latest change, plus the head of the journal. It refuses
	// (journal.CorruptionError or a wrapped journal.ErrFormat) a store whose newest
	// record does not check out or whose format this build does not read.
	Load(ctx context.Context) (*ledger.State, journal.Head, error)

	// Commit writes c atomically with one sync: the record (when not nil) with its
	// derived indexes (transfers by id, per-account entries and activity, pending holds),
	// the idempotency answers and API keys. c.Accounts are the accounts as after the
	// batch: a store may keep them in memory and persist them in checkpoints, as long as
	// Load restores them exactly (replaying the journal after the checkpoint). c.Record.Seq is head+1 and
	// c.Record.PrevHash the head's hash; the store checks this and refuses otherwise.
	// With invariants enabled it also recomputes c.Record.Hash and refuses a mismatch.
	Commit(ctx context.Context, c *journal.Commit) error

	// Transfer returns the transfer as of its latest change, or ErrNotFound.
	Transfer(ctx context.Context, id string) (*ledger.Transfer, error)

	// Transfers returns a page of transfers newest first (by creation): those touching
	// account, or all when account is "". next is "" on the last page.
	Transfers(ctx context.Context, account, cursor string, limit int) (page []*ledger.Transfer, next string, err error)

	// Account returns the account as of the latest commit, or ErrNotFound.
	Account(ctx context.Context, id string) (*ledger.Account, error)

	// Accounts returns a page of accounts of owner (all when owner is ""), ordered by id.
	Accounts(ctx context.Context, owner, cursor string, limit int) (page []*ledger.Account, next string, err error)

	// Entries returns a page of account's entries (posted movements), newest first.
	Entries(ctx context.Context, account, cursor string, limit int) (page []journal.Entry, next string, err error)

	// BalanceAt returns the account's posted balance just after its last entry at or before
	// at (Unix ns): zero if it had none by then.
	BalanceAt(ctx context.Context, account string, at int64) (ledger.Balance, error)

	// Journal returns up to limit records with Seq > after, in order.
	Journal(ctx context.Context, after uint64, limit int) ([]*journal.Record, error)

	// Head returns the latest committed record's seq and hash.
	Head(ctx context.Context) (journal.Head, error)

	// Idempotency returns the stored answer for (scope, key), or ErrNotFound when there is
	// none or it expired before now (Unix ns).
	Idempotency(ctx context.Context, scope, key string, now int64) (*journal.Idempotency, error)

	// DeleteExpiredIdempotency removes answers that expired before now, returning how many.
	DeleteExpiredIdempotency(ctx context.Context, now int64) (int, error)

	// APIKeys returns every stored API key, revoked ones included, ordered by id.
	APIKeys(ctx context.Context) ([]journal.APIKey, error)

	// APIKeyByHash returns the key whose secret hashes to h, or ErrNotFound.
	APIKeyByHash(ctx context.Context, h journal.Hash) (*journal.APIKey, error)

	Close() error
}

// LargeBatcher is optionally implemented by a Store whose commit costs mostly per commit,
// not per change: a network round trip, per-statement work and a remote WAL flush
// (pgstore). When LargeBatches reports true, the engine applies a batch only once the
// commit before it is done, so that every request that queued during a commit joins the
// next batch; otherwise it applies the next batch while the current one commits, which
// suits a store whose commit is a short local sync (pebblestore).
type LargeBatcher interface {
	LargeBatches() bool
}
