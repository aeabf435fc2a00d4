// Package engine is the single writer of a ledger shard: requests queue, the writer applies
// whatever is queued as one batch, commits it to the Store with one sync, and only then
// answers each caller. Reads go to the Store and never wait for the writer.
package engine
