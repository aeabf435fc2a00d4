package pebblestore

import (
	"encoding/binary"
	"strings"
)

// storeFormat versions the key layout and every store-owned encoding (activity rows,
// idempotency answers, API keys). Journal-owned encodings carry their own version byte.
const storeFormat = 1

// Key prefixes; see the package doc.
const (
	prefixMeta     = 'm'
	prefixRecord   = 'j'
	prefixTransfer = 't'
	prefixPending  = 'p'
	prefixAccount  = 'a'
	prefixOwner    = 'o'
	prefixAsset    = 's'
	prefixActivity = 'x'
	prefixIdem     = 'i'
	prefixAPIKey   = 'k'
	prefixKeyHash  = 'h'
	prefixFollow   = 'f' // store.Meta: f/<ns> 0x00 <key>
)

var (
	keyFormat     = []byte("m/format")
	keyHead       = []byte("m/head")
	keyCheckpoint = []byte("m/checkpoint")
)

const sep = 0 // separates the parts of a key

func appendPrefix(dst []byte, p byte) []byte { return append(dst, p, '/') }

// idKey is <p>/<id>.
func idKey(dst []byte, p byte, id string) []byte { return append(appendPrefix(dst, p), id...) }

// pairKey is <p>/<a> 0x00 <b>.
func pairKey(dst []byte, p byte, a, b string) []byte {
	dst = append(appendPrefix(dst, p), a...)
	dst = append(dst, sep)
	return append(dst, b...)
}

// recordKey is j/<seq>.
func recordKey(dst []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appendPrefix(dst, prefixRecord), seq)
}

// activityPrefix is x/<account> 0x00: the prefix of one account's activity rows.
func activityPrefix(dst []byte, account string) []byte {
	dst = append(appendPrefix(dst, prefixActivity), account...)
	return append(dst, sep)
}

// activityKey is x/<account> 0x00 <time>. Times are positive (ledger.State.Apply starts at
// 1), so their uint64 form sorts like the int64.
func activityKey(dst []byte, account string, time int64) []byte {
	return binary.BigEndian.AppendUint64(activityPrefix(dst, account), uint64(time))
}

// prefixEnd returns the least key greater than every key starting with prefix, for an
// iterator's UpperBound. No prefix used here ends in 0xff.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	end[len(end)-1]++
	return end
}

// hasSep reports whether s contains the part separator, which would make its key ambiguous.
func hasSep(s string) bool { return strings.IndexByte(s, sep) >= 0 }
