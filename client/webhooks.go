package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"
)

// The webhook endpoints of docs/webhooks.md (scope admin; over REST and gRPC alike).
// Package client/webhook verifies what the endpoints receive.

var (
	opCreateWebhook      = &operation{"createWebhook", "POST", "/v1/webhooks", opUnkeyed}
	opListWebhooks       = &operation{"listWebhooks", "GET", "/v1/webhooks", opRead}
	opGetWebhook         = &operation{"getWebhook", "GET", "/v1/webhooks/{id}", opRead}
	opDeleteWebhook      = &operation{"deleteWebhook", "DELETE", "/v1/webhooks/{id}", opDelete}
	opWebhookDeliveries  = &operation{"listWebhookDeliveries", "GET", "/v1/webhooks/{id}/deliveries", opRead}
	opWebhookDeadLetters = &operation{"listWebhookDeadLetters", "GET", "/v1/webhooks/{id}/dead-letters", opRead}
	opReplayWebhook      = &operation{"replayWebhook", "POST", "/v1/webhooks/{id}/replay", opRepeatable}
)

// CreateWebhookRequest is the body of POST /v1/webhooks. URL is required: absolute http(s),
// with a public host unless the server runs with --webhook-allow-private. EventTypes
// empty means every type.
type CreateWebhookRequest struct {
	URL         string      `json:"url"`
	EventTypes  []EventType `json:"event_types,omitempty"`
	Description string      `json:"description,omitempty"`
}

// Webhook is a webhook endpoint and the state of its deliveries, without its secret.
type Webhook struct {
	ID          string        `json:"id"`
	URL         string        `json:"url"`
	EventTypes  []EventType   `json:"event_types"` // empty: every type
	Description string        `json:"description"`
	CreatedAt   time.Time     `json:"created_at"`
	Status      WebhookStatus `json:"status"`
}

// WebhookCreated is a new endpoint with its Secret ("whsec_..."), which the server shows
// this once: give it to the receiver, which checks every delivery with webhook.Verify.
type WebhookCreated struct {
	Webhook
	Secret string `json:"secret"`
}

// Breaker is the state of an endpoint's circuit breaker: closed, or open after failures
// in a row (one probe per backoff interval until a success).
type Breaker string

const (
	BreakerClosed Breaker = "closed"
	BreakerOpen   Breaker = "open"
)

// WebhookPosition is the next event an endpoint will deliver: a journal record and the
// change's index in it.
type WebhookPosition struct {
	Seq   uint64 `json:"seq"`
	Index int    `json:"index"`
}

// WebhookStatus is how an endpoint's deliveries stand. Times the server has not seen yet
// are nil; RetryingEventID and LastError are "" when there is none.
type WebhookStatus struct {
	Running             bool            `json:"running"`
	Position            WebhookPosition `json:"position"`
	LagRecords          uint64          `json:"lag_records"`
	Lag                 time.Duration   `json:"-"` // lag_seconds: age of the oldest undelivered record
	Delivered           uint64          `json:"delivered"`
	Breaker             Breaker         `json:"breaker"`
	ConsecutiveFailures int             `json:"consecutive_failures"`
	OpenedAt            *time.Time      `json:"opened_at"`
	NextAttemptAt       *time.Time      `json:"next_attempt_at"`
	RetryingEventID     string          `json:"retrying_event_id"`
	Attempts            int             `json:"attempts"` // of the event being retried
	LastError           string          `json:"last_error"`
	LastErrorAt         *time.Time      `json:"last_error_at"`
	LastSuccessAt       *time.Time      `json:"last_success_at"`
}

// UnmarshalJSON reads a status, with lag_seconds as Lag.
func (s *WebhookStatus) UnmarshalJSON(b []byte) error {
	type plain WebhookStatus
	var v struct {
		*plain
		LagSeconds json.Number `json:"lag_seconds"`
	}
	v.plain = (*plain)(s)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	d, err := durationOf(v.LagSeconds, "s")
	if err != nil {
		return fmt.Errorf("client: lag_seconds: %w", err)
	}
	s.Lag = d
	return nil
}

// DeliveryOutcome is what came of one attempt to deliver an event.
type DeliveryOutcome string

const (
	OutcomeDelivered    DeliveryOutcome = "delivered"     // the receiver answered 2xx
	OutcomeRetrying     DeliveryOutcome = "retrying"      // tried again at NextAttemptAt
	OutcomeDeadLettered DeliveryOutcome = "dead_lettered" // given up on: see WebhookDeadLetters
)

// WebhookDelivery is one attempt of the delivery log. Status is the receiver's HTTP
// status, 0 when no answer came (Error then says why).
type WebhookDelivery struct {
	EventID       string          `json:"event_id"`
	EventType     EventType       `json:"event_type"`
	Attempt       int             `json:"attempt"`
	Outcome       DeliveryOutcome `json:"outcome"`
	Status        int             `json:"status"`
	Error         string          `json:"error"`
	Time          time.Time       `json:"time"`
	Duration      time.Duration   `json:"-"` // duration_ms
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
}

// UnmarshalJSON reads a delivery, with duration_ms as Duration.
func (d *WebhookDelivery) UnmarshalJSON(b []byte) error {
	type plain WebhookDelivery
	var v struct {
		*plain
		DurationMs json.Number `json:"duration_ms"`
	}
	v.plain = (*plain)(d)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	dur, err := durationOf(v.DurationMs, "ms")
	if err != nil {
		return fmt.Errorf("client: duration_ms: %w", err)
	}
	d.Duration = dur
	return nil
}

// WebhookDeadLetter is an event the endpoint gave up on after its retry window. Replay
// from its JournalSeq sends it again.
type WebhookDeadLetter struct {
	EventID        string    `json:"event_id"`
	EventType      EventType `json:"event_type"`
	JournalSeq     uint64    `json:"journal_seq"`
	JournalIndex   int       `json:"journal_index"`
	Attempts       int       `json:"attempts"`
	FirstAttemptAt time.Time `json:"first_attempt_at"`
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
	LastStatus     int       `json:"last_status"` // 0: the last attempt got no answer
	LastError      string    `json:"last_error"`
}

// durationOf reads a JSON number of units ("s", "ms") as a duration: exactly, as a
// duration string, when it is plain decimal, else as a float.
func durationOf(n json.Number, unit string) (time.Duration, error) {
	if n == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(n.String(), "+") + unit); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil {
		return 0, err
	}
	scale := float64(time.Second)
	if unit == "ms" {
		scale = float64(time.Millisecond)
	}
	return time.Duration(f * scale), nil
}

// replayRequest is the body of POST /v1/webhooks/{id}/replay.
type replayRequest struct {
	FromSeq uint64 `json:"from_seq"`
}

// CreateWebhook registers an endpoint (admin); it receives the events committed from now on.
// The answer holds the secret, shown this once. Codes: invalid_request (a bad URL or an
// unknown event type), webhook_url_forbidden. The server keeps no Idempotency-Key for it,
// so it is not retried once an attempt may have reached the server: on a network error,
// list the endpoints before trying again, or a second one may be registered.
func (c *Client) CreateWebhook(ctx context.Context, req CreateWebhookRequest, opts ...CallOption) (*WebhookCreated, error) {
	var out WebhookCreated
	_, err := c.do(ctx, opCreateWebhook, "", &req, &out, opts)
	return ptrOrNil(&out, err)
}

// ListWebhooks returns a page of the endpoints, without secrets, ordered by id (admin);
// Webhooks iterates over all pages.
func (c *Client) ListWebhooks(ctx context.Context, p ListParams, opts ...CallOption) (*Page[Webhook], error) {
	var out Page[Webhook]
	_, err := c.do(ctx, opListWebhooks, "", p, &out, opts)
	return ptrOrNil(&out, err)
}

// GetWebhook returns an endpoint and the state of its deliveries (admin). Codes:
// webhook_not_found.
func (c *Client) GetWebhook(ctx context.Context, id string, opts ...CallOption) (*Webhook, error) {
	var out Webhook
	_, err := c.do(ctx, opGetWebhook, id, nil, &out, opts)
	return ptrOrNil(&out, err)
}

// DeleteWebhook removes an endpoint (admin): delivery stops at once. Codes:
// webhook_not_found. A retry that finds it gone after an attempt whose outcome was
// unknown counts as done.
func (c *Client) DeleteWebhook(ctx context.Context, id string, opts ...CallOption) error {
	cl, err := c.do(ctx, opDeleteWebhook, id, nil, nil, opts)
	if errors.Is(err, ErrWebhookNotFound) && cl.ambiguous {
		return nil // the attempt that got no answer deleted it
	}
	return err
}

// ListWebhookDeliveries returns a page of an endpoint's delivery log, newest first (admin).
// Codes: webhook_not_found.
func (c *Client) ListWebhookDeliveries(ctx context.Context, id string, p ListParams, opts ...CallOption) (*Page[WebhookDelivery], error) {
	var out Page[WebhookDelivery]
	_, err := c.do(ctx, opWebhookDeliveries, id, p, &out, opts)
	return ptrOrNil(&out, err)
}

// ListWebhookDeadLetters returns a page of the events an endpoint gave up on, newest
// first (admin). Codes: webhook_not_found.
func (c *Client) ListWebhookDeadLetters(ctx context.Context, id string, p ListParams, opts ...CallOption) (*Page[WebhookDeadLetter], error) {
	var out Page[WebhookDeadLetter]
	_, err := c.do(ctx, opWebhookDeadLetters, id, p, &out, opts)
	return ptrOrNil(&out, err)
}

// ReplayWebhook moves an endpoint to the first event of journal record fromSeq (1 to the
// head's seq + 1) and delivers from there, in order, with the events' own ids (admin): to
// backfill, or to resend dead letters. Doing it twice is doing it once, so it is retried
// like a read. Codes: webhook_not_found, invalid_request.
func (c *Client) ReplayWebhook(ctx context.Context, id string, fromSeq uint64, opts ...CallOption) error {
	_, err := c.do(ctx, opReplayWebhook, id, &replayRequest{FromSeq: fromSeq}, nil, opts)
	return err
}

// Webhooks iterates over the endpoints, ordered by id (admin), from p.Cursor on.
func (c *Client) Webhooks(ctx context.Context, p ListParams, opts ...CallOption) iter.Seq2[*Webhook, error] {
	return pages(p.Cursor, func(cur string) (*Page[Webhook], error) {
		p.Cursor = cur
		return c.ListWebhooks(ctx, p, opts...)
	})
}

// WebhookDeliveries iterates over an endpoint's delivery log, newest first (admin).
func (c *Client) WebhookDeliveries(ctx context.Context, id string, p ListParams, opts ...CallOption) iter.Seq2[*WebhookDelivery, error] {
	return pages(p.Cursor, func(cur string) (*Page[WebhookDelivery], error) {
		p.Cursor = cur
		return c.ListWebhookDeliveries(ctx, id, p, opts...)
	})
}
