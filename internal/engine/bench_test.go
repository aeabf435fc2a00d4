package engine_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

const benchAccounts = 10_000

// openBenchEngine opens an engine on Pebble in b.TempDir(), fsync on, with benchAccounts
// funded user accounts "u0".."u9999" and a treasury "bank".
func openBenchEngine(b *testing.B) *engine.Engine {
	b.Helper()
	e := openEngine(b, openStore(b, b.TempDir()), engine.Options{})
	b.Cleanup(func() { e.Close() })
	mustOK(b, submit(b, e, account("bank", true)))
	for i := 0; i < benchAccounts; i += 1000 {
		var reqs []ledger.Request
		for j := i; j < i+1000; j++ {
			reqs = append(reqs, account("u"+strconv.Itoa(j), false))
		}
		mustOK(b, submit(b, e, reqs...))
		reqs = reqs[:0]
		for j := i; j < i+1000; j++ {
			reqs = append(reqs, transfer("", "bank", "u"+strconv.Itoa(j), 1<<40))
		}
		mustOK(b, submit(b, e, reqs...))
	}
	return e
}

// pair picks two distinct user accounts; with hot set the destination is always u0.
func pair(rng *rand.Rand, hot bool) (string, string) {
	if hot {
		return "u" + strconv.Itoa(1+rng.IntN(benchAccounts-1)), "u0"
	}
	a := rng.IntN(benchAccounts)
	c := rng.IntN(benchAccounts - 1)
	if c >= a {
		c++
	}
	return "u" + strconv.Itoa(a), "u" + strconv.Itoa(c)
}

func benchBatches(b *testing.B, size int, hot bool) {
	e := openBenchEngine(b)
	rng := rand.New(rand.NewPCG(1, 2))
	cmds := make([]ledger.Command, 8)
	for i := range cmds {
		reqs := make([]ledger.Request, size)
		for j := range reqs {
			src, dst := pair(rng, hot)
			reqs[j] = transfer("", src, dst, 1)
		}
		cmds[i] = ledger.Command{Requests: reqs}
	}
	var next atomic.Int64
	b.SetParallelism(2) // 2 × GOMAXPROCS = 4 callers, so one batch applies while another syncs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cmd := cmds[int(next.Add(1))%len(cmds)]
			r, err := e.Submit(context.Background(), &engine.Submission{Command: cmd})
			if err != nil || r.Results[0].Code != ledger.CodeOK {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkSubmitBatch: 4 callers submit batches of 8,000 transfers (uniform random pairs).
func BenchmarkSubmitBatch(b *testing.B) { benchBatches(b, 8000, false) }

// BenchmarkSubmitBatchHot: the same, every transfer crediting one merchant.
func BenchmarkSubmitBatchHot(b *testing.B) { benchBatches(b, 8000, true) }

func benchParallel(b *testing.B, hot bool) {
	e := openBenchEngine(b)
	var seed atomic.Uint64
	b.SetParallelism(32) // 32 × GOMAXPROCS (2 here) = 64 concurrent callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 7))
		for pb.Next() {
			src, dst := pair(rng, hot)
			r, err := e.Submit(context.Background(), &engine.Submission{Command: ledger.Command{
				Requests: []ledger.Request{transfer("", src, dst, 1)}}})
			if err != nil || r.Results[0].Code != ledger.CodeOK {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	s := e.Stats()
	b.ReportMetric(float64(s.Requests)/float64(max(s.Batches, 1)), "requests/batch")
}

// BenchmarkSubmitParallel: 64 concurrent callers each submitting one transfer at a time.
func BenchmarkSubmitParallel(b *testing.B) { benchParallel(b, false) }

// BenchmarkSubmitParallelHot: the same, every transfer crediting one merchant.
func BenchmarkSubmitParallelHot(b *testing.B) { benchParallel(b, true) }

// BenchmarkFsync measures the disk under the benchmarks: 4 KiB write + fdatasync.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "sync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for b.Loop() {
		if _, err := f.WriteAt(buf, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "syncs/s")
}
