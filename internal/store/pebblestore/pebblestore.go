package pebblestore

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/tpwallet/tpwallet/internal/journal"
)

// Defaults of Options.
const (
	CacheSizeDefault    = 64 << 20
	MemTableSizeDefault = 64 << 20
)

// Options configure a Store. The zero value is usable and durable.
type Options struct {
	// NoSync commits without waiting for the WAL to reach the disk: a crash may lose the
	// latest commits that were acknowledged (never corrupt older ones). It exists for
	// benchmarks of CPU cost and throwaway tests; never set it in production. The default,
	// false, syncs every Commit once.
	NoSync bool
	// Logger receives Pebble's messages and the store's lifecycle (default: discard).
	Logger *slog.Logger
	// CacheSize is the block cache in bytes (default CacheSizeDefault).
	CacheSize int64
	// MemTableSize is the size of one memtable in bytes (default MemTableSizeDefault). A
	// batch of 8,000 transfers is a few MB, and Pebble flushes any batch larger than half a
	// memtable as a memtable of its own, so the default is well above Pebble's 4 MB.
	MemTableSize uint64
	// FS is the file system the database lives on (default nil: the real disk, vfs.Default).
	// The deterministic simulation (internal/sim) passes an in-memory one that injects faults
	// and simulates crashes.
	FS vfs.FS
	// DisableAutomaticCompactions turns off Pebble's background compactions, whose file
	// operations would interleave with the commits' at random. Only the simulation sets it,
	// so that a seed replays the same file operations; never set it in production: the
	// files of level 0 would pile up and reads slow down without bound.
	DisableAutomaticCompactions bool
}

// EnsureDefaults fills in zero fields.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheSize <= 0 {
		o.CacheSize = CacheSizeDefault
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = MemTableSizeDefault
	}
}

// Store is an engine.Store on Pebble. Reads are safe for concurrent use with each other and
// with Commit, and never wait for it. Commit has one caller at a time (the engine's writer);
// a second one waits.
//
// The accounts are held in memory, which Load fills: Account and Accounts answer from there,
// and before Load they find none.
type Store struct {
	db   *pebble.DB
	opts Options
	wo   *pebble.WriteOptions

	head     atomic.Pointer[journal.Head] // the newest committed record (the writer's; readers use view)
	view     atomic.Pointer[view]         // what reads see (view.go); nil once closed
	accounts atomic.Pointer[accountMap]   // the accounts, versioned (view.go); Load replaces the map
	// created lists, sorted, the accounts created since the last checkpoint (so not yet in
	// a/): Accounts merges them into its scan of a/. Replaced, never changed.
	created atomic.Pointer[[]string]

	closeOnce sync.Once
	closeErr  error

	// metaMu keeps Close from closing the database under a Meta call (meta.go): they hold
	// it shared, Close exclusively, and metaClosed tells them the database is gone.
	metaMu     sync.RWMutex
	metaClosed bool

	// mu serialises writers: Commit, DeleteExpiredIdempotency, Load and Close. It guards the
	// fields below.
	mu     sync.Mutex
	gen    uint64 // the generation of the current view: writes published so far
	loaded bool   // Load succeeded: the head is checked and Commit may append to it
	// failed is set once a Commit's batch may have reached Pebble and the Commit did not
	// return nil (an error, or a panic such as Pebble's Fatalf on a failed WAL sync). The
	// memory may then hold accounts of a batch of unknown durability, so Close writes no
	// checkpoint from it; Load replays the journal instead.
	failed   bool
	w        sortedBatch
	rec      []byte
	batch    *pebble.Batch // reused by every Commit
	headTime int64         // the head record's timestamp

	// Checkpoints (accounts.go).
	policy       checkpointPolicy
	ckpt         checkpoint      // the latest checkpoint
	dirty        []*accountEntry // accounts changed since ckpt, each once
	sinceRecords uint64          // records committed since ckpt
	sinceChanges uint64          // changes in them
	ents         []*accountEntry // scratch: the entries of the Commit in progress
	fresh        map[string]*accountEntry
	lastKeys     int // keys the latest Commit wrote (tests and benchmarks)

	afterBatch func() // tests: runs in Commit once the Pebble batch is committed
}

// Open opens (creating if need be) the store in dir. It refuses a directory written with
// another store format (the error wraps journal.ErrFormat) and one holding keys but no
// format (not a tpwallet store). The chain is checked by Load, not here, so that
// `tpwallet verify` can open a damaged store to report on it.
func Open(dir string, o Options) (*Store, error) {
	o.EnsureDefaults()
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref() // the DB holds its own reference
	db, err := pebble.Open(dir, &pebble.Options{
		Cache:                       cache,
		MemTableSize:                o.MemTableSize,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger{o.Logger},
		EventListener:               &pebble.EventListener{DataCorruption: corruptionLogger(o.Logger)},
		FS:                          o.FS, // nil: Pebble's EnsureDefaults picks vfs.Default
		DisableAutomaticCompactions: o.DisableAutomaticCompactions,
	})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	s := &Store{db: db, opts: o, wo: pebble.Sync, policy: defaultCheckpoints,
		fresh: make(map[string]*accountEntry)}
	s.accounts.Store(newAccountMap(0))
	s.created.Store(new([]string))
	if o.NoSync {
		s.wo = pebble.NoSync
	}
	s.head.Store(&journal.Head{})
	s.publishView() // openFormat reads through it
	head, err := s.openFormat()
	if err != nil {
		s.closeView()
		db.Close()
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	s.head.Store(&head)
	s.publishView()
	o.Logger.Info("pebblestore open", "dir", dir, "head_seq", head.Seq, "sync", !o.NoSync)
	return s, nil
}

// openFormat checks m/format, writing it in a fresh directory, and reads m/head as it is
// (Load checks it).
func (s *Store) openFormat() (journal.Head, error) {
	v, err := s.get(keyFormat)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		empty, err := s.isEmpty()
		if err != nil {
			return journal.Head{}, err
		}
		if !empty {
			return journal.Head{}, fmt.Errorf("the directory holds data but no m/format: not a tpwallet store: %w", journal.ErrFormat)
		}
		// m/checkpoint comes with m/format: a store without it predates checkpoints.
		b := s.db.NewBatch()
		defer b.Close()
		err = errors.Join(b.Set(keyFormat, []byte{storeFormat}, nil),
			b.Set(keyCheckpoint, appendCheckpoint(nil, checkpoint{}), nil))
		if err == nil {
			err = b.Commit(pebble.Sync)
		}
		if err != nil {
			return journal.Head{}, fmt.Errorf("write format: %w", err)
		}
		return journal.Head{}, nil
	case err != nil:
		return journal.Head{}, fmt.Errorf("read format: %w", err)
	case len(v) != 1 || v[0] != storeFormat:
		return journal.Head{}, fmt.Errorf("store format %x, this build reads %d: %w", v, storeFormat, journal.ErrFormat)
	}
	v, err = s.get(keyHead)
	if errors.Is(err, pebble.ErrNotFound) {
		return journal.Head{}, nil
	}
	if err != nil {
		return journal.Head{}, fmt.Errorf("read head: %w", err)
	}
	return decodeHead(v)
}

func (s *Store) isEmpty() (bool, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return false, err
	}
	empty := !it.First()
	return empty, errors.Join(it.Error(), it.Close())
}

// get returns a copy of the value of key in the current view, or pebble.ErrNotFound.
func (s *Store) get(key []byte) ([]byte, error) {
	view := s.acquire()
	if view == nil {
		return nil, pebble.ErrClosed
	}
	defer view.release()
	v, closer, err := view.snap.Get(key)
	if err != nil {
		return nil, err
	}
	v = append([]byte(nil), v...)
	return v, closer.Close()
}

// Close writes a last checkpoint (synced) if any account changed since the one before, so
// that the next Load replays nothing, and closes the database; calling it again returns the
// first call's result. Every other call must have returned first. Nothing is lost without
// the checkpoint either (after a crash): every Commit synced its record, and Load replays it.
// After a failed Commit it writes no checkpoint: see Store.failed.
func (s *Store) Close() error { return s.close(true) }

// closeWithoutCheckpoint closes the database as a crash would leave it: without the last
// checkpoint. Tests use it.
func (s *Store) closeWithoutCheckpoint() error { return s.close(false) }

func (s *Store) close(final bool) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		var err error
		if final && s.loaded && !s.failed {
			err = s.finalCheckpoint()
		}
		if s.batch != nil {
			s.batch.Close()
		}
		s.closeView()
		s.metaMu.Lock()
		s.metaClosed = true
		s.metaMu.Unlock()
		err = errors.Join(err, s.db.Close())
		if err != nil {
			s.closeErr = fmt.Errorf("pebblestore: close: %w", err)
		}
	})
	return s.closeErr
}

// finalCheckpoint writes the dirty accounts and m/checkpoint at the head, if they are not
// there already.
func (s *Store) finalCheckpoint() error {
	head := *s.head.Load()
	if len(s.dirty) == 0 && s.ckpt.Seq == head.Seq {
		return nil
	}
	w := &s.w
	w.reset()
	w.checkpoint(s.dirty, checkpoint{Seq: head.Seq, Time: s.headTime})
	b := s.db.NewBatch()
	defer b.Close()
	err := w.addTo(b)
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("checkpoint %d: %w", head.Seq, err)
	}
	s.checkpointed(checkpoint{Seq: head.Seq, Time: s.headTime})
	return nil
}

// corruptionLogger reports on-disk corruption that Pebble's checksums caught. Pebble's
// default would exit the process; instead the read that met it fails with an error
// wrapping pebble.ErrCorruption (so no damaged data is ever used), and this logs which file.
func corruptionLogger(l *slog.Logger) func(pebble.DataCorruptionInfo) {
	return func(info pebble.DataCorruptionInfo) {
		l.Error("pebblestore: on-disk corruption detected by checksum; reads of the damaged range fail: restore the data directory from a backup and run tpwallet verify",
			"file", info.Path, "detail", info.Details)
	}
}

// pebbleLogger sends Pebble's messages to slog. Its Infof are internal detail (Debug);
// Fatalf means Pebble cannot go on, so it logs and panics, as Pebble's own default exits.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble", "detail", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble", "detail", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("pebble fatal", "detail", msg)
	panic("pebblestore: pebble: " + msg)
}
