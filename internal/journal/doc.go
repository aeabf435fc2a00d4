// Package journal holds the hash-chained record of every committed batch: its binary
// encoding (versioned), the canonical JSON that is hashed and served, and replay/verify.
// It is both the clearing ledger and the event log.
//
// # Invariants
//
// Record n+1 has Seq n+1 and PrevHash equal to record n's Hash; record 1 has a zero
// PrevHash. A record's Hash is SHA-256 over its canonical JSON without the hash
// (AppendHashedJSON), which docs/journal.md defines byte for byte so that anyone can
// recompute it from GET /v1/journal; the JSON encoders here are the only writers of that
// form. A written record never changes: later format versions may add fields to new
// records only. Every value has one binary encoding: decoding then encoding gives the same
// bytes.
package journal
