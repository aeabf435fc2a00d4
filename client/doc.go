// Package client is the Go SDK of tpwallet: typed calls for every operation of the REST API
// (api.md, openapi.yaml) or of the gRPC API (docs/grpc.md), which make retrying writes safe
// and money exact. It is the only package of the module with a compatibility promise.
//
//	c, err := client.New("http://127.0.0.1:8080", os.Getenv("TPWALLET_API_KEY"))
//	t, err := c.CreateTransfer(ctx, client.CreateTransferRequest{
//		Source: "alice-usd", Destination: "bob-usd", Amount: client.NewAmount(250),
//	})
//	if errors.Is(err, client.ErrInsufficientFunds) { ... }
//
// # Idempotency and retries
//
// Every write (POST) carries an Idempotency-Key: a random one made once per call, or the
// caller's (WithIdempotencyKey). A call whose attempt fails on the network, or is answered
// 429 rate_limited, 503 overloaded / not_leader / unavailable, or 409 idempotency_in_flight,
// is tried again with the same key, after the server's Retry-After or an exponential backoff
// with jitter (RetryPolicy). The server applies a key's request at most once and answers a
// retry with the stored answer, so nothing is applied twice; WithMeta shows the attempts
// and whether the answer was replayed. POST /v1/api-keys is the exception: the server keeps
// no key for it, so CreateAPIKey is not retried once an attempt may have reached the server.
//
// # Errors
//
// A problem the server answered is an *Error with its HTTP Status, its stable Code (api.md,
// docs/api-errors.md), Detail, Title and RequestID. Each code has a sentinel, so callers
// branch with errors.Is(err, client.ErrInsufficientFunds); CodeOf(err) returns the code. A
// rejected write changed nothing.
//
// # Amounts
//
// Amounts are Amount (unsigned, up to 2^128−1) and balances SignedAmount, written on the wire
// as strings of decimal digits in the asset's minor units ("1050" is 10.50 USD). They
// convert exactly to and from math/big; there is no float anywhere.
//
// # Lists and events
//
// List* methods return one Page; the iterators (Accounts, Transfers, Entries, APIKeys,
// Journal) walk every page as a Go 1.23 iter.Seq2, and Events follows the journal's events
// for ever with long polls.
//
// # Transports
//
// New makes a client of the REST API; NewGRPC one of the gRPC API (tpwallet serve
// --grpc-addr), with the same methods, types, errors and retry policy:
//
//	c, err := client.NewGRPC("127.0.0.1:9090", os.Getenv("TPWALLET_API_KEY"))
//	defer c.Close()
//
// The operations sit on a small internal transport interface (transport.go). Over gRPC
// the Idempotency-Key is idempotency-key metadata, made once per call and sent on every
// attempt; a call is retried on Unavailable or ResourceExhausted answers (after their
// RetryInfo) and on connection errors, as REST's 503, 429 and network errors; and the
// *Error's Code is the ErrorInfo's reason, its Status the HTTP status REST gives that code,
// so errors.Is(err, client.ErrInsufficientFunds) reads the same on both. gRPC answers carry
// no request id (RequestID is empty). The operations gRPC does not have — ListEvents and
// Events — fail at once with an error matching errors.ErrUnsupported; use a REST client
// for them. Keys are scoped to their transport (docs/grpc.md): retry a write over the
// transport it started on.
//
// # Webhooks
//
// CreateWebhook registers an endpoint that tpwallet POSTs the journal's events to, and
// returns its secret, once; ListWebhooks, GetWebhook (with the state of its deliveries),
// DeleteWebhook, ListWebhookDeliveries, ListWebhookDeadLetters and ReplayWebhook manage it
// (docs/webhooks.md; over REST and gRPC alike). The receiver checks each delivery with package
// client/webhook: webhook.Verify(secret, r.Header, body, time.Now(), webhook.DefaultTolerance)
// on the raw body, before parsing it. Like CreateAPIKey, CreateWebhook takes no
// Idempotency-Key and is not retried once an attempt may have reached the server.
//
// A REST client uses only the standard library; NewGRPC brings google.golang.org/grpc and
// the generated package tpwalletv1 (proto/tpwallet/v1).
package client
