package pgstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
)

// PageLimitMax bounds every page; callers validate limits and the store clamps defensively.
const PageLimitMax = 1000

func clampLimit(limit int) int { return min(max(limit, 1), PageLimitMax) }

// Cursors are base64url(kind + position). The position names the list it belongs to (the
// account or owner), so that a cursor another list made is store.ErrBadCursor.
const (
	cursorAccounts         = 'a' // + last id
	cursorOwnerAccounts    = 'o' // + uvarint(len(owner)) + owner + last id
	cursorEntries          = 'e' // + time (8) + account
	cursorAccountTransfers = 'c' // + time (8) of the create + account
	cursorTransfers        = 'T' // + created_seq (8) + created_index (4)
)

func makeCursor(kind byte, pos []byte) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{kind}, pos...))
}

var errBadCursor = fmt.Errorf("pgstore: cursor: %w", store.ErrBadCursor)

func parseCursor(cursor string, kind byte) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 2 || b[0] != kind {
		return nil, errBadCursor
	}
	return b[1:], nil
}

// timeCursor parses a cursor of kind + time (8) + account.
func timeCursor(cursor string, kind byte, account string) (int64, error) {
	pos, err := parseCursor(cursor, kind)
	if err != nil || len(pos) != 8+len(account) || string(pos[8:]) != account {
		return 0, errBadCursor
	}
	t := int64(binary.BigEndian.Uint64(pos))
	if t <= 0 {
		return 0, errBadCursor
	}
	return t, nil
}

func timePos(t int64, account string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(t)), account...)
}

func notFound(what, id string) error {
	return fmt.Errorf("pgstore: %s %q: %w", what, id, store.ErrNotFound)
}

func decodeTransfer(id string, rec []byte) (*ledger.Transfer, error) {
	t, err := journal.DecodeTransfer(rec)
	if err != nil {
		return nil, fmt.Errorf("pgstore: transfer %q: %w", id, unavailable(err))
	}
	if t.ID != id {
		return nil, fmt.Errorf("pgstore: transfer %s stored as %s", t.ID, id)
	}
	return t, nil
}

func decodeAccount(id string, rec []byte) (*ledger.Account, error) {
	a, err := journal.DecodeAccount(rec)
	if err != nil {
		return nil, fmt.Errorf("pgstore: account %q: %w", id, unavailable(err))
	}
	if a.ID != id {
		return nil, fmt.Errorf("pgstore: account %s stored as %s", a.ID, id)
	}
	return a, nil
}

// Transfer returns the transfer as of its latest change, or store.ErrNotFound.
func (s *Store) Transfer(ctx context.Context, id string) (*ledger.Transfer, error) {
	if !ledger.ValidText(id) { // PostgreSQL text holds no such id: none was ever stored
		return nil, notFound("transfer", id)
	}
	var rec []byte
	err := s.pool.QueryRow(ctx, `SELECT record FROM transfers WHERE id = $1`, id).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("transfer", id)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: transfer %q: %w", id, unavailable(err))
	}
	return decodeTransfer(id, rec)
}

// Transfers returns a page of transfers newest first by creation: those whose source or
// destination is account, or all when account is "". An unknown account has none.
func (s *Store) Transfers(ctx context.Context, account, cursor string, limit int) ([]*ledger.Transfer, string, error) {
	if !ledger.ValidText(account) {
		return nil, "", nil
	}
	limit = clampLimit(limit)
	var rows pgx.Rows
	if account == "" {
		seq, idx := int64(math.MaxInt64), int32(math.MaxInt32)
		if cursor != "" {
			pos, err := parseCursor(cursor, cursorTransfers)
			if err != nil || len(pos) != 12 {
				return nil, "", errBadCursor
			}
			seq, idx = int64(binary.BigEndian.Uint64(pos)), int32(binary.BigEndian.Uint32(pos[8:]))
			if seq <= 0 || idx < 0 {
				return nil, "", errBadCursor
			}
		}
		rows, _ = s.pool.Query(ctx, `SELECT id, record, created_seq, created_index FROM transfers
			WHERE (created_seq, created_index) < ($1, $2)
			ORDER BY created_seq DESC, created_index DESC LIMIT $3`, seq, idx, limit+1)
	} else {
		before := int64(math.MaxInt64)
		if cursor != "" {
			var err error
			if before, err = timeCursor(cursor, cursorAccountTransfers, account); err != nil {
				return nil, "", err
			}
		}
		// The create change of each transfer is one activity row on each of its accounts.
		rows, _ = s.pool.Query(ctx, `SELECT t.id, t.record, a.time, 0 FROM activity a
			JOIN transfers t ON t.id = a.transfer_id
			WHERE a.account = $1 AND a.op = 'create' AND a.time < $2
			ORDER BY a.time DESC LIMIT $3`, account, before, limit+1)
	}
	defer rows.Close()
	var page []*ledger.Transfer
	var lastA int64
	var lastB int32
	more := false
	for rows.Next() {
		var id string
		var rec []byte
		var a int64
		var b int32
		if err := rows.Scan(&id, &rec, &a, &b); err != nil {
			return nil, "", fmt.Errorf("pgstore: transfers: %w", unavailable(err))
		}
		if len(page) == limit {
			more = true
			break
		}
		t, err := decodeTransfer(id, rec)
		if err != nil {
			return nil, "", err
		}
		page = append(page, t)
		lastA, lastB = a, b
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("pgstore: transfers: %w", unavailable(err))
	}
	return page, nextCursor(more, account, lastA, lastB), nil
}

func nextCursor(more bool, account string, a int64, b int32) string {
	if !more {
		return ""
	}
	if account == "" {
		return makeCursor(cursorTransfers, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, uint64(a)), uint32(b)))
	}
	return makeCursor(cursorAccountTransfers, timePos(a, account))
}

// Account returns the account as of the latest commit, or store.ErrNotFound.
func (s *Store) Account(ctx context.Context, id string) (*ledger.Account, error) {
	if !ledger.ValidText(id) {
		return nil, notFound("account", id)
	}
	var rec []byte
	err := s.pool.QueryRow(ctx, `SELECT record FROM accounts WHERE id = $1`, id).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("account", id)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: account %q: %w", id, unavailable(err))
	}
	return decodeAccount(id, rec)
}

// Accounts returns a page of the accounts of owner (all when owner is ""), ordered by id.
func (s *Store) Accounts(ctx context.Context, owner, cursor string, limit int) ([]*ledger.Account, string, error) {
	if !ledger.ValidText(owner) {
		return nil, "", nil
	}
	limit = clampLimit(limit)
	kind := byte(cursorAccounts)
	var prefix []byte
	if owner != "" {
		kind = cursorOwnerAccounts
		prefix = append(binary.AppendUvarint(nil, uint64(len(owner))), owner...)
	}
	after, hasAfter := "", false
	if cursor != "" {
		pos, err := parseCursor(cursor, kind)
		if err != nil || len(pos) <= len(prefix) || string(pos[:len(prefix)]) != string(prefix) {
			return nil, "", errBadCursor
		}
		after, hasAfter = string(pos[len(prefix):]), true
		if !ledger.ValidText(after) { // not an id this store could have made a cursor of
			return nil, "", errBadCursor
		}
	}
	rows, _ := s.pool.Query(ctx, `SELECT id, record FROM accounts
		WHERE ($1 = '' OR owner = $1) AND (NOT $2 OR id > $3)
		ORDER BY id LIMIT $4`, owner, hasAfter, after, limit+1)
	defer rows.Close()
	var page []*ledger.Account
	more := false
	last := ""
	for rows.Next() {
		var id string
		var rec []byte
		if err := rows.Scan(&id, &rec); err != nil {
			return nil, "", fmt.Errorf("pgstore: accounts: %w", unavailable(err))
		}
		if len(page) == limit {
			more = true
			break
		}
		a, err := decodeAccount(id, rec)
		if err != nil {
			return nil, "", err
		}
		page = append(page, a)
		last = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("pgstore: accounts: %w", unavailable(err))
	}
	if !more {
		return page, "", nil
	}
	return page, makeCursor(kind, append(prefix, last...)), nil
}

func (s *Store) accountExists(ctx context.Context, id string) error {
	if !ledger.ValidText(id) {
		return notFound("account", id)
	}
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)`, id).Scan(&ok); err != nil {
		return fmt.Errorf("pgstore: account %q: %w", id, unavailable(err))
	}
	if !ok {
		return notFound("account", id)
	}
	return nil
}

// Entries returns a page of account's entries (posted movements), newest first, or
// store.ErrNotFound if there is no such account.
func (s *Store) Entries(ctx context.Context, account, cursor string, limit int) ([]journal.Entry, string, error) {
	limit = clampLimit(limit)
	before := int64(math.MaxInt64)
	if cursor != "" {
		var err error
		if before, err = timeCursor(cursor, cursorEntries, account); err != nil {
			return nil, "", err
		}
	}
	if err := s.accountExists(ctx, account); err != nil {
		return nil, "", err
	}
	rows, _ := s.pool.Query(ctx, `SELECT time, transfer_id, direction, amount::text, kind, posted_after::text
		FROM activity WHERE account = $1 AND posts AND time < $2
		ORDER BY time DESC LIMIT $3`, account, before, limit+1)
	defer rows.Close()
	var page []journal.Entry
	more := false
	for rows.Next() {
		var e journal.Entry
		var dir, amount, kind, after string
		if err := rows.Scan(&e.Time, &e.TransferID, &dir, &amount, &kind, &after); err != nil {
			return nil, "", fmt.Errorf("pgstore: entries: %w", unavailable(err))
		}
		if len(page) == limit {
			more = true
			break
		}
		e.Account = account
		if err := decodeEntry(&e, dir, amount, kind, after); err != nil {
			return nil, "", err
		}
		page = append(page, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("pgstore: entries: %w", unavailable(err))
	}
	if !more {
		return page, "", nil
	}
	return page, makeCursor(cursorEntries, timePos(page[len(page)-1].Time, account)), nil
}

// BalanceAt returns account's posted balance just after its last activity at or before at
// (Unix ns), zero if none, or store.ErrNotFound if there is no such account.
func (s *Store) BalanceAt(ctx context.Context, account string, at int64) (ledger.Balance, error) {
	if err := s.accountExists(ctx, account); err != nil {
		return ledger.Balance{}, err
	}
	var after string
	err := s.pool.QueryRow(ctx, `SELECT posted_after::text FROM activity WHERE account = $1 AND time <= $2
		ORDER BY time DESC LIMIT 1`, account, at).Scan(&after)
	if errors.Is(err, pgx.ErrNoRows) {
		return ledger.Balance{}, nil
	}
	if err != nil {
		return ledger.Balance{}, fmt.Errorf("pgstore: balance of %q: %w", account, unavailable(err))
	}
	b, err := ledger.ParseBalance(after)
	if err != nil {
		return ledger.Balance{}, fmt.Errorf("pgstore: balance of %q: %w", account, unavailable(err))
	}
	return b, nil
}

// Journal returns up to limit records with Seq > after, in order.
func (s *Store) Journal(ctx context.Context, after uint64, limit int) ([]*journal.Record, error) {
	limit = clampLimit(limit)
	if after >= math.MaxInt64 {
		return nil, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT seq, record FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2`,
		int64(after), limit)
	defer rows.Close()
	var out []*journal.Record
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return nil, fmt.Errorf("pgstore: journal: %w", unavailable(err))
		}
		r, err := journal.DecodeRecord(b)
		if err != nil {
			return nil, fmt.Errorf("pgstore: journal: record %d: %w", seq, unavailable(err))
		}
		if r.Seq != uint64(seq) {
			return nil, fmt.Errorf("pgstore: journal: record %d stored at seq %d", r.Seq, seq)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: journal: %w", unavailable(err))
	}
	return out, nil
}

// Head returns the newest committed record's seq and hash, as the head row says.
func (s *Store) Head(ctx context.Context) (journal.Head, error) {
	var seq int64
	var hash []byte
	if err := s.pool.QueryRow(ctx, `SELECT seq, hash FROM head`).Scan(&seq, &hash); err != nil {
		return journal.Head{}, fmt.Errorf("pgstore: head: %w", unavailable(err))
	}
	h := journal.Head{Seq: uint64(seq)}
	if len(hash) != len(h.Hash) {
		return journal.Head{}, fmt.Errorf("pgstore: head: hash of %d bytes", len(hash))
	}
	copy(h.Hash[:], hash)
	return h, nil
}

// Idempotency returns the stored answer for (scope, key), or store.ErrNotFound when there is
// none or it expired before now (Unix ns): an answer is good up to and including ExpiresAt.
func (s *Store) Idempotency(ctx context.Context, scope, key string, now int64) (*journal.Idempotency, error) {
	v := journal.Idempotency{Scope: scope, Key: key}
	var hash []byte
	var status int32
	err := s.pool.QueryRow(ctx, `SELECT request_hash, status, body, expires_at FROM idempotency
		WHERE scope = $1 AND key = $2`, scope, key).Scan(&hash, &status, &v.Body, &v.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: idempotency key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: idempotency key: %w", unavailable(err))
	}
	if v.ExpiresAt < now {
		return nil, fmt.Errorf("pgstore: idempotency key: expired: %w", store.ErrNotFound)
	}
	copy(v.RequestHash[:], hash)
	v.Status = int(status)
	return &v, nil
}

// DeleteExpiredIdempotency removes the answers that expired before now, returning how many.
func (s *Store) DeleteExpiredIdempotency(ctx context.Context, now int64) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE expires_at < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("pgstore: delete expired idempotency keys: %w", unavailable(err))
	}
	return int(tag.RowsAffected()), nil
}

func scanAPIKey(r pgx.CollectableRow) (journal.APIKey, error) {
	var k journal.APIKey
	var hash []byte
	err := r.Scan(&k.ID, &k.Name, &k.Scopes, &hash, &k.CreatedAt, &k.Revoked)
	copy(k.Hash[:], hash)
	if len(k.Scopes) == 0 {
		k.Scopes = nil
	}
	return k, err
}

// APIKeys returns every stored API key, revoked ones included, ordered by id.
func (s *Store) APIKeys(ctx context.Context) ([]journal.APIKey, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, name, scopes, hash, created_at, revoked FROM api_keys ORDER BY id`)
	keys, err := pgx.CollectRows(rows, scanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("pgstore: api keys: %w", unavailable(err))
	}
	return keys, nil
}

// APIKeyByHash returns the key whose secret hashes to h, revoked or not, or
// store.ErrNotFound.
func (s *Store) APIKeyByHash(ctx context.Context, h journal.Hash) (*journal.APIKey, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, name, scopes, hash, created_at, revoked FROM api_keys
		WHERE hash = $1 ORDER BY id LIMIT 1`, h[:])
	k, err := pgx.CollectExactlyOneRow(rows, scanAPIKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: api key: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: api key: %w", unavailable(err))
	}
	return &k, nil
}

// Assets returns every asset, the preloaded ones and those created, sorted by code: what
// a standby, which has no engine state, answers GET /v1/assets with.
func (s *Store) Assets(ctx context.Context) ([]ledger.Asset, error) {
	rows, _ := s.pool.Query(ctx, `SELECT code, scale FROM assets`)
	created, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Asset, error) {
		var a ledger.Asset
		var scale int16
		err := r.Scan(&a.Code, &scale)
		a.Scale = uint8(scale)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: assets: %w", unavailable(err))
	}
	byCode := make(map[string]ledger.Asset, len(ledger.PreloadedAssets)+len(created))
	for _, a := range ledger.PreloadedAssets {
		byCode[a.Code] = a
	}
	for _, a := range created {
		byCode[a.Code] = a
	}
	out := slices.Collect(maps.Values(byCode))
	slices.SortFunc(out, func(a, b ledger.Asset) int { return strings.Compare(a.Code, b.Code) })
	return out, nil
}
