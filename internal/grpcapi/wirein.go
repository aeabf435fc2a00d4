package grpcapi

import (
	"errors"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// decodeTransfers reads a SubmitTransfersRequest from the wire straight into a chunk:
// each transfer's fields are checked as transferRequest checks them, and every string of
// the message is copied into one allocation, instead of protobuf's struct and strings per
// transfer. It accepts exactly what proto.Unmarshal accepts (proto3: the last of a
// repeated scalar wins, unknown fields and fields of the wrong wire type are skipped,
// strings must be UTF-8), which FuzzDecodeTransfers checks against proto.Unmarshal and
// transferRequest. A message of more than ledger.BatchTransfersMax transfers is counted
// but not decoded.
func decodeTransfers(b []byte) (*chunk, error) {
	var items [][]byte
	size := 0 // upper bound of the strings' bytes
	for rest := b; len(rest) > 0; {
		num, typ, n := consumeTag(rest)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		rest = rest[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(rest)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			rest = rest[n:]
			if len(items) <= ledger.BatchTransfersMax {
				items = append(items, v)
				size += len(v)
			} else {
				items = append(items, nil) // counted only
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, rest)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		rest = rest[n:]
	}
	c := &chunk{n: len(items), weight: int64(max(len(items), 1))}
	if c.n > ledger.BatchTransfersMax {
		return c, nil
	}
	var arena strings.Builder
	arena.Grow(size)
	c.reqs = make([]ledger.Request, 0, c.n)
	for i, item := range items {
		var f transferFields
		if err := f.decode(item, &arena); err != nil {
			return nil, err
		}
		r, e := f.request()
		if e != nil {
			c.bad = append(c.bad, badItem{index: i, err: e})
			continue
		}
		c.reqs = append(c.reqs, r)
	}
	return c, nil
}

var errUTF8 = errors.New("grpcapi: a string field is not valid UTF-8")

// consumeTag is protowire.ConsumeTag refusing field numbers above the largest valid one,
// as protobuf's decoder does.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -1
	}
	return num, typ, n
}

// str is a string field's value, copied into the message's arena.
func str(v []byte, arena *strings.Builder) (string, error) {
	if len(v) == 0 {
		return "", nil
	}
	if !utf8.Valid(v) {
		return "", errUTF8
	}
	start := arena.Len()
	arena.Write(v)
	return arena.String()[start:], nil
}

// decode reads one CreateTransferRequest.
func (f *transferFields) decode(b []byte, arena *strings.Builder) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType || num < 1 || num > 9 {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var err error
		switch num {
		case 1:
			f.hasID = true
			f.id, err = str(v, arena)
		case 2:
			f.source, err = str(v, arena)
		case 3:
			f.destination, err = str(v, arena)
		case 4:
			f.amount, err = str(v, arena)
		case 5:
			f.asset, err = str(v, arena)
		case 6:
			f.kind, err = str(v, arena)
		case 7:
			f.reference, err = str(v, arena)
		case 8:
			err = f.decodeMetadata(v, arena)
		case 9:
			f.hold = true
			err = f.decodeHold(v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeMetadata reads one map entry: key 1 and value 2, "" when missing; a later entry
// with the same key wins.
func (f *transferFields) decodeMetadata(b []byte, arena *strings.Builder) error {
	var k, v string
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType || (num != 1 && num != 2) {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		s, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var err error
		if num == 1 {
			k, err = str(s, arena)
		} else {
			v, err = str(s, arena)
		}
		if err != nil {
			return err
		}
	}
	if f.metadata == nil {
		f.metadata = make(map[string]string)
	}
	f.metadata[k] = v
	return nil
}

// decodeHold reads a Hold message (merged into what came before, as protobuf merges a
// repeated message field).
func (f *transferFields) decodeHold(b []byte) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			f.timeout = int64(v)
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}
