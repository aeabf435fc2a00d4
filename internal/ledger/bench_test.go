package ledger_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

const benchAccounts = 10_000

// newBenchState opens benchAccounts USD accounts, each funded with 10^12 from a treasury.
func newBenchState(b *testing.B) (*ledger.State, []string, int64) {
	b.Helper()
	st := ledger.NewState()
	now := t0
	ids := make([]string, benchAccounts)
	reqs := []ledger.Request{openAcct("treasury", "USD", true)}
	for i := range ids {
		ids[i] = fmt.Sprintf("acct-%05d", i)
		reqs = append(reqs, openAcct(ids[i], "USD", false))
	}
	for _, id := range ids {
		reqs = append(reqs, xfer("treasury", id, 1_000_000_000_000))
	}
	res := st.Apply(now, []ledger.Command{{Requests: reqs}})
	for _, r := range res.Results[0] {
		if r.Code != ledger.CodeOK {
			b.Fatalf("setup: got %q, want OK", r.Code)
		}
	}
	st.ForgetRecent()
	return st, ids, now
}

// randomTransfers returns n posted transfers between distinct random accounts, with server ids.
func randomTransfers(rng *rand.Rand, ids []string, n int) []ledger.Request {
	reqs := make([]ledger.Request, n)
	for i := range reqs {
		src := rng.IntN(len(ids))
		dst := (src + 1 + rng.IntN(len(ids)-1)) % len(ids)
		reqs[i] = xfer(ids[src], ids[dst], uint64(1+rng.IntN(100)))
	}
	return reqs
}

// BenchmarkApply applies batches of 8,000 posted transfers over 10,000 accounts, as the
// engine would after draining a full queue.
func BenchmarkApply(b *testing.B) {
	const batch = 8000
	for _, atomic := range []bool{false, true} {
		b.Run(fmt.Sprintf("batch=%d/atomic=%v", batch, atomic), func(b *testing.B) {
			st, ids, now := newBenchState(b)
			rng := rand.New(rand.NewPCG(1, 2))
			cmds := []ledger.Command{{Requests: randomTransfers(rng, ids, batch), Atomic: atomic}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				now += int64(time.Millisecond)
				res := st.Apply(now, cmds)
				if res.Results[0][batch-1].Code != ledger.CodeOK {
					b.Fatalf("got %q, want OK", res.Results[0][batch-1].Code)
				}
				st.ForgetRecent() // as the engine does once the batch is durable
			}
			b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds(), "transfers/s")
		})
	}
}

// BenchmarkApplySingle applies one transfer per Apply: the cost at low load.
func BenchmarkApplySingle(b *testing.B) {
	st, ids, now := newBenchState(b)
	rng := rand.New(rand.NewPCG(3, 4))
	reqs := randomTransfers(rng, ids, 1<<14)
	cmds := make([]ledger.Command, len(reqs))
	for i := range reqs {
		cmds[i] = ledger.Command{Requests: reqs[i : i+1]}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		now += int64(time.Microsecond)
		res := st.Apply(now, cmds[i%len(cmds):i%len(cmds)+1])
		if res.Results[0][0].Code != ledger.CodeOK {
			b.Fatalf("got %q, want OK", res.Results[0][0].Code)
		}
		if i++; i%4096 == 0 {
			st.ForgetRecent()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
}
