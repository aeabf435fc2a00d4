// Package journal holds the hash-chained record of every committed batch: its binary
// encoding (versioned), the canonical JSON that is hashed and served, and replay/verify.
// It is both the clearing ledger and the event log.
package journal
