package client_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/client"
	"github.com/tpwallet/tpwallet/client/webhook"
)

// receiver is a webhook receiver: it verifies each delivery with the endpoint's secret,
// answers 503 to the first delivery when failFirst is set, and sends the ids of the
// deliveries it accepted on got.
type receiver struct {
	URL string
	got chan string

	mu        sync.Mutex
	secret    string
	failFirst bool
	bad       []string // deliveries whose signature did not verify
}

func newReceiver(t testing.TB) *receiver {
	t.Helper()
	r := &receiver{got: make(chan string, 16)}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hooks/tpwallet"
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	id := req.Header.Get(webhook.HeaderID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := webhook.Verify(r.secret, req.Header, body, time.Now(), webhook.DefaultTolerance); err != nil {
		r.bad = append(r.bad, id+": "+err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.failFirst {
		r.failFirst = false
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	r.got <- id
}

// next waits for the next accepted delivery; the bound only turns a hang into a failure.
func (r *receiver) next(t *testing.T) string {
	t.Helper()
	select {
	case id := <-r.got:
		return id
	case <-time.After(time.Minute):
		t.Fatal("no webhook delivered within a minute")
		return ""
	}
}

// TestWebhooks drives every webhook operation against a real server with
// --webhook-allow-private and a receiver that verifies signatures with the secret
// CreateWebhook returned: a failed attempt and its retry, the delivery log, the dead
// letters, a replay, and the deletion.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// A server of its own, so that the endpoint gets this test's events only.
	c := newClient(t, newServer(t, "--webhook-allow-private").URL)
	rcv := newReceiver(t)
	_, users := funded(t, c, "USD", 2, "100")

	created, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: rcv.URL,
		EventTypes: []client.EventType{client.EventTransferPosted}, Description: "sdk test"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Secret, "whsec_") || created.ID == "" || created.URL != rcv.URL ||
		created.Description != "sdk test" || created.CreatedAt.IsZero() ||
		len(created.EventTypes) != 1 || created.EventTypes[0] != client.EventTransferPosted ||
		created.Status.Breaker != client.BreakerClosed {
		t.Errorf("CreateWebhook = %+v", created)
	}
	rcv.mu.Lock()
	rcv.secret, rcv.failFirst = created.Secret, true
	rcv.mu.Unlock()
	id := created.ID

	// Two payments: the first event's first attempt fails (503), its retry succeeds, and
	// the second follows it. When the second arrives the first is recorded: deliveries go
	// one at a time, each recorded before the next.
	t1 := mustTransfer(t, c, client.CreateTransferRequest{Source: users[0], Destination: users[1], Amount: amt("1")})
	head := headSeq(t, c)
	ev1 := uitoa(head) + "-0"
	mustTransfer(t, c, client.CreateTransferRequest{Source: users[0], Destination: users[1], Amount: amt("2")})
	if got := rcv.next(t); got != ev1 {
		t.Fatalf("first delivery %s, want %s (transfer %s)", got, ev1, t1.ID)
	}
	ev2 := rcv.next(t)

	var ds []*client.WebhookDelivery
	for d, err := range c.WebhookDeliveries(ctx, id, client.ListParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	// Newest first: possibly ev2's success (if recorded yet), ev1's success, ev1's failure.
	if len(ds) > 0 && ds[0].EventID == ev2 {
		ds = ds[1:]
	}
	if len(ds) != 2 {
		t.Fatalf("deliveries %+v: want ev1's two attempts", ds)
	}
	ok, failed := ds[0], ds[1]
	if ok.EventID != ev1 || ok.Attempt != 2 || ok.Outcome != client.OutcomeDelivered || ok.Status != 204 ||
		ok.Error != "" || ok.NextAttemptAt != nil || ok.Time.IsZero() || ok.EventType != client.EventTransferPosted {
		t.Errorf("second attempt %+v", ok)
	}
	if failed.EventID != ev1 || failed.Attempt != 1 || failed.Outcome != client.OutcomeRetrying || failed.Status != 503 ||
		failed.Error == "" || failed.NextAttemptAt == nil || !failed.NextAttemptAt.After(failed.Time) || failed.Duration <= 0 {
		t.Errorf("first attempt %+v", failed)
	}

	got, err := c.GetWebhook(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.Status.Delivered < 1 || got.Status.LastSuccessAt == nil || got.Status.LastErrorAt == nil ||
		got.Status.Breaker != client.BreakerClosed {
		t.Errorf("GetWebhook = %+v", got)
	}
	found := false
	for w, err := range c.Webhooks(ctx, client.ListParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		found = found || (w.ID == id && w.URL == rcv.URL)
	}
	if !found {
		t.Errorf("Webhooks did not list %s", id)
	}
	dl, err := c.ListWebhookDeadLetters(ctx, id, client.ListParams{})
	if err != nil || len(dl.Items) != 0 || dl.NextCursor != "" {
		t.Errorf("dead letters = %+v, %v: want none", dl, err)
	}

	// A replay from ev1's record sends it again, with its own id.
	if err := c.ReplayWebhook(ctx, id, head); err != nil {
		t.Fatal(err)
	}
	if got := rcv.next(t); got != ev1 {
		t.Errorf("after the replay: %s, want %s again", got, ev1)
	}
	_, err = c.ListWebhookDeliveries(ctx, "wh_none", client.ListParams{})
	wantCode(t, err, client.ErrWebhookNotFound, client.CodeWebhookNotFound)
	wantCode(t, c.ReplayWebhook(ctx, "wh_none", 1), client.ErrWebhookNotFound, client.CodeWebhookNotFound)

	if err := c.DeleteWebhook(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetWebhook(ctx, id)
	wantCode(t, err, client.ErrWebhookNotFound, client.CodeWebhookNotFound)
	wantCode(t, c.DeleteWebhook(ctx, id), client.ErrWebhookNotFound, client.CodeWebhookNotFound)

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Errorf("deliveries that did not verify with the secret: %q", rcv.bad)
	}
}

// TestWebhookRefusals: a private receiver without --webhook-allow-private, a bad event
// type, a create that is not retried, over REST and over gRPC.
func TestWebhookRefusals(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := newServer(t) // no --webhook-allow-private
	proxy := newFaultProxy(t, srv.URL)
	c := newClient(t, proxy.URL, client.WithRetryPolicy(client.RetryPolicy{BaseDelay: time.Millisecond}))
	_, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "http://127.0.0.1:1/hook"})
	wantCode(t, err, client.ErrWebhookURLForbidden, client.CodeWebhookURLForbidden)
	_, err = c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "http://127.0.0.1:1/hook",
		EventTypes: []client.EventType{"transfer.nope"}})
	wantCode(t, err, client.ErrInvalidRequest, client.CodeInvalidRequest)
	if seen := proxy.requests(); len(seen) != 2 || seen[0].hasKey || seen[0].body == "" {
		t.Errorf("creates sent %+v: want two, without Idempotency-Key", seen)
	}

	// No answer after the server got it: a create may have registered, so it is not retried.
	proxy.reset()
	proxy.setPlan(nil, fault{kind: dropAfter})
	var m client.Meta
	_, err = c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "http://127.0.0.1:1/hook"}, client.WithMeta(&m))
	if err == nil || client.CodeOf(err) != "" || m.Attempts != 1 {
		t.Errorf("create with a dropped answer: %v, %+v: want a network error after one attempt", err, m)
	}
	// A replay is: it is the same whether it ran once or twice.
	proxy.reset()
	proxy.setPlan(nil, fault{kind: dropAfter})
	err = c.ReplayWebhook(ctx, "wh_none", 1, client.WithMeta(&m))
	if !errors.Is(err, client.ErrWebhookNotFound) || m.Attempts != 2 {
		t.Errorf("replay with a dropped answer: %v, %+v: want webhook_not_found on the second attempt", err, m)
	}

	// Over gRPC, the same refusals (TestTransportParity has the rest).
	g := newGRPCClient(t, srv.GRPC)
	_, err = g.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "http://127.0.0.1:1/hook"})
	if !errors.Is(err, client.ErrWebhookURLForbidden) || client.CodeOf(err) != client.CodeWebhookURLForbidden {
		t.Errorf("CreateWebhook of a private URL over gRPC: %v, want webhook_url_forbidden", err)
	}
	for name, call := range map[string]func() error{
		"GetWebhook":    func() error { _, err := g.GetWebhook(ctx, "wh_x"); return err },
		"DeleteWebhook": func() error { return g.DeleteWebhook(ctx, "wh_x") },
		"Deliveries":    func() error { _, err := g.ListWebhookDeliveries(ctx, "wh_x", client.ListParams{}); return err },
		"DeadLetters":   func() error { _, err := g.ListWebhookDeadLetters(ctx, "wh_x", client.ListParams{}); return err },
		"Replay":        func() error { return g.ReplayWebhook(ctx, "wh_x", 1) },
	} {
		if err := call(); !errors.Is(err, client.ErrWebhookNotFound) {
			t.Errorf("%s over gRPC: %v, want webhook_not_found", name, err)
		}
	}
	if l, err := g.ListWebhooks(ctx, client.ListParams{}); err != nil || len(l.Items) != 0 {
		t.Errorf("ListWebhooks over gRPC: %+v, %v: want none", l, err)
	}
}
