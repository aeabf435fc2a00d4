package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"time"

	"github.com/tpwallet/tpwallet/internal/metrics"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

// webhookConfig is what serve reads for webhooks, which are always on: an admin
// registers endpoints with POST /v1/webhooks (docs/webhooks.md).
type webhookConfig struct {
	AllowPrivate bool
	Timeout      time.Duration
	RetryFor     time.Duration
}

func (c *webhookConfig) flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.AllowPrivate, "webhook-allow-private", envBool("TPWALLET_WEBHOOK_ALLOW_PRIVATE"),
		"let webhook endpoints be on loopback, private, link-local and other non-public addresses (tests, closed networks) (env TPWALLET_WEBHOOK_ALLOW_PRIVATE)")
	fs.DurationVar(&c.Timeout, "webhook-timeout", envDuration("TPWALLET_WEBHOOK_TIMEOUT", webhook.DefaultTimeout),
		"how long one webhook attempt may take to connect and get an answer's status (env TPWALLET_WEBHOOK_TIMEOUT)")
	fs.DurationVar(&c.RetryFor, "webhook-retry-for", envDuration("TPWALLET_WEBHOOK_RETRY_FOR", webhook.DefaultRetryFor),
		"how long a webhook event is retried from its first attempt before it goes to the endpoint's dead letters (env TPWALLET_WEBHOOK_RETRY_FOR)")
}

// webhookTimeoutMax keeps one attempt from holding an endpoint's whole queue for long.
const webhookTimeoutMax = 5 * time.Minute

func (c *webhookConfig) validate() error {
	switch {
	case c.Timeout <= 0 || c.Timeout > webhookTimeoutMax:
		return errors.New("--webhook-timeout must be more than 0 and at most 5m")
	case c.RetryFor < time.Minute:
		// Less would dead-letter events during any short receiver outage.
		return errors.New("--webhook-retry-for must be at least 1m")
	}
	return nil
}

// openWebhooks starts delivering to the stored endpoints; their followers join a's set,
// so they run while this instance leads. Close stops them.
func openWebhooks(ctx context.Context, c *webhookConfig, a *app, log *slog.Logger, m *metrics.Metrics) (*webhook.Manager, error) {
	hooks, err := webhook.Open(ctx, webhook.Options{Meta: a.meta, Source: a.svc.Store(), Set: a.followers,
		Hub: a.hub, AllowPrivate: c.AllowPrivate, Timeout: c.Timeout, RetryFor: c.RetryFor, Logger: log})
	if err != nil {
		return nil, err
	}
	if m != nil {
		m.Register(hooks)
	}
	if c.AllowPrivate {
		log.Warn("webhooks may go to private addresses (--webhook-allow-private)")
	}
	return hooks, nil
}
