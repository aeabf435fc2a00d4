package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"
)

// Client is a tpwallet client. It is safe for concurrent use; make one and share it.
type Client struct {
	t      transport
	policy RetryPolicy
}

// Option configures a Client.
type Option func(*options)

type options struct {
	hc        *http.Client
	policy    RetryPolicy
	userAgent string
	dial      []grpc.DialOption // NewGRPC only
}

func defaultOptions() options {
	return options{hc: &http.Client{}, policy: DefaultRetryPolicy, userAgent: "tpwallet-go"}
}

// WithHTTPClient makes the REST transport send through hc (default: a client with no
// timeout, so that a context bounds each call; keep any Timeout of hc above 30 s, or
// the long polls of Events end early).
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// WithRetryPolicy sets when calls give up (default DefaultRetryPolicy; NoRetry turns
// retries off).
func WithRetryPolicy(p RetryPolicy) Option { return func(o *options) { o.policy = p } }

// WithUserAgent sets the User-Agent of every request.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// New returns a client of the REST API at baseURL (e.g. "http://127.0.0.1:8080") that
// authenticates with apiKey.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	t, err := newREST(baseURL, apiKey, o.hc, o.userAgent)
	if err != nil {
		return nil, err
	}
	return &Client{t: t, policy: o.policy.withDefaults()}, nil
}

// Close releases what the client holds: the connection of a gRPC client. A REST client
// has nothing to release (its http.Client is the caller's). Calls after Close fail.
func (c *Client) Close() error {
	if cl, ok := c.t.(interface{ close() error }); ok {
		return cl.close()
	}
	return nil
}

// CallOption configures one call.
type CallOption func(*callOptions)

type callOptions struct {
	idemKey   string
	requestID string
	meta      *Meta
	policy    *RetryPolicy
}

// WithIdempotencyKey sets the Idempotency-Key of a write (1–255 printable ASCII characters),
// instead of a random one made for the call. Use it to make a write idempotent across
// processes: store the key with the intent, and send it again after a crash. Reads ignore
// it.
func WithIdempotencyKey(key string) CallOption { return func(o *callOptions) { o.idemKey = key } }

// WithRequestID sends id as X-Request-Id on every attempt of the call (1–128 characters of
// A-Za-z0-9._:-), so that the server's logs name the call by it.
func WithRequestID(id string) CallOption { return func(o *callOptions) { o.requestID = id } }

// WithMeta fills *m when the call returns, whether it succeeded or not.
func WithMeta(m *Meta) CallOption { return func(o *callOptions) { o.meta = m } }

// WithCallRetryPolicy overrides the client's retry policy for one call.
func WithCallRetryPolicy(p RetryPolicy) CallOption {
	return func(o *callOptions) { p = p.withDefaults(); o.policy = &p }
}

// Meta is what a call learnt beside its result.
type Meta struct {
	Status         int    // HTTP status of the last answer (0 if none came; over gRPC 200, or REST's status of the error's code)
	RequestID      string // X-Request-Id of the last answer
	IdempotencyKey string // the key every attempt of a write carried ("" for reads)
	Replayed       bool   // the answer is the stored one of an earlier attempt with the key
	Attempts       int    // attempts made, the first included
}

// newIdempotencyKey returns 26 random base-32 characters (130 bits).
func newIdempotencyKey() string { return rand.Text() }

// do runs one logical call: attempts, with the same Idempotency-Key for a write, until one
// succeeds, an error is not retryable, or the policy or ctx gives up.
func (c *Client) do(ctx context.Context, op *operation, id string, in, out any, opts []CallOption) (*call, error) {
	var o callOptions
	for _, f := range opts {
		f(&o)
	}
	p := c.policy
	if o.policy != nil {
		p = *o.policy
	}
	cl := &call{op: op, id: id, in: in, out: out, requestID: o.requestID}
	if op.kind == opWrite {
		cl.idemKey = o.idemKey
		if cl.idemKey == "" {
			cl.idemKey = newIdempotencyKey()
		}
	}
	attempts, err := c.attempt(ctx, cl, p)
	if o.meta != nil {
		*o.meta = Meta{Status: cl.got.status, RequestID: cl.got.requestID, IdempotencyKey: cl.idemKey,
			Replayed: cl.got.replayed, Attempts: attempts}
	}
	return cl, err
}

func (c *Client) attempt(ctx context.Context, cl *call, p RetryPolicy) (int, error) {
	start := time.Now()
	deadline := start.Add(p.MaxElapsed)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for n := 1; ; n++ {
		cl.got = answer{}
		err := c.t.do(ctx, cl)
		if err == nil {
			return n, nil
		}
		var te *transportError
		if errors.As(err, &te) && !te.notSent {
			cl.ambiguous = true
		}
		ok, after := retryable(cl.op, err)
		if !ok || n >= p.MaxAttempts {
			return n, err
		}
		delay := after
		if delay == 0 {
			delay = p.backoff(n)
		}
		if time.Now().Add(delay).After(deadline) {
			return n, err // the wait would outlast the budget: the last error says why
		}
		if p.OnRetry != nil {
			p.OnRetry(Retry{Operation: cl.op.name, Attempt: n, Err: err, Delay: delay, IdempotencyKey: cl.idemKey})
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return n, fmt.Errorf("tpwallet: %s: %w (waiting to retry after: %w)", cl.op.name, ctx.Err(), err)
		case <-t.C:
		}
	}
}
