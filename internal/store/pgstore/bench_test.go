package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/pgtest"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
)

// benchAccounts is the number of funded accounts, as in `tpwallet bench --accounts 2000`.
const benchAccounts = 2000

// BenchmarkCommit measures Store.Commit alone, without the engine or HTTP: each op is one
// commit of a batch of single transfers between random accounts, the shape `tpwallet bench
// --workload p2p` gives the store. The batch sizes are those the engine forms with 32 and
// 64 one-transfer clients.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{8, 16, 32} {
		b.Run("transfers="+strconv.Itoa(size), func(b *testing.B) { benchCommit(b, size) })
	}
}

// benchStore is a store with benchAccounts funded accounts, and the state that matches it.
type benchStore struct {
	s     *pgstore.Store
	state *ledger.State
	head  journal.Head
	now   int64
}

func openBenchStore(b *testing.B) *benchStore {
	b.Helper()
	ctx := context.Background()
	s, err := pgstore.Open(ctx, newDatabase(b), pgstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	st, head, err := s.Load(ctx)
	if err != nil {
		b.Fatal(err)
	}
	bs := &benchStore{s: s, state: st, head: head, now: 1_767_225_600e9}
	reqs := []ledger.Request{{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "bank",
		Owner: "platform", Asset: "USD", AllowNegative: true}}}
	for i := range benchAccounts {
		reqs = append(reqs, ledger.Request{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{
			ID: "u" + strconv.Itoa(i), Owner: "user:" + strconv.Itoa(i), Asset: "USD"}})
	}
	bs.commit(b, reqs)
	reqs = reqs[:0]
	for i := range benchAccounts {
		reqs = append(reqs, transfer("bank", "u"+strconv.Itoa(i), 1<<40))
	}
	bs.commit(b, reqs)
	return bs
}

func transfer(src, dst string, amount uint64) ledger.Request {
	return ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{Source: src,
		Destination: dst, Amount: ledger.AmountFromUint64(amount)}}
}

// commit applies reqs, one command each, as one batch and commits it, as the engine does.
func (bs *benchStore) commit(b *testing.B, reqs []ledger.Request) {
	b.Helper()
	cmds := make([]ledger.Command, len(reqs))
	for i := range reqs {
		cmds[i] = ledger.Command{Requests: reqs[i : i+1]}
	}
	bs.now += 1e6
	bt := bs.state.Apply(bs.now, cmds)
	for _, rs := range bt.Results {
		if rs[0].Code != ledger.CodeOK {
			b.Fatalf("apply: %s %s", rs[0].Code, rs[0].Detail)
		}
	}
	r := &journal.Record{Seq: bs.head.Seq + 1, PrevHash: bs.head.Hash, Timestamp: bt.Time, Changes: bt.Changes}
	journal.Seal(r)
	if err := bs.s.Commit(context.Background(), &journal.Commit{Record: r, Accounts: bt.Touched}); err != nil {
		b.Fatal(err)
	}
	bs.head = journal.Head{Seq: r.Seq, Hash: r.Hash}
	if bs.state.RecentCount() > 1<<16 { // as the engine does, once the store has them
		bs.state.ForgetRecent()
	}
}

func benchCommit(b *testing.B, size int) {
	bs := openBenchStore(b)
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]ledger.Request, size)
	b.ResetTimer()
	for range b.N {
		for i := range reqs {
			a, c := rng.IntN(benchAccounts), rng.IntN(benchAccounts-1)
			if c >= a {
				c++
			}
			reqs[i] = transfer("u"+strconv.Itoa(a), "u"+strconv.Itoa(c), 1)
		}
		bs.commit(b, reqs)
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkLoad measures what a takeover costs before the new leader writes: Load of a
// database with 100,000 accounts and 1,000 pending holds.
//
//	go test -run='^$' -bench=Load -benchtime=3x ./internal/store/pgstore
func BenchmarkLoad(b *testing.B) {
	const accounts, holds = 100_000, 1_000
	s, err := pgstore.Open(b.Context(), pgtest.NewDatabase(b), pgstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st, head, err := s.Load(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	now := int64(1_767_225_600e9)
	commit := func(reqs []ledger.Request) {
		now += 20e6
		bt := st.Apply(now, []ledger.Command{{Requests: reqs, Atomic: true}})
		r := &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: bt.Time, Changes: bt.Changes}
		journal.Seal(r)
		if err := s.Commit(b.Context(), &journal.Commit{Record: r, Accounts: bt.Touched}); err != nil {
			b.Fatal(err)
		}
		head = journal.Head{Seq: r.Seq, Hash: r.Hash}
	}
	var reqs []ledger.Request
	for i := range accounts {
		id := fmt.Sprintf("acc-%06d", i)
		reqs = append(reqs, ledger.Request{Op: ledger.OpCreateAccount,
			Account: ledger.AccountRequest{ID: id, Owner: "user:" + id, Asset: "USD", AllowNegative: true}})
		if len(reqs) == 5000 {
			commit(reqs)
			reqs = nil
		}
	}
	for i := range holds {
		reqs = append(reqs, ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
			Source: fmt.Sprintf("acc-%06d", i), Destination: fmt.Sprintf("acc-%06d", i+1),
			Amount: ledger.AmountFromUint64(100), Hold: true}})
	}
	commit(reqs)
	b.ResetTimer()
	for b.Loop() {
		st, _, err := s.Load(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if st.AccountCount() != accounts || len(st.Holds()) != holds {
			b.Fatalf("loaded %d accounts, %d holds", st.AccountCount(), len(st.Holds()))
		}
	}
}
