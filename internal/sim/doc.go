// Package sim is the deterministic simulation of the engine on pebblestore: from a seed, a
// random workload runs against a simulated disk that fails writes and syncs, fills up and
// loses power at every step of a commit, of a recovery and of a shutdown; after each crash
// the store is recovered from what the disk kept and checked against what clients were told.
// The same seed replays the same run, file operation for file operation.
//
// # What a run checks
//
//   - After every recovery: no acknowledged record, transfer, account or idempotency answer
//     is missing or changed; a request in flight at the crash (or answered with an error) is
//     found whole, its record and idempotency answers together, or not at all; the journal
//     verifies from its first record; Load's state, the store's accounts and a replay of the
//     journal agree, the balances are the sum of the transfers, and the invariants hold.
//   - After a failed write or sync: the engine did not acknowledge the request, and answers
//     ErrStopped to everything after it (fail-stop), none of which ever reaches the store.
//
// # Determinism
//
// One goroutine submits one request at a time; the engine's clock is the simulation's, which
// moves only before an empty submission (so the hold expiry the writer's timer may start is
// the same record as the one that submission would make); Pebble runs with compactions off
// and a memtable no run fills, so no background goroutine writes files; the injector counts
// writes only (reads and removes happen in the background); and crash images are built from
// the synced data, torn with random streams seeded by the seed. docs/reliability.md says how
// to run it.
package sim
