// Package pebblestore is the default engine.Store: a Pebble database in one data directory,
// with no external service. Every Commit is one Pebble batch, synced once.
//
// # Key layout
//
// Every key is a one-byte prefix, '/', then its parts; integers are big-endian and fixed
// width so that keys sort by them; 0x00 separates parts. Ids and scopes contain no 0x00
// (Commit refuses a scope with one) and the idempotency key is the last part; an owner may
// hold 0x00, so listing an owner's accounts skips keys of longer owners.
//
//	m/format                  store format version (storeFormat); Open refuses any other
//	m/head                    seq (8) + hash (32) of the newest record, checked by Load
//	j/<seq>                   journal.AppendRecord: the clearing ledger
//	t/<transfer id>           journal.AppendTransfer: the transfer as of its latest change
//	p/<transfer id>           empty; present while the transfer is pending (Load reads only these)
//	a/<account id>            journal.AppendAccount: the account after the latest commit
//	o/<owner> 0x00 <id>       empty; accounts by owner (accounts with an owner only)
//	s/<asset code>            scale (1 byte) of an asset created by an asset_create change
//	x/<account> 0x00 <time>   activity row: one per transfer change touching the account
//	i/<scope> 0x00 <key>      idempotency answer
//	k/<key id>                API key
//	h/<sha256 of secret>      API key id
//
// A transfer posted at once writes t/ and two x/ rows (source and destination), and its
// share of j/ (one key per batch) and a/ (one key per touched account per batch). A hold
// adds p/ while it is pending.
//
// # Invariants
//
// The keys a record derives (t/, p/, a/, o/, s/, x/, m/head) are written in the same batch as
// its j/ key, so they never disagree with the journal after a crash. Change times are unique
// and positive, so x/ keys are unique. Load checks the newest record's hash and its link to
// the record before it, and refuses to start otherwise; `tpwallet verify` checks the rest
// with EachRecord, EachAccount, EachTransfer and EachActivity.
//
// pebblestore imports engine only for its sentinel errors (engine.ErrNotFound,
// engine.ErrBadCursor), so that callers can test them with errors.Is; engine does not import
// pebblestore, so there is no cycle.
package pebblestore
