package kafkabus_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/kafkabus"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// BenchmarkDeliver produces posted-transfer events from 1,000 source accounts to an
// in-process kfake broker (10 partitions) through Deliver, in batches of the size a
// follower hands over under load (32: one engine batch) and when catching up (1024), with
// no linger and the default. cpu-ns/event is the process's CPU time: the broker runs in
// the same process, so its share is counted too.
func BenchmarkDeliver(b *testing.B) {
	for _, bc := range []struct {
		batch  int
		linger time.Duration
	}{{32, -1}, {32, 0}, {1024, -1}, {1024, 0}} {
		batch := bc.batch
		name := "batch=" + strconv.Itoa(batch) + "/linger=" + map[bool]string{true: "0", false: "default"}[bc.linger < 0]
		b.Run(name, func(b *testing.B) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(10))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			p, err := kafkabus.NewPublisher(kafkabus.PublisherOptions{Config: kafkabus.Config{Brokers: c.ListenAddrs()},
				Linger: bc.linger})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			evs := benchEvents(batch)
			b.ReportAllocs()
			cpu0 := cpuTime()
			n := 0
			for b.Loop() {
				if k, err := p.Deliver(context.Background(), evs); err != nil || k != len(evs) {
					b.Fatalf("Deliver: %d, %v", k, err)
				}
				n += len(evs)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n), "cpu-ns/event")
		})
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchEvents makes n posted p2p transfer events, as in a journal record of n changes.
func benchEvents(n int) []events.Event {
	evs := make([]events.Event, n)
	for i := range evs {
		id := strconv.Itoa(i)
		t := &ledger.Transfer{ID: "tr_0000000000" + id, Source: "user-" + strconv.Itoa(i*7%1000),
			Destination: "user-" + strconv.Itoa(i*13%1000), Amount: ledger.AmountFromUint64(uint64(i + 1)),
			Asset: "USD", Kind: ledger.TransferP2P, Status: ledger.TransferPosted,
			CreatedAt: 1_795_000_000_000_000_000 + int64(i), PostedAt: 1_795_000_000_000_000_000 + int64(i),
			AmountPosted: ledger.AmountFromUint64(uint64(i + 1))}
		c := &ledger.Change{Op: ledger.ChangeCreate, Time: t.CreatedAt, Transfer: t, Amount: t.Amount}
		evs[i] = events.Event{Seq: 1, Index: i, Type: events.TypeOf(c), Change: c}
	}
	return evs
}
