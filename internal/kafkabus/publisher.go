package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tpwallet/tpwallet/internal/events"
)

// FollowerName names the publisher's follower: its cursor and its metrics.
const FollowerName = "kafka"

// ContentType is the content-type header of every event: the CloudEvents Kafka protocol
// binding's structured mode, the whole event as JSON in the record value.
const ContentType = "application/cloudevents+json; charset=UTF-8"

// PublisherOptions configures a Publisher.
type PublisherOptions struct {
	Config
	Topic  string // default DefaultTopic
	Source string // the CloudEvents source attribute, default events.DefaultSource
	// DeliveryTimeout bounds how long a record may wait for Kafka before Deliver gives up
	// on it and the follower retries after a backoff (default 30 s, at least 1 s). Records already sent
	// wait for their answer whatever this says: failing them could break the partition's
	// order.
	DeliveryTimeout time.Duration
	// Linger paces the follower under light load: a Deliver of fewer than lingerEvents
	// events returns no sooner than Linger after it began (default DefaultLinger;
	// negative: no pacing), so that the next round finds more events in the journal and
	// its journal read, produce request and cursor write serve them all. Events wait at
	// most Linger more; a follower catching up is never paced.
	Linger time.Duration
}

// DefaultLinger is the default PublisherOptions.Linger.
const DefaultLinger = 5 * time.Millisecond

// lingerEvents is the round size from which Deliver is not paced: at 5 ms a round, rounds
// this size carry 51,000 events/s, and larger ones mean the follower is busy anyway.
const lingerEvents = 256

// Publisher is an events.Sink that produces each event to one topic with an idempotent
// producer (acks=all): record key events.Event.Key, value the CloudEvent JSON, headers
// ce_id, ce_type, ce_specversion and content-type.
//
// Deliver is called by one follower at a time; it is not safe for concurrent use.
type Publisher struct {
	cl     *kgo.Client
	topic  string
	source string
	opts   PublisherOptions

	topicReady bool // created, found, or not ours to create

	// The arena of the last Deliver, reused when all of its records settled: kgo keeps a
	// record (and the bytes it points to) until its promise has run.
	buf   []byte
	recs  []kgo.Record
	hdrs  []kgo.RecordHeader
	errs  []error
	spans []span
}

// span locates one event's bytes in the arena: key ends at key, the id at id, the value at
// value; each starts where the one before ends.
type span struct{ key, id, value int }

// Static header values, shared by every record (kgo only reads them).
var (
	hdrSpecVersion = []byte("1.0")
	hdrContentType = []byte(ContentType)
	hdrTypes       = func() map[string][]byte {
		m := make(map[string][]byte, len(events.Types))
		for _, t := range events.Types {
			m[t] = []byte(t)
		}
		return m
	}()
)

// NewPublisher returns a Publisher. It does not connect: the first Deliver does, creating
// the topic if it is missing, so that serve starts while Kafka is down.
func NewPublisher(o PublisherOptions) (*Publisher, error) {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if !ValidTopic(o.Topic) {
		return nil, fmt.Errorf("kafkabus: %q is not a valid topic name", o.Topic)
	}
	if o.Source == "" {
		o.Source = events.DefaultSource
	}
	switch {
	case o.Linger == 0:
		o.Linger = DefaultLinger
	case o.Linger < 0:
		o.Linger = 0
	}
	if o.DeliveryTimeout <= 0 {
		o.DeliveryTimeout = 30 * time.Second
	}
	opts, err := o.clientOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.DefaultProduceTopic(o.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the default, and what idempotence needs
		// Deliver hands over a whole round and waits for it: nothing more comes while the
		// records would linger, so they go at once (the pacing is Linger's, above).
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(o.DeliveryTimeout),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkabus: %w", err)
	}
	return &Publisher{cl: cl, topic: o.Topic, source: o.Source, opts: o}, nil
}

// Close closes the connections, failing records still buffered.
func (p *Publisher) Close() { p.cl.Close() }

// Deliver produces evs and waits until Kafka has acknowledged or failed each. It returns
// how many from the first were acknowledged with none failed before them: the follower
// moves its cursor past those only and hands the rest over again. It returns early when
// ctx is done; the records then in flight may still be written (delivery is at least once).
func (p *Publisher) Deliver(ctx context.Context, evs []events.Event) (int, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	if err := p.ensureTopic(ctx); err != nil {
		return 0, err
	}
	if len(evs) < lingerEvents && p.opts.Linger > 0 {
		until := time.Now().Add(p.opts.Linger)
		defer func() { sleep(ctx, time.Until(until)) }()
	}
	p.build(evs)
	var settled atomic.Int64
	all := make(chan struct{})
	n := int64(len(evs))
	errs := p.errs
	for i := range p.recs {
		p.cl.Produce(ctx, &p.recs[i], func(_ *kgo.Record, err error) {
			errs[i] = err // promises run one at a time, each before its settled.Add
			if settled.Add(1) == n {
				close(all)
			}
		})
	}
	select {
	case <-all:
	case <-ctx.Done():
		// kgo still holds records of this call: the next one must not reuse the arena.
		p.buf, p.recs, p.hdrs, p.errs = nil, nil, nil, nil // spans kgo never sees
		return 0, ctx.Err()
	}
	for i, err := range errs {
		if err != nil {
			return i, fmt.Errorf("kafkabus: produce event %s: %w", evs[i].ID(), err)
		}
	}
	return len(evs), nil
}

// build fills the arena with one record per event.
func (p *Publisher) build(evs []events.Event) {
	n := len(evs)
	p.recs = grow(p.recs, n)
	p.hdrs = grow(p.hdrs, 4*n)
	p.errs = grow(p.errs, n)
	clear(p.errs)
	// First all bytes, then the slices into them: buf may move while it grows.
	buf := p.buf[:0]
	p.spans = grow(p.spans, n)
	spans := p.spans
	for i := range evs {
		e := &evs[i]
		buf = append(buf, e.Key()...)
		spans[i].key = len(buf)
		buf = append(buf, e.ID()...)
		spans[i].id = len(buf)
		buf = events.AppendJSON(buf, e, p.source)
		spans[i].value = len(buf)
	}
	p.buf = buf
	at := 0
	for i := range evs {
		e, s := &evs[i], spans[i]
		typ := hdrTypes[e.Type]
		if typ == nil {
			typ = []byte(e.Type)
		}
		h := p.hdrs[4*i : 4*i+4 : 4*i+4]
		h[0] = kgo.RecordHeader{Key: "ce_id", Value: buf[s.key:s.id:s.id]}
		h[1] = kgo.RecordHeader{Key: "ce_type", Value: typ}
		h[2] = kgo.RecordHeader{Key: "ce_specversion", Value: hdrSpecVersion}
		h[3] = kgo.RecordHeader{Key: "content-type", Value: hdrContentType}
		// No Timestamp: kgo sets the produce time, and measures DeliveryTimeout from the
		// timestamp, so an old event's time would fail its record at once. The event's
		// time is in the CloudEvent.
		p.recs[i] = kgo.Record{
			Topic:   p.topic,
			Key:     buf[at:s.key:s.key],
			Value:   buf[s.id:s.value:s.value],
			Headers: h,
		}
		at = s.value
	}
}

// ensureTopic creates the topic on the first Deliver. A principal that may not create
// topics is told once and goes on: the topic may exist (docs/kafka.md says to create it).
func (p *Publisher) ensureTopic(ctx context.Context) error {
	if p.topicReady {
		return nil
	}
	err := createTopics(ctx, p.cl, p.topic)
	switch {
	case err == nil:
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		p.opts.logger().Warn("kafka: may not create the events topic; it must exist", "topic", p.topic, "err", err)
	default:
		return err
	}
	p.topicReady = true
	return nil
}

// grow returns s resized to n, reallocated only when its capacity is short.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
