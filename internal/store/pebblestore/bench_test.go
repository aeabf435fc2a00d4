package pebblestore_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

const benchAccounts = 10_000

// BenchmarkCommit commits records of posted transfers between random accounts of 10,000,
// with fsync on, as the engine does: Apply and Seal run outside the timer, Commit (which
// encodes, checks the record's hash again and syncs one batch) inside. keys/transfer counts
// every key the Commits wrote, checkpoints included (the default policy).
func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{8000, 64} {
		b.Run(fmt.Sprintf("transfers=%d", n), func(b *testing.B) { benchCommit(b, n) })
	}
}

func benchCommit(b *testing.B, perRecord int) {
	s, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		b.StopTimer() // Close waits for background flushes: not a commit's cost
		s.Close()
	}()
	ctx := b.Context()
	st, head, err := s.Load(ctx)
	if err != nil {
		b.Fatal(err)
	}
	now := int64(1_767_225_600e9)
	commit := func(cmds []ledger.Command) *journal.Commit {
		now += 1e6
		bt := st.Apply(now, cmds)
		c := &journal.Commit{Accounts: bt.Touched}
		if len(bt.Changes) > 0 {
			c.Record = &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: bt.Time, Changes: bt.Changes}
			journal.Seal(c.Record)
			head = journal.Head{Seq: c.Record.Seq, Hash: c.Record.Hash}
		}
		return c
	}
	ids := make([]string, benchAccounts)
	var cmds []ledger.Command
	for i := range ids {
		ids[i] = fmt.Sprintf("acc-%05d", i)
		cmds = append(cmds, ledger.Command{Requests: []ledger.Request{{Op: ledger.OpCreateAccount,
			Account: ledger.AccountRequest{ID: ids[i], Owner: "user:" + ids[i], Asset: "USD", AllowNegative: true}}}})
	}
	if err := s.Commit(ctx, commit(cmds)); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]ledger.Request, perRecord)
	keys := 0
	var committing time.Duration // Commit alone, to be sure nothing else is counted
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for i := range reqs {
			src := rng.IntN(benchAccounts)
			dst := (src + 1 + rng.IntN(benchAccounts-1)) % benchAccounts
			reqs[i] = ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
				Source: ids[src], Destination: ids[dst], Amount: ledger.AmountFromUint64(uint64(1 + rng.IntN(10_000)))}}
		}
		c := commit([]ledger.Command{{Requests: reqs, Atomic: true}})
		if len(c.Record.Changes) != perRecord {
			b.Fatalf("applied %d of %d transfers", len(c.Record.Changes), perRecord)
		}
		b.StartTimer()
		start := time.Now()
		if err := s.Commit(ctx, c); err != nil {
			b.Fatal(err)
		}
		committing += time.Since(start)
		// j/ + m/head, t/ + 2 x/ each; with a checkpoint, a/ per account changed since the last
		// one and m/checkpoint.
		keys += s.LastCommitKeys()
	}
	b.ReportMetric(float64(b.N*perRecord)/committing.Seconds(), "transfers/s")
	b.ReportMetric(float64(keys)/float64(b.N*perRecord), "keys/transfer")
}

// BenchmarkRecordHash is what Commit's pair assertion costs: hashing a record of 8,000
// transfers once more (Commit does it on another goroutine while it builds the batch).
func BenchmarkRecordHash(b *testing.B) {
	st := ledger.NewState()
	var cmds []ledger.Command
	for i := range 2 {
		cmds = append(cmds, ledger.Command{Requests: []ledger.Request{{Op: ledger.OpCreateAccount,
			Account: ledger.AccountRequest{ID: fmt.Sprint("a", i), Asset: "USD", AllowNegative: true}}}})
	}
	st.Apply(1, cmds)
	reqs := make([]ledger.Request, 8000)
	for i := range reqs {
		reqs[i] = ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
			Source: "a0", Destination: "a1", Amount: ledger.AmountFromUint64(uint64(i + 1))}}
	}
	bt := st.Apply(2, []ledger.Command{{Requests: reqs}})
	r := &journal.Record{Seq: 2, Timestamp: bt.Time, Changes: bt.Changes}
	for b.Loop() {
		journal.RecordHash(r)
	}
	b.ReportMetric(float64(b.N*len(reqs))/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkLoad measures a restart (Open and Load) of a store holding 1,000,000 transfers
// (batches of 8,000 between 10,000 accounts, one in a hundred a hold that stays pending):
// "closed" after Close (its checkpoint is the head: nothing to replay), "crash" after a
// crash just before the next checkpoint was due, so that Load replays as much as the default
// policy lets it (2^18 changes, rounded up to whole records). Setting up takes about 10 s
// and each restart up to a second: -bench=Load -benchtime=3x is enough.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	s, err := pebblestore.Open(dir, pebblestore.Options{NoSync: true}) // setup only: Load reads
	if err != nil {
		b.Fatal(err)
	}
	st, head, err := s.Load(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	now := int64(1_767_225_600e9)
	commit := func(cmds []ledger.Command) {
		now += 20e6 // 20 ms a batch: about what a batch of 8,000 costs
		bt := st.Apply(now, cmds)
		r := &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: bt.Time, Changes: bt.Changes}
		journal.Seal(r)
		if err := s.Commit(b.Context(), &journal.Commit{Record: r, Accounts: bt.Touched}); err != nil {
			b.Fatal(err)
		}
		head = journal.Head{Seq: r.Seq, Hash: r.Hash}
	}
	ids := make([]string, benchAccounts)
	var cmds []ledger.Command
	for i := range ids {
		ids[i] = fmt.Sprintf("acc-%05d", i)
		cmds = append(cmds, ledger.Command{Requests: []ledger.Request{{Op: ledger.OpCreateAccount,
			Account: ledger.AccountRequest{ID: ids[i], Owner: "user:" + ids[i], Asset: "USD", AllowNegative: true}}}})
	}
	commit(cmds)
	rng := rand.New(rand.NewPCG(1, 2))
	transfers := 0
	batch := func() {
		reqs := make([]ledger.Request, 8000)
		for i := range reqs {
			src := rng.IntN(benchAccounts)
			dst := (src + 1 + rng.IntN(benchAccounts-1)) % benchAccounts
			reqs[i] = ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
				Source: ids[src], Destination: ids[dst], Amount: ledger.AmountFromUint64(uint64(1 + rng.IntN(10_000))),
				Hold: rng.IntN(100) == 0}}
		}
		commit([]ledger.Command{{Requests: reqs, Atomic: true}})
		transfers += len(reqs)
	}
	for transfers < 1_000_000 {
		batch()
	}
	// Go on to the record before a checkpoint: one more record would write it.
	for {
		before := s.CheckpointSeq()
		batch()
		if s.CheckpointSeq() != before {
			break
		}
	}
	for head.Seq-s.CheckpointSeq() < 32 { // 32 × 8,000 < 2^18 ≤ 33 × 8,000
		batch()
	}
	crashed := b.TempDir()
	if err := s.CloseWithoutCheckpoint(); err != nil {
		b.Fatal(err)
	}
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		b.Fatal(err)
	}
	if s, err = pebblestore.Open(dir, pebblestore.Options{}); err == nil {
		if _, _, err = s.Load(b.Context()); err == nil {
			err = s.Close() // the final checkpoint
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d transfers in %d records; crashed copy: %d records after the checkpoint", transfers, head.Seq, 32)
	for _, tc := range []struct{ name, dir string }{{"closed", dir}, {"crash", crashed}} {
		b.Run(tc.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				s, err := pebblestore.Open(tc.dir, pebblestore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				st, h, err := s.Load(b.Context())
				total += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if h != head || st.AccountCount() != benchAccounts {
					b.Fatalf("loaded head %d with %d accounts, want %d with %d", h.Seq, st.AccountCount(), head.Seq, benchAccounts)
				}
				if err := s.CloseWithoutCheckpoint(); err != nil { // the next one replays as much
					b.Fatal(err)
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "restart_s")
		})
	}
}
