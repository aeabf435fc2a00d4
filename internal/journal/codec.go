package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// FormatVersion is the version byte that starts every encoded record, transfer and account.
// A reader refuses any other version rather than guess.
const FormatVersion = 1

// ErrFormat is wrapped by every decoding error: the bytes are not a value this version wrote.
var ErrFormat = errors.New("journal: bad encoding")

// AppendRecord appends the binary encoding of r to dst.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, FormatVersion)
	dst = binary.AppendUvarint(dst, r.Seq)
	dst = append(dst, r.PrevHash[:]...)
	dst = append(dst, r.Hash[:]...)
	dst = binary.AppendVarint(dst, r.Timestamp)
	dst = binary.AppendUvarint(dst, uint64(len(r.Changes)))
	for i := range r.Changes {
		dst = appendChange(dst, &r.Changes[i])
	}
	return dst
}

func appendChange(dst []byte, c *ledger.Change) []byte {
	dst = append(dst, byte(c.Op))
	dst = binary.AppendVarint(dst, c.Time)
	switch c.Op {
	case ledger.ChangeAccountCreate, ledger.ChangeAccountFreeze, ledger.ChangeAccountUnfreeze:
		return appendAccountBody(dst, c.Account)
	case ledger.ChangeAssetCreate:
		dst = appendString(dst, c.Asset.Code)
		return append(dst, c.Asset.Scale)
	}
	dst = appendAmount(dst, c.Amount)
	dst = appendBalance(dst, c.SourceAfter)
	dst = appendBalance(dst, c.DestinationAfter)
	return appendTransferBody(dst, c.Transfer)
}

// AppendTransfer appends the binary encoding of t to dst.
func AppendTransfer(dst []byte, t *ledger.Transfer) []byte {
	return appendTransferBody(append(dst, FormatVersion), t)
}

func appendTransferBody(dst []byte, t *ledger.Transfer) []byte {
	dst = appendString(dst, t.ID)
	dst = appendString(dst, t.Source)
	dst = appendString(dst, t.Destination)
	dst = appendAmount(dst, t.Amount)
	dst = appendString(dst, t.Asset)
	dst = append(dst, byte(slices.Index(ledger.TransferKinds, t.Kind)))
	dst = append(dst, byte(slices.Index(ledger.TransferStatuses, t.Status)))
	dst = appendString(dst, t.Reference)
	dst = appendMetadata(dst, t.Metadata)
	dst = binary.AppendVarint(dst, t.CreatedAt)
	dst = binary.AppendVarint(dst, t.PostedAt)
	dst = appendAmount(dst, t.AmountPosted)
	dst = binary.AppendVarint(dst, t.ExpiresAt)
	dst = appendBool(dst, t.Hold)
	return binary.AppendUvarint(dst, uint64(t.HoldTimeout))
}

// AppendAccount appends the binary encoding of a to dst.
func AppendAccount(dst []byte, a *ledger.Account) []byte {
	return appendAccountBody(append(dst, FormatVersion), a)
}

func appendAccountBody(dst []byte, a *ledger.Account) []byte {
	dst = appendString(dst, a.ID)
	dst = appendString(dst, a.Owner)
	dst = appendString(dst, a.Asset)
	dst = append(dst, byte(slices.Index(ledger.AccountKinds, a.Kind)))
	dst = appendBool(dst, a.AllowNegative)
	dst = append(dst, byte(slices.Index(ledger.AccountStatuses, a.Status)))
	dst = appendMetadata(dst, a.Metadata)
	dst = binary.AppendVarint(dst, a.CreatedAt)
	dst = appendAmount(dst, a.DebitsPosted)
	dst = appendAmount(dst, a.CreditsPosted)
	dst = appendAmount(dst, a.DebitsPending)
	return appendAmount(dst, a.CreditsPending)
}

// AppendEntry appends the binary encoding of e without its Account and Time, which stores
// keep in the key.
func AppendEntry(dst []byte, e *Entry) []byte {
	dst = append(dst, FormatVersion)
	dst = appendString(dst, e.TransferID)
	dst = append(dst, byte(e.Direction))
	dst = appendAmount(dst, e.Amount)
	dst = append(dst, byte(slices.Index(ledger.TransferKinds, e.Kind)))
	return appendBalance(dst, e.PostedAfter)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendAmount(dst []byte, a ledger.Amount) []byte {
	hi, lo := a.Parts()
	dst = binary.AppendUvarint(dst, hi)
	return binary.AppendUvarint(dst, lo)
}

func appendBalance(dst []byte, b ledger.Balance) []byte {
	return appendAmount(appendBool(dst, b.Neg), b.Mag)
}

// appendMetadata writes keys in sorted order, so equal maps encode to equal bytes.
func appendMetadata(dst []byte, m map[string]string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = appendString(appendString(dst, k), m[k])
	}
	return dst
}

// decoder reads the encoding; the first error sticks and later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrFormat, what)
	}
	d.b = nil
}

func (d *decoder) byte(what string) byte {
	if len(d.b) == 0 {
		d.fail(what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// uvarint and varint accept only the shortest encoding (no trailing 0x00 group), so that
// every value has one encoding and decoding then encoding gives the bytes back.
func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n > 1 && d.b[n-1] == 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 || n > 1 && d.b[n-1] == 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(what string) string {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// bytes is string without the copy: the result aliases the input.
func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

// joinStrings copies parts into one allocation and returns them as strings. Decoding a
// transfer's strings this way costs one allocation instead of five (verify decodes every
// transfer ever made); they are kept alive together, which is what a transfer does anyway.
func joinStrings(parts *[5][]byte) (out [5]string) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, p := range parts {
		sb.Write(p)
	}
	all := sb.String()
	for i, p := range parts {
		out[i], all = all[:len(p)], all[len(p):]
	}
	return out
}

func (d *decoder) bool(what string) bool {
	switch d.byte(what) {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(what)
	return false
}

func (d *decoder) amount(what string) ledger.Amount {
	hi := d.uvarint(what)
	return ledger.AmountFromParts(hi, d.uvarint(what))
}

func (d *decoder) balance(what string) ledger.Balance {
	b := ledger.Balance{Neg: d.bool(what), Mag: d.amount(what)}
	if b.Neg && b.Mag.IsZero() {
		d.fail(what + ": negative zero")
	}
	return b
}

func (d *decoder) hash(what string) (h Hash) {
	if len(d.b) < len(h) {
		d.fail(what)
		return h
	}
	copy(h[:], d.b)
	d.b = d.b[len(h):]
	return h
}

func (d *decoder) version(what string) {
	if v := d.byte(what); v != FormatVersion && d.err == nil {
		d.fail(fmt.Sprintf("%s: format version %d, this build reads %d", what, v, FormatVersion))
	}
}

func (d *decoder) metadata(what string) map[string]string {
	n := d.uvarint(what)
	if n > ledger.MetadataKeysMax {
		d.fail(what + ": too many metadata keys")
		return nil
	}
	m := make(map[string]string, n)
	prev := ""
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.string(what)
		if i > 0 && k <= prev && d.err == nil { // appendMetadata writes keys sorted, once each
			d.fail(what + ": metadata keys not in order")
		}
		m[k] = d.string(what)
		prev = k
	}
	return m
}

func enumOf[T any](d *decoder, list []T, what string) T {
	i := d.byte(what)
	if int(i) >= len(list) {
		d.fail(what)
		var zero T
		return zero
	}
	return list[i]
}

func (d *decoder) done(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(what + ": trailing bytes")
	}
	return d.err
}

// DecodeRecord decodes what AppendRecord wrote.
func DecodeRecord(b []byte) (*Record, error) {
	d := decoder{b: b}
	d.version("record")
	r := &Record{Seq: d.uvarint("seq"), PrevHash: d.hash("prev_hash"), Hash: d.hash("hash"),
		Timestamp: d.varint("timestamp")}
	n := d.uvarint("change count")
	if n > uint64(len(d.b)) { // every change takes at least one byte
		d.fail("change count")
	}
	if d.err == nil {
		r.Changes = make([]ledger.Change, n)
	}
	for i := range r.Changes {
		d.change(&r.Changes[i])
		if d.err != nil {
			break
		}
	}
	if err := d.done("record"); err != nil {
		return nil, err
	}
	return r, nil
}

func (d *decoder) change(c *ledger.Change) {
	c.Op = ledger.ChangeOp(d.byte("op"))
	c.Time = d.varint("time")
	switch c.Op {
	case ledger.ChangeAccountCreate, ledger.ChangeAccountFreeze, ledger.ChangeAccountUnfreeze:
		c.Account = d.account()
	case ledger.ChangeAssetCreate:
		c.Asset = &ledger.Asset{Code: d.string("asset code"), Scale: d.byte("asset scale")}
	case ledger.ChangeCreate, ledger.ChangePost, ledger.ChangeIncrease, ledger.ChangeVoid, ledger.ChangeExpire:
		c.Amount = d.amount("amount")
		c.SourceAfter = d.balance("source_after")
		c.DestinationAfter = d.balance("destination_after")
		c.Transfer = d.transfer()
	default:
		d.fail("unknown change op")
	}
}

// DecodeTransfer decodes what AppendTransfer wrote.
func DecodeTransfer(b []byte) (*ledger.Transfer, error) {
	d := decoder{b: b}
	d.version("transfer")
	t := d.transfer()
	if err := d.done("transfer"); err != nil {
		return nil, err
	}
	return t, nil
}

func (d *decoder) transfer() *ledger.Transfer {
	var parts [5][]byte // the strings, decoded with one allocation for all five
	parts[0], parts[1], parts[2] = d.bytes("id"), d.bytes("source"), d.bytes("destination")
	t := &ledger.Transfer{Amount: d.amount("amount")}
	parts[3] = d.bytes("asset")
	t.Kind = enumOf(d, ledger.TransferKinds, "transfer kind")
	t.Status = enumOf(d, ledger.TransferStatuses, "transfer status")
	parts[4] = d.bytes("reference")
	s := joinStrings(&parts)
	t.ID, t.Source, t.Destination, t.Asset, t.Reference = s[0], s[1], s[2], s[3], s[4]
	t.Metadata = d.metadata("metadata")
	t.CreatedAt = d.varint("created_at")
	t.PostedAt = d.varint("posted_at")
	t.AmountPosted = d.amount("amount_posted")
	t.ExpiresAt = d.varint("expires_at")
	t.Hold = d.bool("hold")
	timeout := d.uvarint("hold timeout")
	if timeout > ledger.HoldTimeoutMax {
		d.fail("hold timeout")
	}
	t.HoldTimeout = uint32(timeout)
	return t
}

// DecodeAccount decodes what AppendAccount wrote.
func DecodeAccount(b []byte) (*ledger.Account, error) {
	d := decoder{b: b}
	d.version("account")
	a := d.account()
	if err := d.done("account"); err != nil {
		return nil, err
	}
	return a, nil
}

func (d *decoder) account() *ledger.Account {
	a := &ledger.Account{ID: d.string("id"), Owner: d.string("owner"), Asset: d.string("asset"),
		Kind: enumOf(d, ledger.AccountKinds, "account kind"), AllowNegative: d.bool("allow_negative"),
		Status: enumOf(d, ledger.AccountStatuses, "account status")}
	a.Metadata = d.metadata("metadata")
	a.CreatedAt = d.varint("created_at")
	a.DebitsPosted = d.amount("debits_posted")
	a.CreditsPosted = d.amount("credits_posted")
	a.DebitsPending = d.amount("debits_pending")
	a.CreditsPending = d.amount("credits_pending")
	return a
}

// DecodeEntry decodes what AppendEntry wrote; the caller fills in Account and Time.
func DecodeEntry(b []byte) (Entry, error) {
	d := decoder{b: b}
	d.version("entry")
	e := Entry{TransferID: d.string("transfer_id"), Direction: Direction(d.byte("direction")),
		Amount: d.amount("amount"), Kind: enumOf(&d, ledger.TransferKinds, "kind"),
		PostedAfter: d.balance("posted_after")}
	if e.Direction != Debit && e.Direction != Credit {
		d.fail("direction")
	}
	return e, d.done("entry")
}
