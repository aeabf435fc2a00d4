package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Defaults of CommandsOptions.
const (
	DefaultCommandsStream = "TPWALLET_COMMANDS"
	DefaultConsumer       = "tpwallet"
	DefaultWorkers        = 64
	DefaultRetryDelay     = time.Second
)

// Headers of a command message and of its result.
const (
	HeaderAuthorization  = "Authorization"   // "Bearer <api key>", write scope
	HeaderIdempotencyKey = "Idempotency-Key" // required; also on the result
	HeaderReplyTo        = "Reply-To"        // optional: the subject of the result
)

// Submitter runs a transfer command as POST /v1/transfers would: *httpapi.Server.
type Submitter interface {
	SubmitTransfer(ctx context.Context, c httpapi.Command) httpapi.CommandResult
}

// CommandsOptions configure Commands. The zero value gives the defaults.
type CommandsOptions struct {
	// Stream holds the commands (default TPWALLET_COMMANDS); it is made, as a work queue
	// on file storage, when it does not exist.
	Stream string
	// SubjectPrefix begins the commands subject <prefix>.commands.transfers and the default
	// results subject <prefix>.results.transfers (default tpwallet).
	SubjectPrefix string
	// Consumer is the durable pull consumer every instance shares (default tpwallet).
	Consumer string
	// Workers bounds the commands run at once (default 64): each waits for a commit.
	Workers int
	// RetryDelay is how long a command that should be retried (5xx, 429,
	// idempotency_in_flight) waits before JetStream redelivers it (default 1 s); and how
	// often an inactive instance looks again whether it should take commands.
	RetryDelay time.Duration
	// AckWait is the consumer's ack wait when Commands makes it (default 30 s): a command
	// taken by an instance that dies is redelivered after it.
	AckWait time.Duration
	// Active, when set, tells whether this instance should take commands now: a standby,
	// which would only answer not_leader, leaves them to the leader. nil: always.
	Active func() bool
	// Registerer, when set, gets tpwallet_nats_commands_total.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// EnsureDefaults fills the unset options with their defaults.
func (o *CommandsOptions) EnsureDefaults() {
	if o.Stream == "" {
		o.Stream = DefaultCommandsStream
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	}
	if o.Consumer == "" {
		o.Consumer = DefaultConsumer
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate refuses names JetStream would refuse.
func (o *CommandsOptions) Validate() error {
	switch {
	case !validStreamName(o.Stream):
		return fmt.Errorf("natsbus: commands stream name %q: use letters, digits, - and _ (no dots, wildcards or spaces)", o.Stream)
	case !validStreamName(o.Consumer):
		return fmt.Errorf("natsbus: consumer name %q: use letters, digits, - and _ (no dots, wildcards or spaces)", o.Consumer)
	case !validSubjectPrefix(o.SubjectPrefix):
		return fmt.Errorf("natsbus: subject prefix %q: use dot-separated tokens without wildcards or spaces", o.SubjectPrefix)
	}
	return nil
}

// Subject is where commands are sent: <prefix>.commands.transfers.
func (o *CommandsOptions) Subject() string { return o.SubjectPrefix + ".commands.transfers" }

// ResultsSubject is where results go when a command names no Reply-To:
// <prefix>.results.transfers.
func (o *CommandsOptions) ResultsSubject() string { return o.SubjectPrefix + ".results.transfers" }

// Commands takes transfer commands from a JetStream stream and answers each on its reply
// subject. Run it on every instance: it runs each command through the Submitter, which
// authenticates it and applies it once per Idempotency-Key, exactly like POST
// /v1/transfers. A command whose answer should not be kept (5xx, 429,
// idempotency_in_flight: a standby's not_leader, an overload) is negatively acknowledged
// with RetryDelay and comes back, perhaps to another instance. Any other answer is
// published as a result, and only then is the command acknowledged: a crash in between
// redelivers it, and the redelivery gets the stored answer again (replayed).
type Commands struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	sub Submitter
	o   CommandsOptions

	mu      sync.Mutex
	cons    jetstream.Consumer // nil until Ensure succeeds
	outcome *prometheus.CounterVec
}

// NewCommands returns Commands on nc that submit to sub. It does no I/O.
func NewCommands(nc *nats.Conn, sub Submitter, o CommandsOptions) (*Commands, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	c := &Commands{nc: nc, js: js, sub: sub, o: o,
		outcome: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpwallet_nats_commands_total",
			Help: "Transfer commands taken from NATS, by outcome: answered (a result published), retried (redelivered later), unanswered (the result could not be published: redelivered later)."},
			[]string{"outcome"})}
	if o.Registerer != nil {
		if err := o.Registerer.Register(c.outcome); err != nil {
			return nil, fmt.Errorf("natsbus: %w", err)
		}
	}
	return c, nil
}

// Ensure makes the commands stream (a work queue on file storage) and the durable
// consumer if they do not exist, or checks that the stream takes the commands subject
// (ErrStreamConflict, wrapped, if not). An existing consumer is used as it is.
func (c *Commands) Ensure(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cons != nil {
		return nil
	}
	if _, err := ensureStream(ctx, c.js, jetstream.StreamConfig{
		Name:        c.o.Stream,
		Description: "tpwallet transfer commands (POST /v1/transfers bodies)",
		Subjects:    []string{c.o.Subject()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  DefaultDuplicates,
	}); err != nil {
		return err
	}
	cons, err := c.js.Consumer(ctx, c.o.Stream, c.o.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = c.js.CreateOrUpdateConsumer(ctx, c.o.Stream, jetstream.ConsumerConfig{
			Durable:       c.o.Consumer,
			Description:   "tpwallet instances taking transfer commands",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       c.o.AckWait,
			MaxAckPending: 4 * c.o.Workers,
			FilterSubject: c.o.Subject(),
		})
	}
	if err != nil {
		return fmt.Errorf("natsbus: consumer %s of stream %s: %w", c.o.Consumer, c.o.Stream, err)
	}
	c.cons = cons
	c.o.Logger.Info("nats commands consumer ready", "stream", c.o.Stream, "consumer", c.o.Consumer,
		"subject", c.o.Subject())
	return nil
}

func (c *Commands) consumer() jetstream.Consumer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cons
}

// forget drops the consumer (deleted under us?) so that the next round ensures it again.
func (c *Commands) forget() {
	c.mu.Lock()
	c.cons = nil
	c.mu.Unlock()
}

// Run takes and answers commands until ctx is done, then waits for the commands in hand to
// be answered and returns ctx's error. Errors on the way (NATS unreachable, stream
// missing) are logged and retried with backoff.
func (c *Commands) Run(ctx context.Context) error {
	sem := make(chan struct{}, c.o.Workers) // one token per command in hand
	var wg sync.WaitGroup
	defer wg.Wait()
	backoff := time.Duration(0)
	failed := func(what string, err error) {
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), 30*time.Second)
		c.o.Logger.Warn("nats commands: "+what+" failed; retrying", "err", err, "retry_in", backoff)
		sleep(ctx, backoff)
	}
	for ctx.Err() == nil {
		if err := c.Ensure(ctx); err != nil {
			failed("stream and consumer", err)
			continue
		}
		if c.o.Active != nil && !c.o.Active() {
			sleep(ctx, c.o.RetryDelay)
			continue
		}
		select { // wait for a free worker
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		n, err := c.fetch(ctx, sem, &wg)
		if n == 0 {
			<-sem
		}
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
				errors.Is(err, jetstream.ErrStreamNotFound) {
				c.forget()
			}
			failed("fetch", err)
			continue
		}
		backoff = 0
	}
	return ctx.Err()
}

// fetchWait bounds one pull request, so that Run looks at ctx and Active this often.
const fetchWait = time.Second

// fetch pulls as many commands as there are free workers (the caller holds one token of
// sem already) and starts each on a goroutine holding a token. It returns how many it
// started.
func (c *Commands) fetch(ctx context.Context, sem chan struct{}, wg *sync.WaitGroup) (int, error) {
	free := 1 + cap(sem) - len(sem)
	fctx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	batch, err := c.consumer().Fetch(free, jetstream.FetchContext(fctx))
	if err != nil {
		return 0, err
	}
	n := 0
	for m := range batch.Messages() {
		if n > 0 {
			sem <- struct{}{} // never blocks: at most free messages, and workers only release
		}
		n++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.handle(context.WithoutCancel(ctx), m)
		}()
	}
	err = batch.Error()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.Canceled) {
		err = nil // no command within fetchWait, or stopping
	}
	return n, err
}

// handle runs one command and answers it. It never panics on a malformed message: the
// Submitter answers it with a 4xx problem like any other rejection.
func (c *Commands) handle(ctx context.Context, m jetstream.Msg) {
	h := m.Headers()
	key := h.Get(HeaderIdempotencyKey)
	reply := h.Get(HeaderReplyTo)
	var res httpapi.CommandResult
	switch {
	case reply != "" && !validSubject(reply):
		res = problemResult(key, http.StatusBadRequest, ledger.CodeInvalidRequest,
			"Reply-To must be a subject without wildcards or spaces; the command was not applied")
		reply = ""
	default:
		res = c.sub.SubmitTransfer(ctx, httpapi.Command{
			Authorization:  h.Get(HeaderAuthorization),
			IdempotencyKey: key,
			Body:           m.Data(),
		})
	}
	if res.Retryable() {
		c.outcome.WithLabelValues("retried").Inc()
		if err := m.NakWithDelay(c.o.RetryDelay); err != nil {
			c.o.Logger.Warn("nats commands: nak failed; redelivered after the ack wait", "err", err)
		}
		return
	}
	if reply == "" {
		reply = c.o.ResultsSubject()
	}
	out := &nats.Msg{Subject: reply, Header: nats.Header{}, Data: res.AppendJSON(nil)}
	out.Header.Set(HeaderIdempotencyKey, key)
	if id := resultID(m); id != "" {
		out.Header.Set(jetstream.MsgIDHeader, id)
	}
	out.Header.Set("Content-Type", "application/json")
	if err := c.nc.PublishMsg(out); err != nil {
		// Not answered: have the command back later; it is answered (replayed) then.
		c.outcome.WithLabelValues("unanswered").Inc()
		c.o.Logger.Warn("nats commands: publish result failed; redelivering the command", "err", err)
		m.NakWithDelay(c.o.RetryDelay)
		return
	}
	c.outcome.WithLabelValues("answered").Inc()
	if err := m.Ack(); err != nil {
		c.o.Logger.Warn("nats commands: ack failed; the command will be redelivered and answered again", "err", err)
	}
}

// resultID is the Nats-Msg-Id of a command's result: the command's stream and sequence,
// the same on every redelivery, so a results stream keeps one answer per command message.
func resultID(m jetstream.Msg) string {
	md, err := m.Metadata()
	if err != nil {
		return ""
	}
	return "result-" + md.Stream + "-" + strconv.FormatUint(md.Sequence.Stream, 10)
}

// problemResult is a result carrying an RFC 9457 problem, for what is refused before the
// Submitter sees it.
func problemResult(key string, status int, code ledger.Code, detail string) httpapi.CommandResult {
	body, _ := json.Marshal(httpapi.Problem{Type: "https://tpwallet.dev/problems/" + string(code),
		Title: http.StatusText(status), Status: status, Detail: detail, Code: code})
	return httpapi.CommandResult{IdempotencyKey: key, Status: status, Body: body}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
