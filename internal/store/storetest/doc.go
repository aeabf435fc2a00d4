// Package storetest is the conformance suite every engine.Store backend passes unchanged:
// storetest.Run(t, newStore), called from the backend's own tests. The records it commits
// are built with the real ledger.State.Apply and journal.Seal, as the engine builds them,
// and every read is checked against what Apply returned.
//
// Besides engine.Store's doc comments, the suite pins down what every backend does:
//   - Entries and BalanceAt of an unknown account return engine.ErrNotFound; Transfers of
//     an unknown account is an empty page.
//   - Pages: no page is longer than the limit (clamped to 1–1000), every page but the last is
//     full, and next is "" exactly on the last page. A cursor another list made, or any
//     string the store did not make, is engine.ErrBadCursor.
//   - An idempotency answer is returned up to and including its ExpiresAt.
//   - A refused Commit (seq, prev_hash or hash wrong) writes nothing, side data included,
//     and the next valid Commit is taken.
package storetest
