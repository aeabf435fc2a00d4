package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/tpwallet/tpwallet/client"
)

// The examples run against a real `tpwallet serve` that TestMain starts: baseURL is its
// address and apiKey its admin key (in your code: the server's URL and an API key, e.g.
// from the environment).

// Open a treasury that may go below zero and two user accounts, fund alice, and pay bob.
func Example() {
	ctx := context.Background()
	c, err := client.New(baseURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}
	treasury, err := c.CreateAccount(ctx, client.CreateAccountRequest{Owner: "bank", Asset: "USD",
		Kind: client.AccountSystem, AllowNegative: true})
	if err != nil {
		log.Fatal(err)
	}
	alice, err := c.CreateAccount(ctx, client.CreateAccountRequest{Owner: "user:alice", Asset: "USD"})
	if err != nil {
		log.Fatal(err)
	}
	bob, err := c.CreateAccount(ctx, client.CreateAccountRequest{Owner: "user:bob", Asset: "USD"})
	if err != nil {
		log.Fatal(err)
	}

	// 100.00 USD in (amounts are minor units), then 2.50 to bob.
	if _, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: treasury.ID, Destination: alice.ID,
		Amount: client.NewAmount(10000), Kind: client.KindTopup}); err != nil {
		log.Fatal(err)
	}
	pay, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: alice.ID, Destination: bob.ID,
		Amount: client.MustParseAmount("250"), Reference: "order-42"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pay.Status, pay.Amount)

	for _, id := range []string{treasury.ID, alice.ID, bob.ID} {
		a, err := c.GetAccount(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(a.Owner, a.Balance.Posted)
	}
	// Output:
	// posted 250
	// bank -10000
	// user:alice 9750
	// user:bob 250
}

// Hold 20.00 for ten minutes, then capture 15.00 of it; the rest is released.
func ExampleClient_PostTransfer() {
	ctx := context.Background()
	c, err := client.New(baseURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}
	buyer, shop := exampleFunded(ctx, c, 5000)

	hold, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: buyer, Destination: shop,
		Amount: client.NewAmount(2000), Kind: client.KindP2M, Hold: &client.Hold{Timeout: 10 * time.Minute}})
	if err != nil {
		log.Fatal(err)
	}
	a, _ := c.GetAccount(ctx, buyer)
	fmt.Println(hold.Status, "available:", a.Balance.Available, "held:", a.Balance.PendingDebits)

	captured, err := c.PostTransfer(ctx, hold.ID, client.PostTransferRequest{Amount: client.NewAmount(1500)})
	if err != nil {
		log.Fatal(err)
	}
	a, _ = c.GetAccount(ctx, buyer)
	fmt.Println(captured.Status, captured.AmountPosted, "available:", a.Balance.Available, "held:", a.Balance.PendingDebits)
	// Output:
	// pending available: 3000 held: 2000
	// posted 1500 available: 3500 held: 0
}

// A rejection is an *client.Error; branch on its code with errors.Is. A rejected transfer
// changed nothing.
func ExampleErrInsufficientFunds() {
	ctx := context.Background()
	c, err := client.New(baseURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}
	alice, bob := exampleFunded(ctx, c, 100)

	_, err = c.CreateTransfer(ctx, client.CreateTransferRequest{Source: alice, Destination: bob,
		Amount: client.NewAmount(500)})
	switch {
	case errors.Is(err, client.ErrInsufficientFunds):
		var e *client.Error
		errors.As(err, &e)
		fmt.Println("declined:", e.Status, e.Code)
	case err != nil:
		log.Fatal(err)
	}
	a, _ := c.GetAccount(ctx, alice)
	fmt.Println("balance:", a.Balance.Available)
	// Output:
	// declined: 422 insufficient_funds
	// balance: 100
}

// Walk every transfer of an account, newest first, a page of two at a time.
func ExampleClient_Transfers() {
	ctx := context.Background()
	c, err := client.New(baseURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}
	alice, bob := exampleFunded(ctx, c, 1000)
	for _, cents := range []uint64{100, 200, 300} {
		if _, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: alice, Destination: bob,
			Amount: client.NewAmount(cents)}); err != nil {
			log.Fatal(err)
		}
	}

	for t, err := range c.Transfers(ctx, client.ListTransfersParams{Account: alice, ListParams: client.ListParams{Limit: 2}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(t.Kind, t.Amount)
	}
	// Output:
	// p2p 300
	// p2p 200
	// p2p 100
	// topup 1000
}

// A retried write is applied once: WithMeta shows the key it carried and whether the answer
// was the stored one. Here the caller sends its own key twice, as after a crash.
func ExampleWithIdempotencyKey() {
	ctx := context.Background()
	c, err := client.New(baseURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}
	alice, bob := exampleFunded(ctx, c, 1000)
	key := "refund-" + alice // stored with the intent, before the first try

	for range 2 {
		var m client.Meta
		_, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: alice, Destination: bob,
			Amount: client.NewAmount(400)}, client.WithIdempotencyKey(key), client.WithMeta(&m))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("status", m.Status, "replayed", m.Replayed)
	}
	a, _ := c.GetAccount(ctx, alice)
	fmt.Println("balance:", a.Balance.Posted)
	// Output:
	// status 201 replayed false
	// status 201 replayed true
	// balance: 600
}

// Follow the journal's events as they happen (long polls), from where a consumer left off.
func ExampleClient_Events() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(baseURL, apiKey)
	if err != nil {
		log.Fatal(err)
	}
	head, err := c.JournalHead(ctx)
	if err != nil {
		log.Fatal(err)
	}
	alice, bob := exampleFunded(ctx, c, 700)
	if _, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: alice, Destination: bob,
		Amount: client.NewAmount(700)}); err != nil {
		log.Fatal(err)
	}

	after := fmt.Sprint(head.Seq) // or the ID of the last event handled
	for e, err := range c.Events(ctx, client.EventsParams{After: after}) {
		if err != nil {
			log.Fatal(err)
		}
		if e.Data.Transfer != nil && e.Data.Transfer.Destination == bob {
			fmt.Println(e.Type, e.Data.Transfer.Source == alice, e.Data.Amount)
			break
		}
	}
	// Output:
	// transfer.posted true 700
}

// exampleFunded opens a funded account (by a fresh treasury) and an empty one, both USD.
func exampleFunded(ctx context.Context, c *client.Client, cents uint64) (funded, empty string) {
	t, err := c.CreateAccount(ctx, client.CreateAccountRequest{Asset: "USD", AllowNegative: true, Kind: client.AccountSystem})
	if err != nil {
		log.Fatal(err)
	}
	a, err := c.CreateAccount(ctx, client.CreateAccountRequest{Asset: "USD"})
	if err != nil {
		log.Fatal(err)
	}
	b, err := c.CreateAccount(ctx, client.CreateAccountRequest{Asset: "USD"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: t.ID, Destination: a.ID,
		Amount: client.NewAmount(cents), Kind: client.KindTopup}); err != nil {
		log.Fatal(err)
	}
	return a.ID, b.ID
}
