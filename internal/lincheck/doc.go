// Package lincheck checks that histories of concurrent ledger operations are linearizable:
// a sequential model of accounts, transfers and holds for porcupine, and a Recorder of
// operations with their invocation and response times. It does no I/O of its own; the
// clients that drive a real server live in the tests (cmd/tpwallet).
//
// # The model
//
// A history is split into groups that share no account and no transfer, checked one by one
// (porcupine partitions). A group's state is the balance of each of its few accounts
// (debits and credits, posted and pending) and the status, amount and amount posted of each
// transfer. Operations: create a transfer (client-chosen id, posted at once or a hold that
// never expires), post a hold (all, or part of it, final or not), void it, read an account,
// read a transfer. Expiry is not modelled: histories use holds without a timeout.
//
// # Unknown outcomes
//
// An operation whose answer the client never got (connection lost, 5xx, server killed) is
// recorded with Outcome Unknown. It may have taken effect at any time after its invocation
// or never, so its Step leads to two states, applied and not (the model is a
// porcupine.NondeterministicModel). It returns at the end of the history, or, when the
// process that received it is known to have died, at that death (Call.EndUnknownBy): a dead
// process changes nothing more, and the bound keeps the search small.
package lincheck
