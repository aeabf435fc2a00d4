// Package pgstore is the PostgreSQL engine.Store: one database (per shard), one database
// transaction per Commit, committed with synchronous_commit on.
//
// # Schema
//
// The schema is plain tables an analyst can query (migrations/0001_init.sql documents every
// column): head (one row: the newest record), journal, assets, accounts, transfers,
// activity (and the view entries), pending, idempotency and api_keys. Amounts are
// NUMERIC(39,0), signed balances NUMERIC(40,0), times Unix ns (bigint), ids text COLLATE "C".
// accounts, transfers and journal also keep the exact binary encoding (column record) that
// the store reads back, written in the same statement as the plain columns.
//
// Open applies the embedded migrations (migrations/NNNN_*.sql) in order, recording each in
// schema_version, and refuses a database whose schema is newer than this build knows.
//
// # Commit
//
// Commit is one transaction in one round trip: one pgx batch (a pipeline with a single
// Sync) and no BEGIN, so that PostgreSQL runs it as one implicit transaction, committed at
// the Sync (the answer comes after the WAL flush) or, if any statement fails, rolled back
// whole. The first statement is the fencing check (see below); the second advances the head (UPDATE head ... WHERE seq = the record's
// seq - 1 AND hash = its prev_hash, which locks the row) and inserts the record's journal
// row with the seq the update returned: if the record does not follow the head, that seq
// is NULL and the NOT NULL constraint fails the transaction. Every other write follows as
// set-based statements (INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT), a fixed
// number of statements whatever the size of the batch. Accounts are upserted as they are
// after the batch, in the same transaction: there are no checkpoints and Load replays
// nothing.
//
// A commit costs mostly per commit (round trips, per-statement work, the WAL flush), so the
// store asks the engine for large batches (LargeBatches).
//
// # Load
//
// Load checks the head: the journal row it names must decode, say its seq, hash to its hash
// (journal.RecordHash) and link to the record before it; otherwise it returns a
// *journal.CorruptionError. It then reads assets, accounts, and the pending holds.
//
// # Leader lease and fencing
//
// Several instances may share one database; the leader lease (table leader, lease.go)
// decides which one writes. Acquire increments the lease's epoch and the Store remembers
// it; every Commit starts with SELECT tpwallet_fence(epoch) (migrations/0003_fence.sql),
// which reads the lease row FOR SHARE and fails the whole transaction, writing nothing
// (store.ErrFenced), unless the epoch is still its own. A
// takeover's UPDATE of the row waits for commits in flight, so an old leader's commits are
// all ordered before it, and none after. A Store that never acquired the lease has epoch 0
// and may commit only to a database whose lease was never taken (tests, tools). Sessions
// set idle_in_transaction_session_timeout so that a transaction abandoned by a paused
// instance cannot hold up a takeover. docs/postgres.md explains it for operators.
//
// Reads return the sentinel errors of package store (store.ErrNotFound, store.ErrBadCursor).
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure a Store. The zero value is usable.
type Options struct {
	// Logger receives the store's lifecycle messages (default: discard).
	Logger *slog.Logger
	// MaxConns bounds the connection pool (default: pgxpool's default).
	MaxConns int32
	// IdleInTransaction is the database's idle_in_transaction_session_timeout for this
	// store's sessions (default 5s): a transaction left open by a paused or partitioned
	// instance is rolled back after it, releasing the locks that a takeover waits for.
	// Every transaction of the store sends its statements back to back, so a healthy one
	// is never idle that long.
	IdleInTransaction time.Duration
	// CommitTimeout bounds one Commit (default 30s); a commit that times out fails, and
	// the engine stops as after any failed commit.
	CommitTimeout time.Duration
}

func (o *Options) ensureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.IdleInTransaction <= 0 {
		o.IdleInTransaction = 5 * time.Second
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 30 * time.Second
	}
}

// Store is an engine.Store on PostgreSQL. Reads are safe for concurrent use with each other
// and with Commit; Commit has one caller at a time (the engine's writer).
type Store struct {
	pool *pgxpool.Pool
	opts Options

	mu     sync.Mutex // serialises Commit and Load
	loaded bool
	epoch  atomic.Int64 // the leader lease epoch this Store acquired (0: none)

	closeOnce sync.Once
}

// SchemaVersionError is returned by Open for a database whose schema is newer than this
// build's.
type SchemaVersionError struct {
	Database, Build int
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("pgstore: database schema version %d is newer than this build's %d: upgrade tpwallet",
		e.Database, e.Build)
}

// Open connects to the database dsn names and applies the schema migrations it lacks.
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	o.ensureDefaults()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: dsn: %w", err)
	}
	// Every commit waits for the WAL to be flushed: a Commit that returned is durable.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] =
		strconv.FormatInt(max(o.IdleInTransaction.Milliseconds(), 1), 10)
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	s := &Store{pool: pool, opts: o}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		n, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pgstore: migration %s: name is not NNNN_name.sql", e.Name())
		}
		b, err := migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("pgstore: migration %s: versions must be 1, 2, ... without gaps", m.name)
		}
	}
	return ms, nil
}

// migrationLock is the advisory lock key that serialises migrations of one database.
const migrationLock = 0x7470_7761_6c6c_6574 // "tpwallet"

// migrate applies the migrations the database lacks, each in its own transaction, under an
// advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	_, err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version integer PRIMARY KEY,
		name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	var cur int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&cur); err != nil {
		return fmt.Errorf("pgstore: migrate: read schema version: %w", err)
	}
	if cur > len(ms) {
		return &SchemaVersionError{Database: cur, Build: len(ms)}
	}
	for _, m := range ms[cur:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("pgstore: migration %s: %w", m.name, err)
		}
		s.opts.Logger.Info("pgstore migrated", "version", m.version, "name", m.name)
	}
	return nil
}

var errNotLoaded = errors.New("commit before a successful load")

// SchemaVersion returns the version of the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("pgstore: read schema version: %w", err)
	}
	return v, nil
}

// LargeBatches reports true (engine.LargeBatcher): a commit costs mostly per commit — a
// round trip, per-statement work and the WAL flush — so the engine commits a batch before it
// applies the next, and each batch takes everything that queued meanwhile.
func (s *Store) LargeBatches() bool { return true }

// LatestSchema is the schema version this build migrates a database to.
func LatestSchema() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}
