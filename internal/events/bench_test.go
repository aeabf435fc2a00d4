package events_test

import (
	"context"
	"testing"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// BenchmarkReadAndRender reads the events of a journal of 100,000 transfers (batches of
// 100) from Pebble and renders each as CloudEvents JSON: a follower's own cost per event.
func BenchmarkReadAndRender(b *testing.B) {
	l := openBenchLedger(b)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		p := events.Start
		for {
			evs, next, _, err := events.Read(context.Background(), l.st, p, 4096, nil)
			if err != nil {
				b.Fatal(err)
			}
			for i := range evs {
				buf = events.AppendJSON(buf[:0], &evs[i], events.DefaultSource)
			}
			n += len(evs)
			if next == p {
				break
			}
			p = next
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func openBenchLedger(b *testing.B) *ledgerT {
	b.Helper()
	l := openLedgerTB(b)
	reqs := []ledger.Request{account("treasury", true)}
	for i := range 100 {
		reqs = append(reqs, account(userID(i), false))
	}
	mustSubmit(b, l, reqs)
	for range 1000 {
		reqs = reqs[:0]
		for i := range 100 {
			reqs = append(reqs, pay("treasury", userID(i), 1, false))
		}
		mustSubmit(b, l, reqs)
	}
	return l
}

func userID(i int) string { return "user-" + string(rune('a'+i%26)) + string(rune('a'+i/26)) }

func mustSubmit(b *testing.B, l *ledgerT, reqs []ledger.Request) {
	b.Helper()
	r, err := l.eng.Submit(context.Background(), &engine.Submission{Command: ledger.Command{Requests: reqs}})
	if err != nil {
		b.Fatal(err)
	}
	for _, res := range r.Results {
		if res.Code != ledger.CodeOK {
			b.Fatalf("%s %s", res.Code, res.Detail)
		}
	}
}
