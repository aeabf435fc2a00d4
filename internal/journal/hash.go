package journal

import (
	"crypto/sha256"
	"hash"
	"sync"
)

// RecordHash returns the hash of r as docs/journal.md defines it: SHA-256 over the record's
// canonical JSON without its "hash" field (AppendHashedJSON). r.Hash is not read.
func RecordHash(r *Record) Hash {
	h := hasherPool.Get().(*hasher)
	defer hasherPool.Put(h)
	return h.hash(r)
}

// Seal sets r.Hash from the rest of r.
func Seal(r *Record) { r.Hash = RecordHash(r) }

// hasher computes RecordHash, streaming the JSON through a small reused buffer instead of
// building the whole record (megabytes for a batch of 8,190 transfers) in memory.
type hasher struct {
	h   hash.Hash
	buf []byte
	sum Hash // scratch for h.Sum: a local array would escape through the interface call
}

var hasherPool = sync.Pool{New: func() any { return newHasher() }}

func newHasher() *hasher {
	return &hasher{h: sha256.New(), buf: make([]byte, 0, flushSize+16<<10)}
}

func (x *hasher) hash(r *Record) Hash {
	x.h.Reset()
	buf := appendRecordJSON(x.buf[:0], r, false, x.h)
	_, _ = x.h.Write(buf) // hash.Hash.Write never returns an error
	if cap(buf) <= 4*flushSize {
		x.buf = buf[:0] // keep the buffer unless one huge change grew it
	}
	x.h.Sum(x.sum[:0])
	return x.sum
}
