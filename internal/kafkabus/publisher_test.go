package kafkabus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tpwallet/tpwallet/internal/kafkabus"
)

func newPublisher(t *testing.T, o kafkabus.PublisherOptions) *kafkabus.Publisher {
	t.Helper()
	p, err := kafkabus.NewPublisher(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestKafkaPublisherDeliversJournal: the events of a real ledger (accounts, funding, 600
// transfers from concurrent clients, so records hold several changes) arrive on the topic,
// which the publisher creates, each with its key, headers and CloudEvent, in journal order
// per key, exactly once when nothing fails.
func TestKafkaPublisherDeliversJournal(t *testing.T) {
	c := newCluster(t)
	l := openLedger(t)
	const users = 12
	l.fundUsers(t, users)
	pub := newPublisher(t, kafkabus.PublisherOptions{Config: config(c)})
	f, _ := follow(t, l, pub)
	l.transfers(t, users, 600, 0)
	waitFor(t, 10*time.Second, "the follower to catch up", caughtUp(l, f))

	want := l.journalEvents(t)
	if len(want) != 1+2*users+600 {
		t.Fatalf("journal has %d events, want %d", len(want), 1+2*users+600)
	}
	recs := consume(t, c, kafkabus.DefaultTopic, 10*time.Second, func(r []*kgo.Record) bool { return len(r) >= len(want) })
	if dups := checkEvents(t, want, recs); dups != 0 {
		t.Errorf("%d copies without any failure", dups)
	}
	partitions := map[int32]bool{}
	for _, r := range recs {
		partitions[r.Partition] = true
	}
	if len(partitions) < 2 {
		t.Errorf("all events in %d partition(s): keys do not spread", len(partitions))
	}
	if st := f.Status(l.eng.HeadSeq()); st.Delivered != uint64(len(want)) || st.Errors != 0 || st.LagRecords != 0 {
		t.Errorf("follower status %+v, want %d delivered, no errors, no lag", st, len(want))
	}
}

// TestKafkaPublisherBrokerRefuses: while the broker answers every produce with a retryable
// error (kfake's ControlKey), transfers go on; the publisher's records time out, the
// follower counts errors and retries with backoff; once the broker takes records again it
// catches up, and every event is on the topic, in order per key.
func TestKafkaPublisherBrokerRefuses(t *testing.T) {
	c := newCluster(t)
	var refusing atomic.Bool
	var refused atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !refusing.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		return refuseProduce(kreq.(*kmsg.ProduceRequest), kerr.NotEnoughReplicas.Code), nil, true
	})
	l := openLedger(t)
	const users = 8
	l.fundUsers(t, users)
	pub := newPublisher(t, kafkabus.PublisherOptions{Config: config(c), DeliveryTimeout: time.Second})
	f, _ := follow(t, l, pub)
	l.transfers(t, users, 100, 0)
	waitFor(t, 10*time.Second, "the follower to catch up", caughtUp(l, f))

	refusing.Store(true)
	start := time.Now()
	l.transfers(t, users, 200, 100) // the ledger does not wait for Kafka
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("200 transfers took %s while Kafka refused", d)
	}
	waitFor(t, 10*time.Second, "the follower to fail twice", func() bool { return f.Status(0).Errors >= 2 })
	if st := f.Status(l.eng.HeadSeq()); st.LagRecords == 0 || st.LastError == "" {
		t.Errorf("while refused: status %+v, want lag and an error", st)
	}
	refusing.Store(false)
	waitFor(t, 20*time.Second, "the follower to catch up", caughtUp(l, f))
	if refused.Load() == 0 {
		t.Fatal("the broker refused nothing")
	}

	want := l.journalEvents(t)
	recs := consume(t, c, kafkabus.DefaultTopic, 10*time.Second, func(r []*kgo.Record) bool { return distinct(r) >= len(want) })
	dups := checkEvents(t, want, recs)
	t.Logf("%d produce requests refused, %d follower errors, %d events, %d copies",
		refused.Load(), f.Status(0).Errors, len(want), dups)
}

// refuseProduce answers every partition of req with code: nothing is written.
func refuseProduce(req *kmsg.ProduceRequest, code int16) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// TestKafkaPublisherStopsWithContext: Deliver returns when its context ends even if the
// broker never answers, and delivers nothing it cannot vouch for.
func TestKafkaPublisherStopsWithContext(t *testing.T) {
	c := newCluster(t)
	release := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release }) // no answer until the test ends
		return nil, nil, false
	})
	t.Cleanup(func() { close(release) })
	l := openLedger(t)
	l.fundUsers(t, 2)
	pub := newPublisher(t, kafkabus.PublisherOptions{Config: config(c)})
	evs := l.journalEvents(t)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	n, err := pub.Deliver(ctx, evs)
	if n != 0 || err == nil {
		t.Errorf("Deliver to a silent broker: %d, %v; want 0 and an error", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Deliver returned %s after its context ended", d)
	}
}
