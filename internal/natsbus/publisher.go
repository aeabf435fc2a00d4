package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tpwallet/tpwallet/internal/events"
)

// FollowerName is the name of the journal follower that feeds the Publisher: it names its
// cursor in the store and its tpwallet_follower_* metrics.
const FollowerName = "nats"

// Defaults of PublisherOptions and CommandsOptions.
const (
	DefaultStream        = "TPWALLET"
	DefaultSubjectPrefix = "tpwallet"
	DefaultDuplicates    = 2 * time.Minute // JetStream's own default
	DefaultAckWait       = 10 * time.Second
	DefaultLinger        = 20 * time.Millisecond
)

// ContentType is the Content-Type header of every event: structured-mode CloudEvents.
const ContentType = "application/cloudevents+json"

// PublisherOptions configure a Publisher. The zero value gives the defaults.
type PublisherOptions struct {
	// Stream is the JetStream stream the events are stored in (default TPWALLET).
	Stream string
	// SubjectPrefix begins every subject: an event of type transfer.posted is published
	// to <prefix>.transfer.posted (default tpwallet).
	SubjectPrefix string
	// Source is the CloudEvents source attribute (default events.DefaultSource).
	Source string
	// Duplicates is the duplicate window of a stream the Publisher creates (default 2
	// minutes); an existing stream keeps its own.
	Duplicates time.Duration
	// AckWait bounds how long a batch waits for JetStream's acknowledgements (default 10 s).
	AckWait time.Duration
	// Linger is how long Deliver waits, after a batch smaller than LingerBelow that
	// reached the journal's head went out, before it returns (default 20 ms; negative: not
	// at all). A follower that keeps up would otherwise hand over each commit's few events
	// on their own, paying a journal read and an acknowledgement round trip each time;
	// the pause lets its next read find more. It adds at most Linger to an event's
	// latency, and nothing while the follower is behind.
	Linger time.Duration
	// LingerBelow is the batch size from which Deliver does not linger (default 512).
	LingerBelow int
	// Head returns the journal's newest seq (events.Hub.Head): Deliver lingers only after
	// a batch that reached it. nil: after any batch below LingerBelow.
	Head   func() uint64
	Logger *slog.Logger
}

// EnsureDefaults fills the unset options with their defaults.
func (o *PublisherOptions) EnsureDefaults() {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	}
	if o.Source == "" {
		o.Source = events.DefaultSource
	}
	if o.Duplicates <= 0 {
		o.Duplicates = DefaultDuplicates
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	if o.LingerBelow <= 0 {
		o.LingerBelow = 512
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate refuses names JetStream would refuse.
func (o *PublisherOptions) Validate() error {
	switch {
	case !validStreamName(o.Stream):
		return fmt.Errorf("natsbus: stream name %q: use letters, digits, - and _ (no dots, wildcards or spaces)", o.Stream)
	case !validSubjectPrefix(o.SubjectPrefix):
		return fmt.Errorf("natsbus: subject prefix %q: use dot-separated tokens without wildcards or spaces", o.SubjectPrefix)
	}
	return nil
}

// Subjects are the subjects of the events stream: every event type falls under one.
func (o *PublisherOptions) Subjects() []string {
	return []string{o.SubjectPrefix + ".transfer.>", o.SubjectPrefix + ".account.>", o.SubjectPrefix + ".asset.>"}
}

// Publisher is an events.Sink that publishes each event to JetStream: subject
// <prefix>.<event type>, the CloudEvent JSON as payload, and headers Nats-Msg-Id and Ce-Id
// (the event id), Ce-Type and Content-Type. Deliver must not be called concurrently (a
// Follower calls it from one goroutine).
//
// A batch is published asynchronously and Deliver then waits for its acknowledgements, so a
// batch costs one round trip, not one per event. Order: JetStream stores one connection's
// messages in the order sent, and Deliver stops sending at the first publish that fails at
// once (disconnected: the connection buffers nothing while reconnecting), so a retry never
// lands behind events sent after it. Only a batch whose middle is lost on the server side
// while its tail is stored (the stream refusing one message but not the next) can put a
// retried event after later ones; ids still order events exactly.
type Publisher struct {
	js jetstream.JetStream
	o  PublisherOptions

	mu    sync.Mutex // guards ready, so Ensure may run beside a Deliver
	ready bool       // the stream is known to exist and to take our subjects

	// Reused from batch to batch: every acknowledgement is in (or timed out) before
	// Deliver returns, and nats.go copies a message when it sends it.
	buf      []byte
	msgs     []nats.Msg
	futs     []jetstream.PubAckFuture
	pubOpts  []jetstream.PublishOpt
	subjects map[string]string // event type → subject
	idBuf    []byte
}

// NewPublisher returns a Publisher on nc. It does no I/O: Ensure (or the first Deliver)
// makes or checks the stream.
func NewPublisher(nc *nats.Conn, o PublisherOptions) (*Publisher, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(o.AckWait),
		jetstream.WithPublishAsyncMaxPending(publishPendingMax))
	if err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	return &Publisher{js: js, o: o, subjects: map[string]string{},
		pubOpts: []jetstream.PublishOpt{noRetry, jetstream.WithStallWait(o.AckWait)}}, nil
}

// publishPendingMax bounds the acknowledgements awaited at once; a batch larger than this
// waits for room (up to AckWait) rather than failing.
const publishPendingMax = 8192

// Ensure creates the events stream (file storage, the Subjects, the Duplicates window),
// or checks that the existing one takes the Subjects: ErrStreamConflict (wrapped) if not.
func (p *Publisher) Ensure(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready {
		return nil
	}
	info, err := ensureStream(ctx, p.js, jetstream.StreamConfig{
		Name:        p.o.Stream,
		Description: "tpwallet journal events (CloudEvents 1.0), one message per change",
		Subjects:    p.o.Subjects(),
		Storage:     jetstream.FileStorage,
		Duplicates:  p.o.Duplicates,
	})
	if err != nil {
		return err
	}
	p.ready = true
	p.o.Logger.Info("nats events stream ready", "stream", p.o.Stream,
		"subjects", info.Config.Subjects, "duplicate_window", info.Config.Duplicates)
	return nil
}

// Deliver publishes evs in order and returns how many of them, from the first, JetStream
// acknowledged (stored, or dropped as a duplicate of a stored copy).
func (p *Publisher) Deliver(ctx context.Context, evs []events.Event) (int, error) {
	if err := p.Ensure(ctx); err != nil {
		return 0, err
	}
	p.render(evs)
	futs := p.futs[:0]
	var sendErr error
	for i := range evs {
		f, err := p.js.PublishMsgAsync(&p.msgs[i], p.pubOpts...)
		if err != nil {
			// Send nothing after a message that did not go out: it would overtake it.
			sendErr = fmt.Errorf("natsbus: publish %s: %w", evs[i].ID(), err)
			break
		}
		futs = append(futs, f)
	}
	p.futs = futs
	n, err := p.await(ctx, evs, futs)
	clear(p.futs) // drop the futures' references until the next batch
	if err == nil {
		err = sendErr
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrStreamNotFound) {
		p.mu.Lock()
		p.ready = false // no stream takes the subject (deleted?): check it before the next attempt
		p.mu.Unlock()
	}
	if err == nil && p.o.Linger > 0 && len(evs) > 0 && len(evs) < p.o.LingerBelow &&
		(p.o.Head == nil || evs[len(evs)-1].Seq >= p.o.Head()) {
		sleep(ctx, p.o.Linger) // caught up: let the next read gather more
	}
	return n, err
}

// noRetry stops nats.go from republishing a message on its own when no stream answered:
// the republished copy could land after messages sent later. The follower retries instead.
var noRetry = jetstream.WithRetryAttempts(0)

// await waits until every future has resolved (each does within AckWait: acknowledged,
// refused, timed out, or failed by a disconnect) and returns how many from the first were
// acknowledged, with the first error. The JetStream context is the Publisher's alone, so
// "no acknowledgement pending" means this batch's are all in; waiting once for that, rather
// than on each future's channels, saves two channels per event.
func (p *Publisher) await(ctx context.Context, evs []events.Event, futs []jetstream.PubAckFuture) (int, error) {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	for i, f := range futs {
		select {
		case <-f.Ok(): // resolved: holds the ack at once if it came
		default:
			err := errors.New("no acknowledgement")
			select {
			case err = <-f.Err():
			default:
			}
			return i, fmt.Errorf("natsbus: publish %s: %w", evs[i].ID(), err)
		}
	}
	return len(futs), nil
}

// render fills p.msgs with the messages of evs, their payloads in one buffer.
func (p *Publisher) render(evs []events.Event) {
	buf := p.buf[:0]
	ends := make([]int, len(evs)) // small: one int per event
	for i := range evs {
		buf = events.AppendJSON(buf, &evs[i], p.o.Source)
		ends[i] = len(buf)
	}
	p.buf = buf
	if cap(p.msgs) < len(evs) {
		p.msgs = make([]nats.Msg, len(evs))
	}
	p.msgs = p.msgs[:len(evs)]
	start := 0
	for i := range evs {
		e := &evs[i]
		m := &p.msgs[i]
		p.idBuf = strconv.AppendUint(p.idBuf[:0], e.Seq, 10)
		p.idBuf = append(p.idBuf, '-')
		p.idBuf = strconv.AppendInt(p.idBuf, int64(e.Index), 10)
		id := string(p.idBuf) // = e.ID(), one allocation instead of two
		subject, ok := p.subjects[e.Type]
		if !ok {
			subject = p.o.SubjectPrefix + "." + e.Type
			p.subjects[e.Type] = subject
		}
		m.Subject = subject
		m.Data = buf[start:ends[i]:ends[i]]
		if m.Header == nil {
			m.Header = make(nats.Header, 4)
		}
		m.Header[jetstream.MsgIDHeader] = append(m.Header[jetstream.MsgIDHeader][:0], id)
		m.Header["Ce-Id"] = append(m.Header["Ce-Id"][:0], id)
		m.Header["Ce-Type"] = append(m.Header["Ce-Type"][:0], e.Type)
		m.Header["Content-Type"] = append(m.Header["Content-Type"][:0], ContentType)
		start = ends[i]
	}
}
