package httpapi

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Hand-written strict decoders for the two hot request bodies, POST /v1/transfers and
// POST /v1/transfers/batch. decodeStrict (encoding/json plus the exactKeys pass) spends far
// more time in reflection than the ledger spends on a transfer; these do one pass over the
// bytes and allocate one string arena per transfer.
//
// The contract is equivalence: decodeTransfer(b) accepts exactly the bodies that
// decodeStrict(b, &transferJSON{}) accepts, with the same values, and rejects the others
// with the same code (invalid_request); decodeBatch likewise for batchJSON.
// FuzzFastDecodeTransfer and FuzzFastDecodeBatch check it against decodeStrict. What that
// means in detail (encoding/json v1 semantics, made exact by exactKeys):
//   - JSON whitespace is space, tab, CR and LF; the body is one value and only whitespace
//     may follow it.
//   - The top value is an object or null (null decodes to the zero value); any other value
//     has the wrong type.
//   - Keys match field names exactly after unescaping ("sourc\u0065" is source); a key that
//     differs in case, an unknown key and a repeated key (in any object, metadata too) are
//     rejected.
//   - Strings decode like encoding/json: every JSON escape, \uXXXX surrogate pairs joined, a
//     lone surrogate and each byte of invalid UTF-8 become U+FFFD; raw control characters
//     are a syntax error.
//   - null leaves a field as it is: "" for a string, nil for a pointer or map, and a
//     metadata value of null is "". The amount is the exception: encoding/json hands null
//     to amountJSON.UnmarshalJSON, which rejects everything but a string.
//   - hold.timeout_seconds decodes like strconv.ParseInt: -0 is 0; a fraction or exponent
//     (1.0, 1e2) or a value outside int64 is the wrong type.
//   - Batch items are any JSON value, kept as raw bytes for decodeTransfer; nesting deeper
//     than encoding/json's limit of 10000 (counting the outer object and array) is a
//     syntax error of the whole body.

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// strPlain marks the bytes that stand for themselves inside a JSON string: printable ASCII
// except the quote and the backslash.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// jparser is a cursor over one JSON text.
type jparser struct {
	b []byte
	i int
}

// strSpan is a JSON string as it appears in the body, between its quotes. plain means its
// bytes are its value (no escape, valid UTF-8).
type strSpan struct {
	raw   []byte
	plain bool
}

func (p *jparser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the byte at the cursor, or 0 at the end. A NUL byte is invalid wherever
// peek is used, so the two need not be told apart.
func (p *jparser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// syntax is the error for the byte at the cursor.
func (p *jparser) syntax() error {
	if p.i >= len(p.b) {
		return invalid("malformed JSON: unexpected end of input")
	}
	return invalid("malformed JSON: syntax error at byte %d", p.i+1)
}

// expect consumes c, after and before whitespace.
func (p *jparser) expect(c byte) error {
	p.ws()
	if p.peek() != c {
		return p.syntax()
	}
	p.i++
	p.ws()
	return nil
}

// lit consumes the literal s (true, false or null).
func (p *jparser) lit(s string) error {
	for k := 0; k < len(s); k++ {
		if p.i >= len(p.b) || p.b[p.i] != s[k] {
			return p.syntax()
		}
		p.i++
	}
	return nil
}

// end checks that only whitespace follows the value.
func (p *jparser) end() error {
	p.ws()
	if p.i != len(p.b) {
		return invalid("malformed JSON: data after the object")
	}
	return nil
}

// next consumes what follows a member of an object or array: a comma (true) or close
// (false).
func (p *jparser) next(close byte) (more bool, err error) {
	p.ws()
	switch p.peek() {
	case ',':
		p.i++
		p.ws()
		return true, nil
	case close:
		p.i++
		return false, nil
	}
	return false, p.syntax()
}

// str reads the JSON string at the cursor (its opening quote), checking it as
// encoding/json's scanner does.
func (p *jparser) str() (strSpan, error) {
	if p.peek() != '"' {
		return strSpan{}, p.syntax()
	}
	b := p.b
	start := p.i + 1
	plain, high := true, false
	for i := start; i < len(b); {
		c := b[i]
		if strPlain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			s := strSpan{raw: b[start:i:i], plain: plain}
			if high && plain {
				s.plain = utf8.Valid(s.raw)
			}
			p.i = i + 1
			return s, nil
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				p.i = len(b)
				return strSpan{}, p.syntax()
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) || !isHex(b[k]) {
						p.i = k
						return strSpan{}, p.syntax()
					}
				}
				i += 6
			default:
				p.i = i + 1
				return strSpan{}, p.syntax()
			}
		case c < 0x20:
			p.i = i
			return strSpan{}, p.syntax()
		default: // 0x80 and up: UTF-8 (or not), checked at the end
			high = true
			i++
		}
	}
	p.i = len(b)
	return strSpan{}, p.syntax()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// appendUnquote appends the value of the string s (checked by str, without its quotes) to
// dst, exactly as encoding/json's unquote makes it.
func appendUnquote(dst, s []byte) []byte {
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch e := s[r+1]; e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := getu4(s[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
						dst = utf8.AppendRune(dst, dec)
						r += 6
						continue
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // " \ /
				dst = append(dst, e)
			}
			r += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:]) // invalid UTF-8: RuneError, one byte
			dst = utf8.AppendRune(dst, rr)
			r += size
		}
	}
	return dst
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// key reads an object key and returns its value, unescaped into buf when it has to be.
func (p *jparser) key(buf []byte) ([]byte, error) {
	s, err := p.str()
	if err != nil {
		return nil, err
	}
	if s.plain {
		return s.raw, nil
	}
	return appendUnquote(buf, s.raw), nil
}

// number checks the JSON number at the cursor.
func (p *jparser) number() error {
	if p.peek() == '-' {
		p.i++
	}
	switch c := p.peek(); {
	case c == '0':
		p.i++
	case '1' <= c && c <= '9':
		p.digits()
	default:
		return p.syntax()
	}
	if p.peek() == '.' {
		p.i++
		if c := p.peek(); c < '0' || c > '9' {
			return p.syntax()
		}
		p.digits()
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if c := p.peek(); c < '0' || c > '9' {
			return p.syntax()
		}
		p.digits()
	}
	return nil
}

func (p *jparser) digits() {
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
}

// int64 reads a JSON number into an int64 as encoding/json does (strconv.ParseInt of the
// literal): a fraction, an exponent or a value out of range is the wrong type.
func (p *jparser) int64(field string) (int64, error) {
	start := p.i
	if err := p.number(); err != nil {
		return 0, err
	}
	lit := p.b[start:p.i]
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var u uint64
	for _, c := range lit {
		if c < '0' || c > '9' || u > (1<<63)/10 {
			return 0, wrongType(field)
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case !neg && u <= 1<<63-1:
		return int64(u), nil
	case neg && u <= 1<<63:
		return int64(-u), nil
	}
	return 0, wrongType(field)
}

// skip checks one JSON value of any kind at the cursor; depth is the number of objects and
// arrays it is in.
func (p *jparser) skip(depth int) error {
	switch c := p.peek(); {
	case c == '"':
		_, err := p.str()
		return err
	case c == '{' || c == '[':
		if depth++; depth > maxJSONDepth {
			return invalid("malformed JSON: nested more than %d deep", maxJSONDepth)
		}
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		p.i++
		p.ws()
		if p.peek() == close {
			p.i++
			return nil
		}
		for {
			if close == '}' {
				if _, err := p.str(); err != nil {
					return err
				}
				if err := p.expect(':'); err != nil {
					return err
				}
			}
			if err := p.skip(depth); err != nil {
				return err
			}
			if more, err := p.next(close); err != nil || !more {
				return err
			}
		}
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return p.syntax()
}

// The fields of transferJSON; the first six are strings.
const (
	tfID = iota
	tfSource
	tfDestination
	tfAsset
	tfKind
	tfReference
	tfAmount
	tfMetadata
	tfHold
)

func transferField(k []byte) int {
	switch string(k) {
	case "id":
		return tfID
	case "source":
		return tfSource
	case "destination":
		return tfDestination
	case "asset":
		return tfAsset
	case "kind":
		return tfKind
	case "reference":
		return tfReference
	case "amount":
		return tfAmount
	case "metadata":
		return tfMetadata
	case "hold":
		return tfHold
	}
	return -1
}

var transferFieldNames = [...]string{"id", "source", "destination", "asset", "kind", "reference", "amount", "metadata", "hold"}

func wrongType(field string) error {
	return invalid("malformed JSON: field %q has the wrong type", field)
}

func unknownField(k []byte) error {
	return invalid("malformed JSON: unknown field %s", shortQuote(k))
}

func repeatedField(k []byte) error {
	return invalid("malformed JSON: field %s appears twice", shortQuote(k))
}

// shortQuote quotes a client's key for an error detail, cut to 40 bytes.
func shortQuote(k []byte) string {
	if len(k) > 40 {
		return strconv.Quote(strings.ToValidUTF8(string(k[:40]), "\uFFFD")) + "..."
	}
	return strconv.Quote(string(k))
}

// decodeTransfer decodes the body of POST /v1/transfers (and one batch item) as
// decodeStrict(b, &transferJSON{}) does; see the top of this file.
func decodeTransfer(b []byte) (transferJSON, error) {
	var t transferJSON
	p := jparser{b: b}
	p.ws()
	switch p.peek() {
	case 'n':
		if err := p.lit("null"); err != nil {
			return t, err
		}
		return t, p.end()
	case '{':
		p.i++
	default:
		if p.i == len(b) {
			return t, p.syntax()
		}
		return t, invalid("malformed JSON: a transfer must be a JSON object")
	}
	var (
		seen       uint16
		strs       [tfReference + 1]strSpan // by field; empty when absent or null
		hasID      bool
		metaArr    [16]strSpan
		meta       = metaArr[:0] // key, value, key, value...
		hasMeta    bool
		hasHold    bool
		hasTimeout bool
		timeout    int64
		kbuf       [32]byte
	)
	p.ws()
	if p.peek() == '}' {
		p.i++
	} else {
		for more := true; more; {
			k, err := p.key(kbuf[:0])
			if err != nil {
				return t, err
			}
			f := transferField(k)
			if f < 0 {
				return t, unknownField(k)
			}
			if seen&(1<<f) != 0 {
				return t, repeatedField(k)
			}
			seen |= 1 << f
			if err := p.expect(':'); err != nil {
				return t, err
			}
			c := p.peek()
			switch {
			case c == 'n' && f != tfAmount:
				// null leaves the field as it is; encoding/json gives the amount's null
				// to amountJSON.UnmarshalJSON, which rejects it below.
				if err := p.lit("null"); err != nil {
					return t, err
				}
			case f <= tfReference:
				if c != '"' {
					return t, wrongType(transferFieldNames[f])
				}
				s, err := p.str()
				if err != nil {
					return t, err
				}
				strs[f] = s
				hasID = hasID || f == tfID // "id": "" is set, unlike "id": null
			case f == tfAmount:
				if c != '"' {
					return t, invalid("malformed JSON: amounts are JSON strings of decimal digits, not numbers")
				}
				s, err := p.str()
				if err != nil {
					return t, err
				}
				v := s.raw
				if !s.plain {
					var abuf [48]byte
					v = appendUnquote(abuf[:0], v)
				}
				a, err := ledger.ParseAmount(string(v))
				if err != nil {
					return t, invalid("malformed JSON: %s", err)
				}
				t.Amount = amountJSON{v: a, set: true}
			case f == tfMetadata:
				if c != '{' {
					return t, wrongType("metadata")
				}
				hasMeta = true
				if meta, err = p.metadata(meta); err != nil {
					return t, err
				}
			default: // hold
				if c != '{' {
					return t, wrongType("hold")
				}
				hasHold = true
				if hasTimeout, timeout, err = p.hold(); err != nil {
					return t, err
				}
			}
			if more, err = p.next('}'); err != nil {
				return t, err
			}
		}
	}
	if err := p.end(); err != nil {
		return t, err
	}

	// One allocation holds every string of the transfer.
	n := 0
	for _, s := range strs {
		n += s.size()
	}
	for _, s := range meta {
		n += s.size()
	}
	var a strArena
	a.sb.Grow(n)
	if hasID {
		id := a.str(strs[tfID])
		t.ID = &id
	}
	t.Source = a.str(strs[tfSource])
	t.Destination = a.str(strs[tfDestination])
	t.Asset = a.str(strs[tfAsset])
	t.Kind = a.str(strs[tfKind])
	t.Reference = a.str(strs[tfReference])
	if hasMeta {
		t.Metadata = make(map[string]string, len(meta)/2)
		for i := 0; i < len(meta); i += 2 {
			k := a.str(meta[i])
			if _, dup := t.Metadata[k]; dup {
				return transferJSON{}, repeatedField([]byte(k))
			}
			t.Metadata[k] = a.str(meta[i+1])
		}
	}
	if hasHold {
		h := new(struct {
			h holdJSON
			n int64
		})
		if hasTimeout {
			h.n = timeout
			h.h.TimeoutSeconds = &h.n
		}
		t.Hold = &h.h
	}
	return t, nil
}

// metadata reads the metadata object at the cursor into key and value spans (a null value
// is an empty span). Repeated keys are caught when the map is built.
func (p *jparser) metadata(meta []strSpan) ([]strSpan, error) {
	p.i++ // {
	p.ws()
	if p.peek() == '}' {
		p.i++
		return meta, nil
	}
	for {
		k, err := p.str()
		if err != nil {
			return meta, err
		}
		if err := p.expect(':'); err != nil {
			return meta, err
		}
		var v strSpan
		switch p.peek() {
		case '"':
			if v, err = p.str(); err != nil {
				return meta, err
			}
		case 'n':
			if err := p.lit("null"); err != nil {
				return meta, err
			}
		default:
			return meta, wrongType("metadata")
		}
		meta = append(meta, k, v)
		if more, err := p.next('}'); err != nil || !more {
			return meta, err
		}
	}
}

// hold reads the hold object at the cursor.
func (p *jparser) hold() (set bool, timeout int64, err error) {
	p.i++ // {
	p.ws()
	if p.peek() == '}' {
		p.i++
		return false, 0, nil
	}
	seen := false
	var kbuf [32]byte
	for {
		k, err := p.key(kbuf[:0])
		if err != nil {
			return false, 0, err
		}
		if string(k) != "timeout_seconds" {
			return false, 0, unknownField(k)
		}
		if seen {
			return false, 0, repeatedField(k)
		}
		seen = true
		if err := p.expect(':'); err != nil {
			return false, 0, err
		}
		switch c := p.peek(); {
		case c == 'n':
			if err := p.lit("null"); err != nil {
				return false, 0, err
			}
		case c == '-' || '0' <= c && c <= '9':
			if timeout, err = p.int64("hold.timeout_seconds"); err != nil {
				return false, 0, err
			}
			set = true
		default:
			return false, 0, wrongType("hold.timeout_seconds")
		}
		more, err := p.next('}')
		if err != nil || !more {
			return set, timeout, err
		}
	}
}

// size is at most the length of the string's value: an escape is never longer than what
// it stands for, and one byte of invalid UTF-8 becomes the three bytes of U+FFFD.
func (s strSpan) size() int {
	if s.plain {
		return len(s.raw)
	}
	return 3 * len(s.raw)
}

// strArena makes the strings of one transfer out of one allocation.
type strArena struct {
	sb  strings.Builder
	tmp [64]byte
}

func (a *strArena) str(s strSpan) string {
	if len(s.raw) == 0 {
		return ""
	}
	start := a.sb.Len()
	if s.plain {
		a.sb.Write(s.raw)
	} else {
		a.sb.Write(appendUnquote(a.tmp[:0], s.raw))
	}
	return a.sb.String()[start:]
}

// decodeBatch decodes the body of POST /v1/transfers/batch as decodeStrict(b, &batchJSON{})
// does, returning atomic and the raw bytes of each item of transfers (sub-slices of b) for
// decodeTransfer. Past ledger.BatchTransfersMax+1 items it checks the rest of the body but
// keeps no more of them: that many already make the batch too large.
func decodeBatch(b []byte) (atomic *bool, items [][]byte, err error) {
	p := jparser{b: b}
	p.ws()
	switch p.peek() {
	case 'n':
		if err := p.lit("null"); err != nil {
			return nil, nil, err
		}
		return nil, nil, p.end()
	case '{':
		p.i++
	default:
		if p.i == len(b) {
			return nil, nil, p.syntax()
		}
		return nil, nil, invalid("malformed JSON: a batch must be a JSON object")
	}
	var (
		seenAtomic, seenTransfers bool
		kbuf                      [32]byte
	)
	p.ws()
	if p.peek() == '}' {
		p.i++
		return nil, nil, p.end()
	}
	for more := true; more; {
		k, err := p.key(kbuf[:0])
		if err != nil {
			return nil, nil, err
		}
		switch string(k) {
		case "atomic":
			if seenAtomic {
				return nil, nil, repeatedField(k)
			}
			seenAtomic = true
			if err := p.expect(':'); err != nil {
				return nil, nil, err
			}
			switch p.peek() {
			case 't', 'f':
				v := p.peek() == 't'
				lit := "false"
				if v {
					lit = "true"
				}
				if err := p.lit(lit); err != nil {
					return nil, nil, err
				}
				atomic = &v
			case 'n':
				if err := p.lit("null"); err != nil {
					return nil, nil, err
				}
			default:
				return nil, nil, wrongType("atomic")
			}
		case "transfers":
			if seenTransfers {
				return nil, nil, repeatedField(k)
			}
			seenTransfers = true
			if err := p.expect(':'); err != nil {
				return nil, nil, err
			}
			switch p.peek() {
			case '[':
				if items, err = p.items(); err != nil {
					return nil, nil, err
				}
			case 'n':
				if err := p.lit("null"); err != nil {
					return nil, nil, err
				}
			default:
				return nil, nil, wrongType("transfers")
			}
		default:
			return nil, nil, unknownField(k)
		}
		if more, err = p.next('}'); err != nil {
			return nil, nil, err
		}
	}
	if err := p.end(); err != nil {
		return nil, nil, err
	}
	return atomic, items, nil
}

// items reads the transfers array at the cursor (depth 2: in the body's object).
func (p *jparser) items() ([][]byte, error) {
	p.i++ // [
	p.ws()
	items := [][]byte{}
	if p.peek() == ']' {
		p.i++
		return items, nil
	}
	for {
		start := p.i
		if err := p.skip(2); err != nil {
			return nil, err
		}
		if len(items) <= ledger.BatchTransfersMax {
			items = append(items, p.b[start:p.i:p.i])
		}
		if more, err := p.next(']'); err != nil || !more {
			return items, err
		}
	}
}
