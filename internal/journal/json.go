package journal

import (
	"errors"
	"hash"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// The encoders in this file write the canonical JSON of docs/journal.md: the api.md objects
// with keys sorted, no spaces, and strings escaped exactly as Python's
// json.dumps(obj, sort_keys=True, separators=(",", ":")) escapes them (ensure_ascii), so an
// auditor can recompute every record hash from what GET /v1/journal serves. They append to
// dst and use no reflection: they run on the commit path for every transfer and in verify.
//
// Amounts are JSON strings of decimal digits, balances the same with a leading '-' when
// negative, times RFC 3339 UTC with nine fraction digits, and other integers plain numbers.

// AppendTime appends ns (Unix nanoseconds) as RFC 3339 in UTC with exactly nine fraction
// digits, e.g. 2026-01-01T00:00:00.000000001Z. Every int64 is a year from 1677 to 2262, so
// the result always has 30 bytes.
func AppendTime(dst []byte, ns int64) []byte {
	sec, frac := ns/1e9, ns%1e9
	if frac < 0 {
		sec, frac = sec-1, frac+1e9
	}
	days, daySec := sec/86400, sec%86400
	if daySec < 0 {
		days, daySec = days-1, daySec+86400
	}
	y, m, d := civil(days)
	var b [30]byte
	put4(b[0:], int(y))
	b[4] = '-'
	put2(b[5:], m)
	b[7] = '-'
	put2(b[8:], d)
	b[10] = 'T'
	put2(b[11:], int(daySec/3600))
	b[13] = ':'
	put2(b[14:], int(daySec/60%60))
	b[16] = ':'
	put2(b[17:], int(daySec%60))
	b[19] = '.'
	f := uint32(frac)
	for i := 28; i >= 20; i-- {
		b[i] = byte('0' + f%10)
		f /= 10
	}
	b[29] = 'Z'
	return append(dst, b[:]...)
}

// FormatTime returns AppendTime(nil, ns) as a string.
func FormatTime(ns int64) string {
	var b [30]byte
	return string(AppendTime(b[:0], ns))
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
// civil_from_days), which is what time.Time does, without its per-call overhead.
func civil(days int64) (year int64, month, day int) {
	z := days + 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // [0, 365]
	mp := (5*doy + 2) / 153                                // [0, 11], March first
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

func put2(b []byte, v int) {
	b[0] = byte('0' + v/10)
	b[1] = byte('0' + v%10)
}

func put4(b []byte, v int) {
	b[0] = byte('0' + v/1000)
	b[1] = byte('0' + v/100%10)
	b[2] = byte('0' + v/10%10)
	b[3] = byte('0' + v%10)
}

// ErrTimeSyntax is returned by ParseTime for anything but an RFC 3339 date-time. Like
// ledger.ErrAmountSyntax, its text is fit for a client.
var ErrTimeSyntax = errors.New("time must be RFC 3339, e.g. 2026-01-01T00:00:00Z")

// ErrTimeRange is returned by ParseTime for a valid time that Unix nanoseconds in an int64
// cannot hold.
var ErrTimeRange = errors.New("time must be between 1677-09-21T00:12:43.145224192Z and 2262-04-11T23:47:16.854775807Z")

var (
	timeMin = time.Unix(0, -1<<63)
	timeMax = time.Unix(0, 1<<63-1)
)

// ParseTime parses an RFC 3339 date-time with any offset and any number of fraction digits
// (for query parameters such as ?at=) and returns it in Unix nanoseconds. Digits past the
// ninth are dropped. 't' and 'z' may be lower case, as RFC 3339 allows.
func ParseTime(s string) (int64, error) {
	if strings.IndexByte(s, ',') >= 0 { // time.Parse takes ',' for '.'; RFC 3339 does not
		return 0, ErrTimeSyntax
	}
	t, err := time.Parse(time.RFC3339Nano, strings.Map(upperTZ, s))
	if err != nil {
		return 0, ErrTimeSyntax
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 { // time.Parse takes +24:00
		return 0, ErrTimeSyntax
	}
	if t.Before(timeMin) || t.After(timeMax) {
		return 0, ErrTimeRange
	}
	return t.UnixNano(), nil
}

func upperTZ(r rune) rune {
	switch r {
	case 't':
		return 'T'
	case 'z':
		return 'Z'
	}
	return r
}

// jsonPlain marks the bytes Python writes unescaped with ensure_ascii: printable ASCII
// (0x20–0x7e) except '"' and '\'. DEL (0x7f) is escaped, as Python does.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string escaped like Python's ensure_ascii: the short
// escapes \" \\ \n \r \t \b \f; every other byte below 0x20, DEL and every non-ASCII code
// point as \uXXXX in lower-case hex, with a surrogate pair above U+FFFF; '/' as is. Each
// byte of s that is not part of valid UTF-8 is written as \ufffd, like encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = appendU4(dst, rune(c))
			}
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		r, size := utf8.DecodeRuneInString(s[i:]) // an invalid byte is RuneError, size 1
		if r > 0xffff {
			r -= 0x10000
			dst = appendU4(dst, 0xd800+r>>10)
			r = 0xdc00 + r&0x3ff
		}
		dst = appendU4(dst, r)
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&15], hexDigits[r>>8&15], hexDigits[r>>4&15],
		hexDigits[r&15])
}

func appendAmountJSON(dst []byte, a ledger.Amount) []byte {
	return append(a.AppendDecimal(append(dst, '"')), '"')
}

func appendBalanceJSON(dst []byte, b ledger.Balance) []byte {
	return append(b.AppendDecimal(append(dst, '"')), '"')
}

func appendTimeJSON(dst []byte, ns int64) []byte {
	return append(AppendTime(append(dst, '"'), ns), '"')
}

// appendOptTimeJSON writes 0 as null: expires_at and posted_at before they are set.
func appendOptTimeJSON(dst []byte, ns int64) []byte {
	if ns == 0 {
		return append(dst, "null"...)
	}
	return appendTimeJSON(dst, ns)
}

func appendBoolJSON(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendMetadataJSON writes m as an object with its keys in code point order, which for
// valid UTF-8 is byte order. It is always an object: {} when m is empty or nil.
func appendMetadataJSON(dst []byte, m map[string]string) []byte {
	if len(m) == 0 {
		return append(dst, '{', '}')
	}
	var buf [ledger.MetadataKeysMax]string // no allocation up to the api.md limit
	keys := buf[:0]
	for k := range m {
		if !utf8.ValidString(k) {
			return appendMetadataInvalidJSON(dst, m)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, m[k])
	}
	return append(dst, '}')
}

// appendMetadataInvalidJSON handles keys that are not valid UTF-8 (the API never accepts
// them, but the encoding must be defined for any value). Such keys are written, and sorted,
// as the text a JSON reader sees: each invalid byte U+FFFD. When two keys read the same, only
// the one whose raw bytes sort last is written, which is also the one a reader that keeps the
// last duplicate (as Python does) would see; so what is served still re-encodes to what is
// hashed.
func appendMetadataInvalidJSON(dst []byte, m map[string]string) []byte {
	type pair struct{ shown, raw string }
	pairs := make([]pair, 0, len(m))
	for k := range m {
		pairs = append(pairs, pair{shown: shownUTF8(k), raw: k})
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if a.shown != b.shown {
			if a.shown < b.shown {
				return -1
			}
			return 1
		}
		if a.raw < b.raw {
			return -1
		}
		if a.raw > b.raw {
			return 1
		}
		return 0
	})
	dst = append(dst, '{')
	first := true
	for i, p := range pairs {
		if i+1 < len(pairs) && pairs[i+1].shown == p.shown {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, p.shown)
		dst = append(dst, ':')
		dst = appendJSONString(dst, m[p.raw])
	}
	return append(dst, '}')
}

// shownUTF8 replaces each byte of s that is not part of valid UTF-8 with U+FFFD, as
// appendJSONString does. (strings.ToValidUTF8 would replace a whole run with one U+FFFD.)
func shownUTF8(s string) string {
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return string(out)
}

// AppendTransferJSON appends the api.md Transfer t as canonical JSON: keys amount,
// amount_posted, asset, created_at, destination, expires_at, id, kind, metadata, posted_at,
// reference, source, status. expires_at and posted_at are null when 0.
func AppendTransferJSON(dst []byte, t *ledger.Transfer) []byte {
	dst = append(dst, `{"amount":`...)
	dst = appendAmountJSON(dst, t.Amount)
	dst = append(dst, `,"amount_posted":`...)
	dst = appendAmountJSON(dst, t.AmountPosted)
	dst = append(dst, `,"asset":`...)
	dst = appendJSONString(dst, t.Asset)
	dst = append(dst, `,"created_at":`...)
	dst = appendTimeJSON(dst, t.CreatedAt)
	dst = append(dst, `,"destination":`...)
	dst = appendJSONString(dst, t.Destination)
	dst = append(dst, `,"expires_at":`...)
	dst = appendOptTimeJSON(dst, t.ExpiresAt)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, t.ID)
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, string(t.Kind))
	dst = append(dst, `,"metadata":`...)
	dst = appendMetadataJSON(dst, t.Metadata)
	dst = append(dst, `,"posted_at":`...)
	dst = appendOptTimeJSON(dst, t.PostedAt)
	dst = append(dst, `,"reference":`...)
	dst = appendJSONString(dst, t.Reference)
	dst = append(dst, `,"source":`...)
	dst = appendJSONString(dst, t.Source)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, string(t.Status))
	return append(dst, '}')
}

// AppendAccountJSON appends the api.md Account a as canonical JSON: keys allow_negative,
// asset, balance {available, pending_credits, pending_debits, posted}, created_at,
// credits_posted, debits_posted, id, kind, metadata, owner, status. posted is
// credits_posted − debits_posted and available is posted − pending_debits, with a leading
// '-' when negative.
func AppendAccountJSON(dst []byte, a *ledger.Account) []byte {
	dst = append(dst, `{"allow_negative":`...)
	dst = appendBoolJSON(dst, a.AllowNegative)
	dst = append(dst, `,"asset":`...)
	dst = appendJSONString(dst, a.Asset)
	dst = append(dst, `,"balance":{"available":"`...)
	dst = appendAvailable(dst, a)
	dst = append(dst, `","pending_credits":`...)
	dst = appendAmountJSON(dst, a.CreditsPending)
	dst = append(dst, `,"pending_debits":`...)
	dst = appendAmountJSON(dst, a.DebitsPending)
	dst = append(dst, `,"posted":`...)
	dst = appendBalanceJSON(dst, a.Posted())
	dst = append(dst, `},"created_at":`...)
	dst = appendTimeJSON(dst, a.CreatedAt)
	dst = append(dst, `,"credits_posted":`...)
	dst = appendAmountJSON(dst, a.CreditsPosted)
	dst = append(dst, `,"debits_posted":`...)
	dst = appendAmountJSON(dst, a.DebitsPosted)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, a.ID)
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, string(a.Kind))
	dst = append(dst, `,"metadata":`...)
	dst = appendMetadataJSON(dst, a.Metadata)
	dst = append(dst, `,"owner":`...)
	dst = appendJSONString(dst, a.Owner)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, string(a.Status))
	return append(dst, '}')
}

// appendAvailable writes credits_posted − debits_posted − pending_debits in decimal. Unlike
// ledger.Account.Available it does not panic when the magnitude needs 129 bits (possible for
// an allow_negative account deep below zero with a hold), so any account can be encoded.
func appendAvailable(dst []byte, a *ledger.Account) []byte {
	if b, ok := a.Posted().Sub(a.DebitsPending); ok {
		return b.AppendDecimal(dst)
	}
	v := bigAmount(a.CreditsPosted)
	v.Sub(v, bigAmount(a.DebitsPosted))
	v.Sub(v, bigAmount(a.DebitsPending))
	return v.Append(dst, 10)
}

func bigAmount(a ledger.Amount) *big.Int {
	hi, lo := a.Parts()
	v := new(big.Int).SetUint64(hi)
	return v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(lo))
}

// AppendAssetJSON appends the api.md Asset a: {"code":"USD","scale":2}.
func AppendAssetJSON(dst []byte, a *ledger.Asset) []byte {
	dst = append(dst, `{"code":`...)
	dst = appendJSONString(dst, a.Code)
	dst = append(dst, `,"scale":`...)
	dst = strconv.AppendUint(dst, uint64(a.Scale), 10)
	return append(dst, '}')
}

// AppendChangeJSON appends one change of a record: "op" (ledger.ChangeOp.String) and
// "timestamp" (c.Time) with, by op, "account" (the Account after the change), "asset" (the
// Asset created), or "amount" (what moved, see ledger.Change) and "transfer" (the Transfer
// after the change). Keys are sorted. A missing object is written as null.
func AppendChangeJSON(dst []byte, c *ledger.Change) []byte {
	switch c.Op {
	case ledger.ChangeAccountCreate, ledger.ChangeAccountFreeze, ledger.ChangeAccountUnfreeze:
		dst = append(dst, `{"account":`...)
		if c.Account == nil {
			dst = append(dst, "null"...)
		} else {
			dst = AppendAccountJSON(dst, c.Account)
		}
		dst = append(dst, ',')
	case ledger.ChangeAssetCreate:
		dst = append(dst, `{"asset":`...)
		if c.Asset == nil {
			dst = append(dst, "null"...)
		} else {
			dst = AppendAssetJSON(dst, c.Asset)
		}
		dst = append(dst, ',')
	case ledger.ChangeCreate, ledger.ChangePost, ledger.ChangeIncrease, ledger.ChangeVoid,
		ledger.ChangeExpire:
		return appendTransferChangeJSON(dst, c)
	default:
		dst = append(dst, '{')
	}
	dst = append(dst, `"op":`...)
	dst = appendJSONString(dst, c.Op.String())
	dst = append(dst, `,"timestamp":`...)
	dst = appendTimeJSON(dst, c.Time)
	return append(dst, '}')
}

func appendTransferChangeJSON(dst []byte, c *ledger.Change) []byte {
	dst = append(dst, `{"amount":`...)
	dst = appendAmountJSON(dst, c.Amount)
	dst = append(dst, `,"op":"`...)
	dst = append(dst, c.Op.String()...) // plain ASCII
	dst = append(dst, `","timestamp":`...)
	dst = appendTimeJSON(dst, c.Time)
	dst = append(dst, `,"transfer":`...)
	if c.Transfer == nil {
		dst = append(dst, "null"...)
	} else {
		dst = AppendTransferJSON(dst, c.Transfer)
	}
	return append(dst, '}')
}

// AppendRecordJSON appends r as GET /v1/journal serves it:
// {"changes":[...],"hash":"<64 hex>","prev_hash":"<64 hex>","seq":N,"timestamp":"..."}.
func AppendRecordJSON(dst []byte, r *Record) []byte {
	return appendRecordJSON(dst, r, true, nil)
}

// AppendHashedJSON appends the bytes RecordHash hashes: AppendRecordJSON without the "hash"
// key. docs/journal.md defines them; they are what Python's
// json.dumps(record_without_hash, sort_keys=True, separators=(",", ":")) gives for the
// record as served.
func AppendHashedJSON(dst []byte, r *Record) []byte {
	return appendRecordJSON(dst, r, false, nil)
}

// flushSize is how much JSON appendRecordJSON buffers before it writes to w.
const flushSize = 32 << 10

// appendRecordJSON writes r with or without its hash. With a non-nil h it writes the JSON
// to h whenever more than flushSize is buffered and returns only what is left, so a record
// of thousands of changes streams through a small buffer.
func appendRecordJSON(dst []byte, r *Record, withHash bool, h hash.Hash) []byte {
	dst = append(dst, `{"changes":[`...)
	for i := range r.Changes {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendChangeJSON(dst, &r.Changes[i])
		if h != nil && len(dst) >= flushSize {
			_, _ = h.Write(dst) // hash.Hash.Write never returns an error
			dst = dst[:0]
		}
	}
	dst = append(dst, ']')
	if withHash {
		dst = append(dst, `,"hash":"`...)
		dst = appendHex(dst, &r.Hash)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"prev_hash":"`...)
	dst = appendHex(dst, &r.PrevHash)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = appendTimeJSON(dst, r.Timestamp)
	return append(dst, '}')
}

func appendHex(dst []byte, h *Hash) []byte {
	for _, b := range h {
		dst = append(dst, hexDigits[b>>4], hexDigits[b&15])
	}
	return dst
}

// AppendJSONString appends s as a JSON string, escaped as every string of the journal's
// JSON is (see appendJSONString).
func AppendJSONString(dst []byte, s string) []byte { return appendJSONString(dst, s) }
