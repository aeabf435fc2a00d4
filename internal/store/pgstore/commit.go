package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tpwallet/tpwallet/internal/invariants"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
)

// Commit writes c in one transaction (see the package doc): the record and every row it
// derives, the accounts as after the batch, the idempotency answers and the API keys. It
// refuses, writing nothing, a record whose seq is not head+1 or whose prev_hash is not the
// head's hash, and (with invariants enabled) one whose hash is not journal.RecordHash of it.
// A Commit with a nil Record writes only side data and accounts.
func (s *Store) Commit(ctx context.Context, c *journal.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var seq uint64
	if r := c.Record; r != nil {
		seq = r.Seq
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.CommitTimeout)
	defer cancel()
	if err := s.commit(ctx, c); err != nil {
		return fmt.Errorf("pgstore: commit %d: %w", seq, unavailable(err))
	}
	return nil
}

func (s *Store) commit(ctx context.Context, c *journal.Commit) error {
	if !s.loaded {
		return errNotLoaded
	}
	r := c.Record
	if r != nil && invariants.Enabled {
		if h := journal.RecordHash(r); h != r.Hash {
			return fmt.Errorf("hash %s is not the record's hash %s", r.Hash, h)
		}
	}
	// The transaction is one round trip: every statement in one pgx batch, which pgx sends
	// as one pipeline ending in a single Sync. Without BEGIN, PostgreSQL runs the statements
	// up to a Sync as one implicit transaction: if one fails, it rolls all of them back;
	// otherwise it commits at the Sync and, synchronous_commit being on, sends the
	// ReadyForQuery that Close waits for only once the commit is flushed to the WAL. So a
	// check must fail inside the database, not in Go after reading a result: the head's
	// check is the first statement (queueAdvance), after the fencing check (sqlFence).
	b := &pgx.Batch{}
	b.Queue(sqlFence, s.epoch.Load())
	if r != nil {
		queueAdvance(b, r)
	}
	if err := queueWrites(b, c); err != nil {
		return err
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		switch {
		case isFenced(err):
			return s.fenced(ctx)
		case r != nil && isAdvanceRefused(err):
			return s.headMoved(ctx, r)
		}
		return err
	}
	return nil
}

// sqlFence is the fencing check (migrations/0003_fence.sql): it holds the lease row FOR
// SHARE to the end of the transaction, so a takeover (an UPDATE of the row) waits for this
// commit, and it fails with SQLSTATE TW001 — rolling everything back — if a takeover came
// first. A Store that never acquired the lease checks epoch 0: a database whose lease was
// never taken (tests, tools).
const sqlFence = `SELECT tpwallet_fence($1)`

// isFenced reports whether err is sqlFence's refusal.
func isFenced(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "TW001"
}

// fenced explains a refused fencing check with the lease's epoch now.
func (s *Store) fenced(ctx context.Context) error {
	var epoch int64
	if err := s.pool.QueryRow(ctx, `SELECT epoch FROM leader`).Scan(&epoch); err != nil {
		return fmt.Errorf("%w (this instance's epoch %d)", store.ErrFenced, s.epoch.Load())
	}
	return fencedError(epoch, s.epoch.Load())
}

// errHeadMoved is the head check's failure, explained by headMoved.
var errHeadMoved = errors.New("head is not the record's predecessor")

// sqlAdvance moves the head to the record and inserts the record's journal row, in one
// statement so that it is also the check that the record follows the head. The update
// matches the head row only if the record's seq is head+1 and its prev_hash is the head's
// hash, and locks it until the transaction ends. When it matches nothing, the journal row
// gets a NULL seq, which its NOT NULL constraint refuses (isAdvanceRefused): the error
// rolls back the whole transaction, whatever follows in the pipeline.
//
// Under READ COMMITTED the update compares with the committed head: if another writer has
// moved the head and not yet committed, a record that follows that writer's is refused,
// never accepted against a stale head. Only one writer (the engine) is expected; a store
// that ran two transactions of its own concurrently would have to lock the head first
// (SELECT ... FOR UPDATE) and compare after.
//
// The leader's fencing epoch is checked by the statement before (sqlFence).
const sqlAdvance = `WITH advanced AS (
		UPDATE head SET seq = $1, hash = $2, timestamp = $3, last_time = $4
		WHERE seq = $1 - 1 AND hash = $5
		RETURNING seq)
	INSERT INTO journal (seq, prev_hash, hash, timestamp, changes, record)
	VALUES ((SELECT seq FROM advanced), $5, $2, $3, $6, $7)`

// queueAdvance queues sqlAdvance for r.
func queueAdvance(b *pgx.Batch, r *journal.Record) {
	last := r.Timestamp
	if n := len(r.Changes); n > 0 {
		last = r.Changes[n-1].Time
	}
	b.Queue(sqlAdvance, int64(r.Seq), r.Hash[:], r.Timestamp, last, r.PrevHash[:], len(r.Changes),
		journal.AppendRecord(nil, r))
}

// isAdvanceRefused reports whether err is sqlAdvance's refusal: a NULL journal seq.
func isAdvanceRefused(err error) bool {
	var pe *pgconn.PgError
	const notNullViolation = "23502"
	return errors.As(err, &pe) && pe.Code == notNullViolation && pe.TableName == "journal" &&
		pe.ColumnName == "seq"
}

// headMoved says why r does not follow the head, reading the head after the rollback.
func (s *Store) headMoved(ctx context.Context, r *journal.Record) error {
	var headSeq int64
	var headHash []byte
	if err := s.pool.QueryRow(ctx, `SELECT seq, hash FROM head`).Scan(&headSeq, &headHash); err != nil {
		return fmt.Errorf("%w; read head: %w", errHeadMoved, err)
	}
	switch {
	case r.Seq != uint64(headSeq)+1:
		return fmt.Errorf("seq does not follow the head %d", headSeq)
	case !bytes.Equal(r.PrevHash[:], headHash):
		return fmt.Errorf("prev_hash %s is not the head's hash %x", r.PrevHash, headHash)
	}
	return fmt.Errorf("%w (the head is now %d)", errHeadMoved, headSeq)
}

func fencedError(theirs, ours int64) error {
	return fmt.Errorf("%w (lease epoch %d, this instance's %d)", store.ErrFenced, theirs, ours)
}

// Set-based statements: each takes parallel arrays, one element per row.
const (
	sqlAssets = `INSERT INTO assets (code, scale)
		SELECT * FROM unnest($1::text[], $2::int2[]) ON CONFLICT (code) DO UPDATE SET scale = excluded.scale`
	sqlAccounts = `INSERT INTO accounts (id, owner, asset, kind, allow_negative, status, metadata, created_at,
			debits_posted, credits_posted, debits_pending, credits_pending, record)
		SELECT id, owner, asset, kind, allow_negative, status, metadata::json, created_at,
			dp::numeric, cp::numeric, dpe::numeric, cpe::numeric, record
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[],
			$8::int8[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[])
			AS u(id, owner, asset, kind, allow_negative, status, metadata, created_at, dp, cp, dpe, cpe, record)
		ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, asset = excluded.asset, kind = excluded.kind,
			allow_negative = excluded.allow_negative, status = excluded.status, metadata = excluded.metadata,
			created_at = excluded.created_at, debits_posted = excluded.debits_posted,
			credits_posted = excluded.credits_posted, debits_pending = excluded.debits_pending,
			credits_pending = excluded.credits_pending, record = excluded.record`
	sqlTransfers = `INSERT INTO transfers (id, source, destination, amount, asset, kind, status, reference,
			metadata, created_at, posted_at, amount_posted, expires_at, hold, hold_timeout,
			created_seq, created_index, record)
		SELECT id, source, destination, amount::numeric, asset, kind, status, reference, metadata::json,
			created_at, posted_at, amount_posted::numeric, expires_at, hold, hold_timeout,
			created_seq, created_index, record
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::int8[], $11::int8[], $12::text[], $13::int8[], $14::bool[],
			$15::int8[], $16::int8[], $17::int4[], $18::bytea[])
			AS u(id, source, destination, amount, asset, kind, status, reference, metadata, created_at,
				posted_at, amount_posted, expires_at, hold, hold_timeout, created_seq, created_index, record)
		ON CONFLICT (id) DO UPDATE SET amount = excluded.amount, status = excluded.status,
			metadata = excluded.metadata, posted_at = excluded.posted_at,
			amount_posted = excluded.amount_posted, expires_at = excluded.expires_at, record = excluded.record`
	sqlActivity = `INSERT INTO activity (account, time, transfer_id, op, posts, direction, amount, kind, posted_after)
		SELECT account, time, transfer_id, op, posts, direction, amount::numeric, kind, posted_after::numeric
		FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[],
			$8::text[], $9::text[])
			AS u(account, time, transfer_id, op, posts, direction, amount, kind, posted_after)`
	sqlPendingAdd  = `INSERT INTO pending (id) SELECT unnest($1::text[]) ON CONFLICT (id) DO NOTHING`
	sqlPendingDel  = `DELETE FROM pending WHERE id = ANY($1::text[])`
	sqlIdempotency = `INSERT INTO idempotency (scope, key, request_hash, status, body, expires_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int4[], $5::bytea[], $6::int8[])
		ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash,
			status = excluded.status, body = excluded.body, expires_at = excluded.expires_at`
	sqlAPIKeys = `INSERT INTO api_keys (id, name, scopes, hash, created_at, revoked)
		SELECT id, name, array(SELECT json_array_elements_text(scopes::json)), hash, created_at, revoked
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::int8[], $6::bool[])
			AS u(id, name, scopes, hash, created_at, revoked)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, scopes = excluded.scopes,
			hash = excluded.hash, created_at = excluded.created_at, revoked = excluded.revoked`
)

// queueWrites queues the writes of c, deduplicating rows that change twice in one batch
// (a transfer posted in the batch that created it, an account changed twice): the last wins.
func queueWrites(b *pgx.Batch, c *journal.Commit) error {
	if r := c.Record; r != nil {
		if err := changeRows(b, r); err != nil {
			return err
		}
	}
	if err := accountRows(b, c.Accounts); err != nil {
		return err
	}
	if len(c.Idempotency) > 0 {
		type k struct{ scope, key string }
		at := map[k]int{}
		var scope, key []string
		var hash, body [][]byte
		var status []int32
		var exp []int64
		for i := range c.Idempotency {
			v := &c.Idempotency[i]
			if j, ok := at[k{v.Scope, v.Key}]; ok {
				hash[j], status[j], body[j], exp[j] = v.RequestHash[:], int32(v.Status), v.Body, v.ExpiresAt
				continue
			}
			at[k{v.Scope, v.Key}] = len(scope)
			scope, key = append(scope, v.Scope), append(key, v.Key)
			hash, body = append(hash, v.RequestHash[:]), append(body, v.Body)
			status, exp = append(status, int32(v.Status)), append(exp, v.ExpiresAt)
		}
		b.Queue(sqlIdempotency, scope, key, hash, status, body, exp)
	}
	if len(c.APIKeys) > 0 {
		at := map[string]int{}
		var id, name, scopes []string
		var hash [][]byte
		var created []int64
		var revoked []bool
		for i := range c.APIKeys {
			k := &c.APIKeys[i]
			sc, err := json.Marshal(k.Scopes)
			if err != nil {
				return err
			}
			if k.Scopes == nil {
				sc = []byte("[]")
			}
			if j, ok := at[k.ID]; ok {
				name[j], scopes[j], hash[j], created[j], revoked[j] = k.Name, string(sc), k.Hash[:], k.CreatedAt, k.Revoked
				continue
			}
			if k.ID == "" {
				return errors.New("api key without an id")
			}
			at[k.ID] = len(id)
			id, name, scopes = append(id, k.ID), append(name, k.Name), append(scopes, string(sc))
			hash, created, revoked = append(hash, k.Hash[:]), append(created, k.CreatedAt), append(revoked, k.Revoked)
		}
		b.Queue(sqlAPIKeys, id, name, scopes, hash, created, revoked)
	}
	return nil
}

func metadataJSON(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	j, err := json.Marshal(m)
	return string(j), err
}

func accountRows(b *pgx.Batch, accounts []*ledger.Account) error {
	if len(accounts) == 0 {
		return nil
	}
	at := map[string]int{}
	var rows []*ledger.Account
	for _, a := range accounts {
		if j, ok := at[a.ID]; ok {
			rows[j] = a
			continue
		}
		at[a.ID] = len(rows)
		rows = append(rows, a)
	}
	n := len(rows)
	id, owner, asset, kind, status, meta := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	dp, cp, dpe, cpe := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	allowNeg, created, rec := make([]bool, n), make([]int64, n), make([][]byte, n)
	for i, a := range rows {
		m, err := metadataJSON(a.Metadata)
		if err != nil {
			return err
		}
		id[i], owner[i], asset[i], kind[i], status[i], meta[i] = a.ID, a.Owner, a.Asset, string(a.Kind),
			string(a.Status), m
		dp[i], cp[i], dpe[i], cpe[i] = a.DebitsPosted.String(), a.CreditsPosted.String(),
			a.DebitsPending.String(), a.CreditsPending.String()
		allowNeg[i], created[i], rec[i] = a.AllowNegative, a.CreatedAt, journal.AppendAccount(nil, a)
	}
	b.Queue(sqlAccounts, id, owner, asset, kind, allowNeg, status, meta, created, dp, cp, dpe, cpe, rec)
	return nil
}

// transferRow is one transfer as after its last change in the batch.
type transferRow struct {
	t     *ledger.Transfer
	seq   int64
	index int32
}

func changeRows(b *pgx.Batch, r *journal.Record) error {
	var codes []string
	var scales []int16
	at := map[string]int{}
	var ts []transferRow
	// activity
	var aAcct, aTID, aOp, aDir, aAmt, aKind, aAfter []string
	var aTime []int64
	var aPosts []bool
	for i := range r.Changes {
		c := &r.Changes[i]
		switch c.Op {
		case ledger.ChangeAssetCreate:
			codes, scales = append(codes, c.Asset.Code), append(scales, int16(c.Asset.Scale))
		case ledger.ChangeCreate, ledger.ChangePost, ledger.ChangeIncrease, ledger.ChangeVoid, ledger.ChangeExpire:
			t := c.Transfer
			if j, ok := at[t.ID]; ok {
				ts[j].t = t
			} else {
				at[t.ID] = len(ts)
				row := transferRow{t: t}
				if c.Op == ledger.ChangeCreate {
					row.seq, row.index = int64(r.Seq), int32(i)
				}
				ts = append(ts, row)
			}
			posts, op, amt := c.Posts(), c.Op.String(), c.Amount.String()
			aAcct = append(aAcct, t.Source, t.Destination)
			aTime = append(aTime, c.Time, c.Time)
			aTID = append(aTID, t.ID, t.ID)
			aOp = append(aOp, op, op)
			aPosts = append(aPosts, posts, posts)
			aDir = append(aDir, journal.Debit.String(), journal.Credit.String())
			aAmt = append(aAmt, amt, amt)
			aKind = append(aKind, string(t.Kind), string(t.Kind))
			aAfter = append(aAfter, c.SourceAfter.String(), c.DestinationAfter.String())
		}
	}
	if len(codes) > 0 {
		b.Queue(sqlAssets, codes, scales)
	}
	if len(ts) > 0 {
		n := len(ts)
		id, src, dst, amount, asset, kind, status, ref, meta, posted := make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n)
		created, postedAt, expires, timeout, cseq := make([]int64, n), make([]int64, n), make([]int64, n),
			make([]int64, n), make([]int64, n)
		cidx, hold, rec := make([]int32, n), make([]bool, n), make([][]byte, n)
		var pendAdd, pendDel []string
		for i, row := range ts {
			t := row.t
			m, err := metadataJSON(t.Metadata)
			if err != nil {
				return err
			}
			id[i], src[i], dst[i], amount[i], asset[i], kind[i], status[i], ref[i], meta[i], posted[i] =
				t.ID, t.Source, t.Destination, t.Amount.String(), t.Asset, string(t.Kind), string(t.Status),
				t.Reference, m, t.AmountPosted.String()
			created[i], postedAt[i], expires[i], timeout[i], cseq[i], cidx[i] = t.CreatedAt, t.PostedAt,
				t.ExpiresAt, int64(t.HoldTimeout), row.seq, row.index
			hold[i], rec[i] = t.Hold, journal.AppendTransfer(nil, t)
			if t.Hold {
				if t.Status == ledger.TransferPending {
					pendAdd = append(pendAdd, t.ID)
				} else {
					pendDel = append(pendDel, t.ID)
				}
			}
		}
		b.Queue(sqlTransfers, id, src, dst, amount, asset, kind, status, ref, meta, created, postedAt,
			posted, expires, hold, timeout, cseq, cidx, rec)
		if len(pendAdd) > 0 {
			b.Queue(sqlPendingAdd, pendAdd)
		}
		if len(pendDel) > 0 {
			b.Queue(sqlPendingDel, pendDel)
		}
	}
	if len(aAcct) > 0 {
		b.Queue(sqlActivity, aAcct, aTime, aTID, aOp, aPosts, aDir, aAmt, aKind, aAfter)
	}
	return nil
}
