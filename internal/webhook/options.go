package webhook

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/store"
)

// Defaults of Options.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultRetryFor       = 24 * time.Hour
	DefaultMinBackoff     = 5 * time.Second
	DefaultMaxBackoff     = time.Hour
	DefaultBreakerAfter   = 5
	DefaultDeliveriesMax  = 1000
	DefaultDeadLettersMax = 10000
	DefaultSyncEvery      = 5 * time.Second
)

// Options configure a Manager. Meta, Source and Set are required.
type Options struct {
	Meta   store.Meta    // endpoints, delivery state, logs and cursors
	Source events.Source // the journal
	Set    *events.Set   // runs the endpoints' followers while this instance leads
	Hub    *events.Hub   // wakes the followers on commits (nil: they poll)
	// AllowPrivate lets endpoints be on loopback, private and other non-public addresses
	// (tpwallet serve --webhook-allow-private): for tests and closed networks.
	AllowPrivate bool
	// Timeout bounds one attempt: connecting, sending, and the answer's status and headers.
	Timeout time.Duration
	// RetryFor is how long an event is retried, from its first attempt, before it goes
	// to the dead letters.
	RetryFor time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts: it doubles from one to
	// the other with each failure in a row, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// BreakerAfter is how many failures in a row open an endpoint's circuit breaker.
	BreakerAfter int
	// DeliveriesMax and DeadLettersMax bound each endpoint's logs (the newest are kept).
	DeliveriesMax, DeadLettersMax int
	// Resolver looks up URL hosts at registration (default net.DefaultResolver).
	Resolver Resolver
	// SyncEvery is how often the stored endpoints are read again, to pick up what another
	// instance of a PostgreSQL group registered or deleted.
	SyncEvery time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// EnsureDefaults fills in zero fields.
func (o *Options) EnsureDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Timeout, DefaultTimeout)
	def(&o.RetryFor, DefaultRetryFor)
	def(&o.MinBackoff, DefaultMinBackoff)
	def(&o.MaxBackoff, DefaultMaxBackoff)
	def(&o.SyncEvery, DefaultSyncEvery)
	if o.BreakerAfter == 0 {
		o.BreakerAfter = DefaultBreakerAfter
	}
	if o.DeliveriesMax == 0 {
		o.DeliveriesMax = DefaultDeliveriesMax
	}
	if o.DeadLettersMax == 0 {
		o.DeadLettersMax = DefaultDeadLettersMax
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate refuses options that would silently mean something else.
func (o *Options) Validate() error {
	switch {
	case o.Meta == nil || o.Source == nil || o.Set == nil:
		return errors.New("webhook: Meta, Source and Set are required")
	case o.Timeout <= 0 || o.RetryFor <= 0 || o.MinBackoff <= 0 || o.SyncEvery <= 0:
		return errors.New("webhook: the timeout, retry window, backoff and sync interval must be positive")
	case o.MaxBackoff < o.MinBackoff:
		return errors.New("webhook: the longest backoff is shorter than the shortest")
	case o.BreakerAfter < 1 || o.DeliveriesMax < 1 || o.DeadLettersMax < 1:
		return errors.New("webhook: the breaker threshold and log bounds must be at least 1")
	}
	return nil
}

// newClient is the HTTP client of every delivery: no proxy (a proxy would be dialled
// instead of the endpoint, past the address check), no redirects (one would send the
// signed event somewhere the admin did not register), and, unless private addresses are
// allowed, the address check on every connection.
func newClient(o *Options) *http.Client {
	d := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	if !o.AllowPrivate {
		d.Control = dialControl
	}
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    o.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}
