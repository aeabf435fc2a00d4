package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/tpwallet/tpwallet/client"
	"github.com/tpwallet/tpwallet/client/webhook"
)

// Register a webhook endpoint, keep its secret with the receiver, which verifies every
// delivery with client/webhook, and look at the delivery log. (The test server runs with
// --webhook-allow-private, so the receiver may be on 127.0.0.1.)
func ExampleClient_CreateWebhook() {
	ctx := context.Background()
	c, err := client.New(baseURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}

	var secret atomic.Pointer[string] // the receiver's copy, from CreateWebhook's answer
	events := make(chan client.Event, 64)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := secret.Load()
		if s == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable) // tpwallet retries
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil || webhook.Verify(*s, r.Header, body, time.Now(), webhook.DefaultTolerance) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev client.Event
		if json.Unmarshal(body, &ev) == nil {
			select {
			case events <- ev:
			default: // nobody is reading any more
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	hook, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: receiver.URL,
		EventTypes: []client.EventType{client.EventAccountCreated}, Description: "example"})
	if err != nil {
		log.Fatal(err)
	}
	secret.Store(&hook.Secret) // shown this once
	defer c.DeleteWebhook(ctx, hook.ID)

	a, err := c.CreateAccount(ctx, client.CreateAccountRequest{Owner: "user:carol", Asset: "USD"})
	if err != nil {
		log.Fatal(err)
	}
	for ev := range events { // other accounts may be opened meanwhile
		if ev.Subject == a.ID {
			fmt.Println("verified", ev.Type)
			break
		}
	}
	got, err := c.GetWebhook(ctx, hook.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("breaker", got.Status.Breaker)
	// Output:
	// verified account.created
	// breaker closed
}
