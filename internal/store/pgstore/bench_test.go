package pgstore_test

import (
	"fmt"
	"testing"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/pgtest"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
)

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
