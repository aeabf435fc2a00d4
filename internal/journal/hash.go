package journal

import "crypto/sha256"

// RecordHash returns the hash of r as docs/journal.md defines it: SHA-256 over the record's
// canonical JSON without its "hash" field. r.Hash is not read.
func RecordHash(r *Record) Hash {
	return sha256.Sum256(AppendHashedJSON(nil, r))
}

// Seal sets r.Hash from the rest of r.
func Seal(r *Record) { r.Hash = RecordHash(r) }
