// Package ledger holds tpwallet's domain: assets, 128-bit amounts, accounts, transfers, holds,
// and the deterministic Apply that accepts or rejects a batch. It does no I/O.
//
// # Invariants
//
// After every Apply: for each asset the balances of all accounts sum to zero and pending
// debits equal pending credits; no account without AllowNegative has a negative available
// balance; pending totals are never negative (they are unsigned and checked); a transfer id
// names one transfer. A rejected request changes nothing; a failed atomic Command changes
// nothing. A broken invariant is a bug and panics.
package ledger
