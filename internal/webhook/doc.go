// Package webhook delivers the journal's events to HTTP endpoints that admins register.
// Each endpoint is one events.Follower with its own cursor, so endpoints are independent
// and each gets its events in journal order, signed as Standard Webhooks (client/webhook).
//
// # Delivery
//
// One POST per event, the CloudEvent as body. A 2xx answer delivers it; anything else
// (another status, a redirect, a timeout, a refused connection) is retried with
// exponential backoff and jitter until the retry window (Options.RetryFor, 24 h by
// default) has passed since the event's first attempt; then the event goes to the
// endpoint's dead letters and delivery moves on. Later events of the endpoint wait
// meanwhile: order is kept per endpoint. After BreakerAfter failures in a row the
// endpoint's circuit breaker opens: it gets one attempt (a probe) per backoff interval and
// no more, also across dead letters and restarts, until one succeeds. Delivery is at
// least once: after a crash the events since the saved cursor go out again with the same
// webhook-id.
//
// Requests go only to public addresses unless Options.AllowPrivate: a URL whose host is a
// non-public IP, or a name resolving only to such, is refused at registration, and every
// connection's address is checked again when it is dialled, which stops DNS rebinding.
//
// # Storage
//
// Everything lives in the store's Meta space, namespace "webhook":
//
//	e/<id>       the endpoint (JSON, with its secret)
//	s/<id>       delivery state: the breaker and the event being retried (absent when idle)
//	d/<id>/<n>   delivery log, one entry per attempt; n counts up (16 hex digits) and only
//	             the newest DeliveriesMax are kept
//	x/<id>/<n>   dead letters, the same way; the newest DeadLettersMax are kept
//
// and the follower's cursor is events.CursorNS "webhook:<id>".
package webhook
