package natsbus_test

import (
	"context"
	"testing"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/natsbus"
)

// BenchmarkNatsDeliver publishes batches of the journal's events (transfers between ten
// accounts) to a stream on the test server: the publisher's cost per event, JetStream's
// acknowledgement round trip included. Run with -benchmem; events/s is per client CPU and
// server together, allocs/op is per event.
func BenchmarkNatsDeliver(b *testing.B) {
	nc, js := connect(b)
	prefix, stream := names(b, js)
	l := openLedger(b)
	l.accounts(b, 10)
	for range 4 {
		l.mustDo(b, "POST", "/v1/transfers/batch", bigBatch(10, 1000), 201)
	}
	evs := l.journal(b)
	pub, err := natsbus.NewPublisher(nc, natsbus.PublisherOptions{Stream: stream, SubjectPrefix: prefix, Linger: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := pub.Ensure(ctx); err != nil {
		b.Fatal(err)
	}
	batch := make([]events.Event, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(len(batch), b.N-i)
		for j := range n { // the journal's events again under new ids, so none is a copy
			batch[j] = evs[(i+j)%len(evs)]
			batch[j].Seq += uint64((i+j)/len(evs)) << 32
		}
		if got, err := pub.Deliver(ctx, batch[:n]); got != n || err != nil {
			b.Fatalf("Deliver = %d, %v", got, err)
		}
		i += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
