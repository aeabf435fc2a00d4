package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The leader lease (table leader, migrations/0002_leader.sql) decides which of the
// instances sharing a database writes. A Store commits only while the lease row's epoch is
// the one it acquired: Commit checks it inside its transaction, holding the row FOR SHARE,
// and a takeover (which increments the epoch with an UPDATE) waits for commits in flight
// and makes every later one fail with store.ErrFenced. Expiry times are the database's
// clock, so instances need not agree on the time.

// ErrLeaseLost is returned by Renew when another instance has taken the lease.
var ErrLeaseLost = errors.New("pgstore: the leader lease was taken by another instance")

// Lease is the state of the leader lease row.
type Lease struct {
	Epoch   int64  // fencing token; 0 before anyone took the lease
	Holder  string // instance id of the holder
	Address string // where clients reach the holder; "" when it did not say
	// Live reports whether the lease had not lapsed when read (database clock).
	Live bool
	// Remaining is how long the lease had still to run when read (0 once lapsed).
	Remaining time.Duration
}

// Epoch returns the lease epoch this Store acquired (0: none). Commit refuses unless the
// lease row still holds it.
func (s *Store) Epoch() int64 { return s.epoch.Load() }

func micros(d time.Duration) int64 { return d.Microseconds() }

// Acquire takes the leader lease for holder (an id unique to this instance) for ttl, if it
// has lapsed or holder already held it, incrementing the epoch; address is published for
// standbys to name in their answers. It returns the lease as it is after the attempt and
// whether this Store now holds it. On success Commit accepts this Store's batches until the
// lease is taken over.
func (s *Store) Acquire(ctx context.Context, holder, address string, ttl time.Duration) (Lease, bool, error) {
	if holder == "" {
		return Lease{}, false, errors.New("pgstore: acquire: empty holder id")
	}
	var epoch int64
	err := s.pool.QueryRow(ctx, `UPDATE leader SET epoch = epoch + 1, holder = $1, address = $2,
			acquired_at = now(), expires_at = now() + $3 * interval '1 microsecond'
		WHERE expires_at < now() OR holder = $1
		RETURNING epoch`, holder, address, micros(ttl)).Scan(&epoch)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		l, err := s.Leader(ctx)
		return l, false, err
	case err != nil:
		return Lease{}, false, fmt.Errorf("pgstore: acquire lease: %w", err)
	}
	s.epoch.Store(epoch)
	return Lease{Epoch: epoch, Holder: holder, Address: address, Live: true, Remaining: ttl}, true, nil
}

// Renew extends the lease this Store holds to ttl from now (database clock). It returns
// ErrLeaseLost if another instance has taken it: this Store's commits are refused from then
// on.
func (s *Store) Renew(ctx context.Context, ttl time.Duration) error {
	epoch := s.epoch.Load()
	if epoch == 0 {
		return ErrLeaseLost
	}
	tag, err := s.pool.Exec(ctx, `UPDATE leader SET expires_at = now() + $2 * interval '1 microsecond'
		WHERE epoch = $1`, epoch, micros(ttl))
	if err != nil {
		return fmt.Errorf("pgstore: renew lease: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return ErrLeaseLost
	}
	return nil
}

// Release ends the lease this Store holds now, so that a standby takes over without
// waiting for it to lapse. Call it after the engine has stopped committing. A lease taken
// over meanwhile is left alone.
func (s *Store) Release(ctx context.Context) error {
	epoch := s.epoch.Load()
	if epoch == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE leader SET expires_at = '-infinity' WHERE epoch = $1`, epoch)
	if err != nil {
		return fmt.Errorf("pgstore: release lease: %w", err)
	}
	return nil
}

// Leader reads the lease row.
func (s *Store) Leader(ctx context.Context) (Lease, error) {
	var l Lease
	var remaining int64
	err := s.pool.QueryRow(ctx, `SELECT epoch, holder, address, expires_at > now(),
			CASE WHEN expires_at > now()
				THEN (extract(epoch FROM expires_at - now()) * 1000000)::bigint ELSE 0 END
		FROM leader`).Scan(&l.Epoch, &l.Holder, &l.Address, &l.Live, &remaining)
	if err != nil {
		return Lease{}, fmt.Errorf("pgstore: read lease: %w", err)
	}
	l.Remaining = time.Duration(remaining) * time.Microsecond
	return l, nil
}
