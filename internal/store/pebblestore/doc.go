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
//	m/checkpoint              seq (8) + timestamp (8) of the record the a/ keys are as of
//	j/<seq>                   journal.AppendRecord: the clearing ledger
//	t/<transfer id>           journal.AppendTransfer: the transfer as of its latest change
//	p/<transfer id>           empty; present while the transfer is pending (Load reads only these)
//	a/<account id>            journal.AppendAccount: the account as of the latest checkpoint
//	o/<owner> 0x00 <id>       empty; accounts by owner (accounts with an owner only)
//	s/<asset code>            scale (1 byte) of an asset created by an asset_create change
//	x/<account> 0x00 <time>   activity row: one per transfer change touching the account
//	i/<scope> 0x00 <key>      idempotency answer
//	k/<key id>                API key
//	h/<sha256 of secret>      API key id
//
// A transfer posted at once writes t/ and two x/ rows (source and destination), and its
// share of j/ and m/head (two keys per batch): about 3 keys per transfer. A hold adds p/
// while it is pending. An account created adds o/ (if it has an owner).
//
// # Accounts: memory and checkpoints
//
// The accounts are kept in memory (Load fills it, Commit updates it once its batch is
// durable), and Account and Accounts read them from there. A Commit writes no a/ key unless
// it checkpoints: when, since the last checkpoint, 131,072 accounts changed, 4,096 records or
// 2^18 changes were committed, or 2 s of record time (timestamps, not the wall clock) went by,
// the Commit's batch also holds the a/ key of every account changed since then and
// m/checkpoint naming its own record (defaultCheckpoints). Close writes a last one (synced),
// so a clean restart replays nothing; but not after a failed Commit, whose accounts memory
// may still hold (Pebble panics in Fatalf after applying a batch whose WAL sync failed). Steady state, checkpoints cost at most one a/ key per
// account per interval: about 0.04 keys per transfer for 10,000 accounts. They save little
// when the traffic is spread over so many accounts that few change twice in an interval.
//
// Load reads a/ and m/checkpoint, then replays the records after the checkpoint through the
// head: account_create, account_freeze and account_unfreeze take the account the change
// carries; transfer changes move Change.Amount between posted and pending totals (see
// replayer.transfer), and the posted balances that follow must be the change's source_after
// and destination_after, a pair assertion whose failure names the record. Pending totals
// must then add up to what the pending holds (p/ and t/) hold. The replay is bounded by the
// checkpoint interval, not the history. EachAccount yields the same: the accounts as of the
// head. A directory written before checkpoints has no m/checkpoint and its a/ keys are as of
// m/head; Load takes them as a checkpoint at the head and writes m/checkpoint so (Open
// writes m/checkpoint with m/format in a new directory).
//
// # Reads: one view per write
//
// Reads see the store through a view (view.go): a Pebble snapshot taken at the end of each
// write, once its accounts and head are published, with the write's generation; accounts
// in memory keep their value before the latest change, so a reader finds an account as of
// its view's generation. A read thus sees all of a Commit or none of it, although Pebble
// shows a batch to plain reads before its sync returns. Reads still never wait for Commit.
//
// # Invariants
//
// The keys a record derives (t/, p/, o/, s/, x/, m/head) are written in the same batch as
// its j/ key, so they never disagree with the journal after a crash; a/ and m/checkpoint are
// written together, so a/ is always the accounts as of the record m/checkpoint names. Change
// times are unique and positive, so x/ keys are unique. Load checks the newest record's hash
// and its link to the record before it, and the hash of every record it replays, and refuses
// to start otherwise; `tpwallet verify` checks the rest with EachRecord, EachAccount,
// EachTransfer and EachActivity.
//
// # Durability of what reads see
//
// Pebble makes a batch visible as soon as it is applied to the memtable, before its WAL sync
// returns. No read sees that: every read goes through the current view (view.go), a Pebble
// snapshot taken once a Commit's sync has returned and its accounts and head are published,
// and Journal also stops at the head. So reads show only durable commits, each whole.
//
// pebblestore satisfies engine.Store without importing engine: its reads return the
// sentinel errors of package store (store.ErrNotFound, store.ErrBadCursor), which engine
// re-exports, so callers test them with errors.Is.
package pebblestore
