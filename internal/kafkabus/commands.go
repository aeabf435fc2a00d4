package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tpwallet/tpwallet/internal/httpapi"
)

// Headers of a command record and of its result.
const (
	HeaderAuthorization  = "authorization"   // "Bearer <api key>"
	HeaderIdempotencyKey = "idempotency-key" // required
	HeaderReplyTopic     = "reply-topic"     // optional: where the result goes
)

// Submitter runs a command: *httpapi.Server is one.
type Submitter interface {
	SubmitTransfer(ctx context.Context, c httpapi.Command) httpapi.CommandResult
}

// CommandsOptions configures a Commands consumer.
type CommandsOptions struct {
	Config
	Topic   string // commands, default DefaultCommandsTopic
	Results string // results without a reply-topic header, default DefaultResultsTopic
	Group   string // consumer group, default DefaultGroup
	Submit  Submitter
	// Leading reports whether this instance takes writes (nil: always). The consumer is
	// in the group only while it does: a standby would answer every command not_leader and
	// hold its partitions back.
	Leading func() bool
	// PollRecords bounds the records one round takes (default 1000); the group cannot
	// rebalance while a round runs.
	PollRecords int
	// MinBackoff and MaxBackoff bound the wait before a retryable command or a failed
	// result is tried again (defaults 100 ms and 5 s), doubling with jitter.
	MinBackoff, MaxBackoff time.Duration
}

// Commands consumes transfer commands from a topic in a consumer group. Each record is
// one POST /v1/transfers, run by Submit exactly as REST would run it; its result goes to
// the reply topic, keyed by the idempotency key. Records of a partition run one at a time,
// in order; a command answered retryably (5xx, 429, idempotency_in_flight) is tried again
// until it is not, never skipped. The offset is committed once the result is acknowledged.
type Commands struct {
	o    CommandsOptions
	opts []kgo.Opt
}

// NewCommands returns a consumer; Run consumes.
func NewCommands(o CommandsOptions) (*Commands, error) {
	if o.Topic == "" {
		o.Topic = DefaultCommandsTopic
	}
	if o.Results == "" {
		o.Results = DefaultResultsTopic
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	for _, t := range []string{o.Topic, o.Results} {
		if !ValidTopic(t) {
			return nil, fmt.Errorf("kafkabus: %q is not a valid topic name", t)
		}
	}
	if o.Submit == nil {
		return nil, errors.New("kafkabus: Commands needs a Submitter")
	}
	if o.Leading == nil {
		o.Leading = func() bool { return true }
	}
	if o.PollRecords <= 0 {
		o.PollRecords = 1000
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	opts, err := o.clientOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Topic),
		// A new group starts at the beginning: a command sent before tpwallet first
		// consumed is run, not skipped.
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),    // committed after the results, below
		kgo.BlockRebalanceOnPoll(), // so that a round commits only partitions it still owns
		// Only the leader consumes, so the group has one member at a time under one static
		// id: a restarted or newly promoted leader takes the partitions over at once instead
		// of waiting out the session of a member that died.
		kgo.InstanceID(o.Group+"-leader"),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(30*time.Second),
	)
	return &Commands{o: o, opts: opts}, nil
}

// Run consumes until ctx is done, then returns ctx's error. Kafka errors are logged and
// retried with backoff.
func (c *Commands) Run(ctx context.Context) error {
	log := c.o.logger()
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if !c.o.Leading() {
			sleep(ctx, time.Second)
			continue
		}
		err := c.session(ctx)
		if err == nil || ctx.Err() != nil {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, c.o.MinBackoff), 30*time.Second)
		log.Warn("kafka commands: consumer failed; retrying", "topic", c.o.Topic, "err", err, "retry_in", backoff)
		sleep(ctx, jitter(backoff))
	}
	return ctx.Err()
}

// session is one membership in the group: from joining until this instance stops leading
// or ctx is done.
func (c *Commands) session(ctx context.Context) error {
	cl, err := kgo.NewClient(c.opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	err = createTopics(ctx, cl, c.o.Topic, c.o.Results)
	if err != nil && !errors.Is(err, kerr.TopicAuthorizationFailed) && !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		return err
	}
	// A fetch error (a partition without a leader, a topic not there yet) is the
	// client's to recover from: the membership stays, the consumer waits a little.
	backoff := time.Duration(0)
	for ctx.Err() == nil && c.o.Leading() {
		err := c.round(ctx, cl)
		switch {
		case errors.Is(err, kgo.ErrClientClosed):
			return err
		case err != nil && ctx.Err() == nil:
			backoff = min(max(2*backoff, c.o.MinBackoff), 30*time.Second)
			c.o.logger().Warn("kafka commands: fetch failed; retrying", "topic", c.o.Topic, "err", err, "retry_in", backoff)
			sleep(ctx, jitter(backoff))
		default:
			backoff = 0
		}
	}
	return nil
}

// round polls once, runs what it got (the partitions side by side, each in order), and
// commits what was answered. It returns the fetch errors, after running the records.
func (c *Commands) round(ctx context.Context, cl *kgo.Client) error {
	pctx, cancel := context.WithTimeout(ctx, time.Second) // to notice a lost leadership
	fs := cl.PollRecords(pctx, c.o.PollRecords)
	cancel()
	defer cl.AllowRebalance()
	if fs.IsClientClosed() {
		return kgo.ErrClientClosed
	}
	var errs []error
	for _, e := range fs.Errors() {
		if !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded) {
			errs = append(errs, fmt.Errorf("fetch %s/%d: %w", e.Topic, e.Partition, e.Err))
		}
	}
	var parts [][]*kgo.Record
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) > 0 {
			parts = append(parts, p.Records)
		}
	})
	done := make([]*kgo.Record, len(parts))
	var wg sync.WaitGroup
	for i, recs := range parts {
		wg.Go(func() { done[i] = c.partition(ctx, cl, recs) })
	}
	wg.Wait()
	var commit []*kgo.Record
	for _, r := range done {
		if r != nil {
			commit = append(commit, r)
		}
	}
	if len(commit) > 0 {
		if err := cl.CommitRecords(ctx, commit...); err != nil && ctx.Err() == nil {
			// Not fatal: the records come again, and their idempotency keys replay them.
			c.o.logger().Warn("kafka commands: commit failed; the commands will be redelivered and replayed", "err", err)
		}
	}
	return errors.Join(errs...)
}

// partition runs one partition's records in order and returns the last one whose result
// Kafka acknowledged with all before it (nil if none): what may be committed.
func (c *Commands) partition(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) *kgo.Record {
	type sent struct {
		rec    *kgo.Record
		result *kgo.Record
		err    error
	}
	out := make([]sent, 0, len(recs))
	var wg sync.WaitGroup
	for _, r := range recs {
		res, ok := c.run(ctx, r)
		if !ok {
			break
		}
		out = append(out, sent{rec: r, result: res})
	}
	// The results go out together (kgo batches them) and are waited for at the end.
	for i := range out {
		s := &out[i]
		wg.Add(1)
		cl.Produce(ctx, s.result, func(_ *kgo.Record, err error) { s.err = err; wg.Done() })
	}
	wg.Wait()
	var last *kgo.Record
	for i := range out {
		s := &out[i]
		if s.err != nil && !c.resend(ctx, cl, s.result, s.err) {
			break
		}
		last = s.rec
	}
	return last
}

// run runs the command of r until its answer is not retryable, and returns the result
// record; ok is false when ctx ended or this instance stopped leading first.
func (c *Commands) run(ctx context.Context, r *kgo.Record) (res *kgo.Record, ok bool) {
	cmd, reply, bad := parseCommand(r, c.o.Results)
	if bad != nil {
		return resultRecord(reply, bad), true
	}
	backoff := time.Duration(0)
	for {
		result := c.o.Submit.SubmitTransfer(ctx, cmd)
		if !result.Retryable() {
			return resultRecord(reply, &result), true
		}
		if ctx.Err() != nil || !c.o.Leading() {
			return nil, false
		}
		backoff = min(max(2*backoff, c.o.MinBackoff), c.o.MaxBackoff)
		c.o.logger().Debug("kafka commands: retryable answer; trying again", "topic", r.Topic,
			"partition", r.Partition, "offset", r.Offset, "status", result.Status, "retry_in", backoff)
		sleep(ctx, jitter(backoff))
	}
}

// resend produces a result whose first attempt failed with err, until Kafka takes it or
// ctx ends. A reply topic that does not exist or may not be written is given up for the
// results topic: the command's outcome must reach someone, and its partition move on.
func (c *Commands) resend(ctx context.Context, cl *kgo.Client, res *kgo.Record, err error) bool {
	log := c.o.logger()
	backoff := time.Duration(0)
	for {
		if ctx.Err() != nil {
			return false
		}
		if res.Topic != c.o.Results && (errors.Is(err, kerr.UnknownTopicOrPartition) ||
			errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.InvalidTopicException)) {
			log.Warn("kafka commands: reply topic refused; answering on the results topic",
				"reply_topic", res.Topic, "results_topic", c.o.Results, "err", err)
			res.Topic = c.o.Results
		} else {
			backoff = min(max(2*backoff, c.o.MinBackoff), c.o.MaxBackoff)
			log.Warn("kafka commands: result not produced; retrying", "topic", res.Topic, "err", err, "retry_in", backoff)
			sleep(ctx, jitter(backoff))
		}
		if ctx.Err() != nil {
			return false
		}
		retry := kgo.Record{Topic: res.Topic, Key: res.Key, Value: res.Value, Headers: res.Headers}
		if err = cl.ProduceSync(ctx, &retry).FirstErr(); err == nil {
			return true
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// jitter returns a duration in [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}
