package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// errEncoding is wrapped by every error decoding a store-owned value.
var errEncoding = errors.New("bad encoding")

// Activity is one x/ row: a transfer change as one of its two accounts saw it. Entry holds
// the account's side of it: Direction is Debit for the source and Credit for the
// destination, Amount is the change's amount (see ledger.Change) and PostedAfter the
// account's posted balance just after the change, whether or not it posted.
type Activity struct {
	journal.Entry
	Op    ledger.ChangeOp // create, post, increase, void or expire
	Posts bool            // the change moved posted balances: the row is an entry
}

// appendActivity encodes a row without its account and time, which are in the key:
// op, posts, then journal.AppendEntry.
func appendActivity(dst []byte, a *Activity) []byte {
	var posts byte
	if a.Posts {
		posts = 1
	}
	return journal.AppendEntry(append(dst, byte(a.Op), posts), &a.Entry)
}

func decodeActivity(b []byte) (Activity, error) {
	if len(b) < 2 {
		return Activity{}, fmt.Errorf("%w: activity row too short", errEncoding)
	}
	a := Activity{Op: ledger.ChangeOp(b[0]), Posts: b[1] == 1}
	switch {
	case a.Op < ledger.ChangeCreate || a.Op > ledger.ChangeExpire:
		return Activity{}, fmt.Errorf("%w: activity op %d", errEncoding, b[0])
	case b[1] > 1:
		return Activity{}, fmt.Errorf("%w: activity posts flag %d", errEncoding, b[1])
	case a.Posts != (a.Op == ledger.ChangePost) && a.Op != ledger.ChangeCreate:
		return Activity{}, fmt.Errorf("%w: activity op %s with posts %v", errEncoding, a.Op, a.Posts)
	}
	e, err := journal.DecodeEntry(b[2:])
	if err != nil {
		return Activity{}, fmt.Errorf("%w: activity row: %w", errEncoding, err)
	}
	a.Entry = e
	return a, nil
}

// appendIdempotency encodes an answer without its scope and key, which are in the key:
// expires_at first (so a sweep reads little), request hash, status, then the body to the end.
func appendIdempotency(dst []byte, v *journal.Idempotency) []byte {
	dst = binary.AppendVarint(dst, v.ExpiresAt)
	dst = append(dst, v.RequestHash[:]...)
	dst = binary.AppendUvarint(dst, uint64(v.Status))
	return append(dst, v.Body...)
}

// statusMax bounds a stored HTTP status: anything larger is not one this store wrote.
const statusMax = 999

func decodeIdempotency(b []byte) (journal.Idempotency, error) {
	r := reader{b: b}
	v := journal.Idempotency{ExpiresAt: r.varint()}
	v.RequestHash = r.hash()
	status := r.uvarint()
	if status > statusMax {
		r.fail()
	}
	v.Status = int(status)
	if r.err {
		return journal.Idempotency{}, fmt.Errorf("%w: idempotency answer", errEncoding)
	}
	v.Body = append([]byte(nil), r.b...) // nil when empty
	return v, nil
}

// expiresAt decodes only the expiry of an idempotency answer.
func expiresAt(b []byte) (int64, error) {
	r := reader{b: b}
	v := r.varint()
	if r.err {
		return 0, fmt.Errorf("%w: idempotency expires_at", errEncoding)
	}
	return v, nil
}

// appendAPIKey encodes k without its id, which is in the key.
func appendAPIKey(dst []byte, k *journal.APIKey) []byte {
	dst = appendString(dst, k.Name)
	dst = binary.AppendUvarint(dst, uint64(len(k.Scopes)))
	for _, s := range k.Scopes {
		dst = appendString(dst, s)
	}
	dst = append(dst, k.Hash[:]...)
	dst = binary.AppendVarint(dst, k.CreatedAt)
	if k.Revoked {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func decodeAPIKey(id string, b []byte) (journal.APIKey, error) {
	r := reader{b: b}
	k := journal.APIKey{ID: id, Name: r.string()}
	n := r.uvarint()
	if n > uint64(len(r.b)) { // every scope takes at least one byte
		r.fail()
	}
	if !r.err {
		k.Scopes = make([]string, n)
	}
	for i := range k.Scopes {
		k.Scopes[i] = r.string()
	}
	k.Hash = r.hash()
	k.CreatedAt = r.varint()
	switch r.byte() {
	case 0:
	case 1:
		k.Revoked = true
	default:
		r.fail()
	}
	if r.err || len(r.b) != 0 {
		return journal.APIKey{}, fmt.Errorf("%w: api key %q", errEncoding, id)
	}
	return k, nil
}

// appendHead encodes m/head.
func appendHead(dst []byte, h journal.Head) []byte {
	return append(binary.BigEndian.AppendUint64(dst, h.Seq), h.Hash[:]...)
}

func decodeHead(b []byte) (journal.Head, error) {
	var h journal.Head
	if len(b) != 8+len(h.Hash) {
		return h, fmt.Errorf("%w: m/head has %d bytes", errEncoding, len(b))
	}
	h.Seq = binary.BigEndian.Uint64(b)
	copy(h.Hash[:], b[8:])
	return h, nil
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// reader decodes store-owned values; after the first failure every read returns zero.
type reader struct {
	b   []byte
	err bool
}

func (r *reader) fail() { r.err, r.b = true, nil }

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// uvarint and varint accept only the shortest encoding, so that every value has one
// encoding (as journal's decoder does).
func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n > 1 && r.b[n-1] == 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 || n > 1 && r.b[n-1] == 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) hash() (h journal.Hash) {
	if len(r.b) < len(h) {
		r.fail()
		return h
	}
	copy(h[:], r.b)
	r.b = r.b[len(h):]
	return h
}
