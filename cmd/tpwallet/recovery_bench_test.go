package main

import (
	"context"
	"io"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

func openBench(b *testing.B, dir string) *engine.Engine {
	b.Helper()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	e, err := engine.Open(context.Background(), st, engine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func submitAll(b *testing.B, e *engine.Engine, reqs []ledger.Request) {
	b.Helper()
	r, err := e.Submit(context.Background(), &engine.Submission{Command: ledger.Command{Requests: reqs}})
	if err != nil {
		b.Fatal(err)
	}
	for _, res := range r.Results {
		if res.Code != ledger.CodeOK {
			b.Fatalf("setup: %s %s", res.Code, res.Detail)
		}
	}
}

// BenchmarkRecovery commits 1,000,000 transfers (batches of 8,000 over 10,000 accounts,
// plus 10,000 pending holds), then measures a restart until the engine is ready to serve,
// and `tpwallet verify` of the same data. Run with -benchtime=1x.
func BenchmarkRecovery(b *testing.B) {
	const accounts, transfers, batch = 10_000, 1_000_000, 8_000
	dir := b.TempDir()
	e := openBench(b, dir)
	reqs := []ledger.Request{{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "bank", Asset: "USD", AllowNegative: true}}}
	for i := 0; i < accounts; i++ {
		reqs = append(reqs, ledger.Request{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "u" + strconv.Itoa(i), Asset: "USD"}})
	}
	submitAll(b, e, reqs[:1])
	for i := 1; i < len(reqs); i += batch {
		submitAll(b, e, reqs[i:min(i+batch, len(reqs))])
	}
	n := 0
	for n < transfers {
		reqs = reqs[:0]
		for j := 0; j < batch && n < transfers; j++ {
			src, dst := "bank", "u"+strconv.Itoa(n%accounts)
			if n >= accounts { // after funding, user to user
				src, dst = "u"+strconv.Itoa(n%accounts), "u"+strconv.Itoa((n*7+1)%accounts)
				if src == dst {
					dst = "bank"
				}
			}
			r := ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
				Source: src, Destination: dst, Amount: ledger.AmountFromUint64(1)}}
			if n < accounts {
				r.Transfer.Amount = ledger.AmountFromUint64(1 << 40)
			} else if n%100 == 0 {
				r.Transfer.Hold, r.Transfer.HoldTimeout = true, 3600
			}
			reqs = append(reqs, r)
			n++
		}
		submitAll(b, e, reqs)
	}
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}

	var openSecs, verifySecs float64
	for b.Loop() {
		start := time.Now()
		e := openBench(b, dir)
		openSecs = time.Since(start).Seconds()
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
		st, err := pebblestore.Open(dir, pebblestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		sum, err := verifyStore(context.Background(), st, io.Discard)
		verifySecs = time.Since(start).Seconds()
		st.Close()
		if err != nil {
			b.Fatal(err)
		}
		if sum.TransfersCreated < transfers {
			b.Fatalf("verify saw %d transfers, want %d", sum.TransfersCreated, transfers)
		}
	}
	b.ReportMetric(openSecs, "restart_s")
	b.ReportMetric(float64(transfers)/verifySecs, "verify_transfers/s")
}

// BenchmarkMemory measures resident heap per account and per pending hold: it opens
// 1,000,000 accounts, then 100,000 holds, and commits 200,000 posted transfers to show that
// history does not stay in memory. Run with -benchtime=1x.
func BenchmarkMemory(b *testing.B) {
	const accounts, holds, posted, batch = 1_000_000, 100_000, 200_000, 8_000
	heap := func() float64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc)
	}
	for b.Loop() {
		e := openBench(b, b.TempDir())
		submitAll(b, e, []ledger.Request{{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "bank", Asset: "USD", AllowNegative: true}}})
		h0 := heap()
		var reqs []ledger.Request
		for i := 0; i < accounts; i += batch {
			reqs = reqs[:0]
			for j := i; j < i+batch; j++ {
				reqs = append(reqs, ledger.Request{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{
					ID: "user-" + strconv.Itoa(j), Owner: "user:" + strconv.Itoa(j), Asset: "USD"}})
			}
			submitAll(b, e, reqs)
		}
		h1 := heap()
		for i := 0; i < holds; i += batch {
			reqs = reqs[:0]
			for j := i; j < min(i+batch, holds); j++ {
				reqs = append(reqs, ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
					Source: "bank", Destination: "user-" + strconv.Itoa(j), Amount: ledger.AmountFromUint64(5),
					Hold: true, HoldTimeout: 3600}})
			}
			submitAll(b, e, reqs)
		}
		h2 := heap()
		for i := 0; i < posted; i += batch {
			reqs = reqs[:0]
			for j := i; j < i+batch; j++ {
				reqs = append(reqs, ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
					Source: "bank", Destination: "user-" + strconv.Itoa(j%accounts), Amount: ledger.AmountFromUint64(1)}})
			}
			submitAll(b, e, reqs)
		}
		h3 := heap()
		b.ReportMetric((h1-h0)/accounts, "heap_B/account")
		b.ReportMetric((h2-h1)/holds, "heap_B/hold")
		// Finished transfers are cached up to a fixed bound, then forgotten: this stays flat
		// however many are posted.
		b.ReportMetric((h3-h2)/1e6, "heap_MB_after_200k_posted")
		e.Close()
	}
}
