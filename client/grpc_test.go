package client_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/client"
)

// newGRPCClient returns a gRPC client of target with the admin key and opts, closed at the
// test's end.
func newGRPCClient(t testing.TB, target string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.NewGRPC(target, adminKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// transports are the two clients of the shared server, by name.
func transports(t *testing.T) []struct {
	name string
	c    *client.Client
} {
	return []struct {
		name string
		c    *client.Client
	}{{"rest", sharedClient(t)}, {"grpc", newGRPCClient(t, grpcTarget)}}
}

// step is one SDK call of the parity script; s is the run's suffix, in every id it makes.
type step struct {
	name string
	call func(ctx context.Context, c *client.Client, s string) (any, error)
}

// parityScript is the same sequence of calls for each transport: successes and the
// rejections of every kind the SDK maps (a code, a batch's errors, a replay).
func parityScript() []step {
	hooks := map[string]string{} // the webhook each run created, by suffix
	tr := func(src, dst, amount string) client.CreateTransferRequest {
		return client.CreateTransferRequest{Source: src, Destination: dst, Amount: amt(amount)}
	}
	return []step{
		{"create asset", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateAsset(ctx, client.Asset{Code: "P" + s, Scale: 2})
		}},
		{"asset exists", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateAsset(ctx, client.Asset{Code: "P" + s, Scale: 2})
		}},
		{"treasury", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateAccount(ctx, client.CreateAccountRequest{ID: "treasury-" + s, Asset: "P" + s,
				Kind: client.AccountSystem, AllowNegative: true})
		}},
		{"alice", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateAccount(ctx, client.CreateAccountRequest{ID: "alice-" + s, Owner: "owner-" + s,
				Asset: "P" + s, Metadata: map[string]string{"tier": "gold"}})
		}},
		{"bob", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateAccount(ctx, client.CreateAccountRequest{ID: "bob-" + s, Owner: "owner-" + s, Asset: "P" + s})
		}},
		{"account exists", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateAccount(ctx, client.CreateAccountRequest{ID: "bob-" + s, Asset: "P" + s})
		}},
		{"asset unknown", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateAccount(ctx, client.CreateAccountRequest{ID: "carol-" + s, Asset: "Q" + s})
		}},
		{"top up", func(ctx context.Context, c *client.Client, s string) (any, error) {
			r := tr("treasury-"+s, "alice-"+s, "1000")
			r.ID, r.Kind = "top-"+s, client.KindTopup
			return c.CreateTransfer(ctx, r)
		}},
		{"pay", func(ctx context.Context, c *client.Client, s string) (any, error) {
			r := tr("alice-"+s, "bob-"+s, "250")
			r.ID, r.Reference, r.Metadata = "pay-"+s, "order 7", map[string]string{"cart": "42"}
			return c.CreateTransfer(ctx, r)
		}},
		{"insufficient funds", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateTransfer(ctx, tr("alice-"+s, "bob-"+s, "1000000"))
		}},
		{"same account", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateTransfer(ctx, tr("alice-"+s, "alice-"+s, "1"))
		}},
		{"zero amount", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateTransfer(ctx, tr("alice-"+s, "bob-"+s, "0"))
		}},
		{"no such account", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.GetAccount(ctx, "nobody-"+s)
		}},
		{"hold", func(ctx context.Context, c *client.Client, s string) (any, error) {
			r := tr("alice-"+s, "bob-"+s, "100")
			r.ID, r.Hold = "hold-"+s, &client.Hold{Timeout: time.Hour}
			return c.CreateTransfer(ctx, r)
		}},
		{"increase", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.IncreaseTransfer(ctx, "hold-"+s, amt("50"))
		}},
		{"post part", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.PostTransfer(ctx, "hold-"+s, client.PostTransferRequest{Amount: amt("70"), NotFinal: true})
		}},
		{"post too much", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.PostTransfer(ctx, "hold-"+s, client.PostTransferRequest{Amount: amt("700")})
		}},
		{"post rest", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.PostTransfer(ctx, "hold-"+s, client.PostTransferRequest{})
		}},
		{"void posted", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.VoidTransfer(ctx, "hold-"+s)
		}},
		{"no such transfer", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.GetTransfer(ctx, "none-"+s)
		}},
		{"freeze", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.FreezeAccount(ctx, "bob-"+s)
		}},
		{"frozen", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateTransfer(ctx, tr("alice-"+s, "bob-"+s, "1"))
		}},
		{"unfreeze", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.UnfreezeAccount(ctx, "bob-"+s)
		}},
		{"atomic batch failed", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateBatchAtomic(ctx, []client.CreateTransferRequest{tr("alice-"+s, "bob-"+s, "1"),
				tr("alice-"+s, "bob-"+s, "999999"), tr("alice-"+s, "nobody-"+s, "1")})
		}},
		{"atomic batch", func(ctx context.Context, c *client.Client, s string) (any, error) {
			a, b := tr("alice-"+s, "bob-"+s, "5"), tr("bob-"+s, "alice-"+s, "3")
			a.ID, b.ID = "ba-"+s, "bb-"+s
			return c.CreateBatchAtomic(ctx, []client.CreateTransferRequest{a, b})
		}},
		{"batch", func(ctx context.Context, c *client.Client, s string) (any, error) {
			a := tr("alice-"+s, "bob-"+s, "2")
			a.ID = "bc-" + s
			return c.CreateBatch(ctx, []client.CreateTransferRequest{a, tr("alice-"+s, "bob-"+s, "999999")})
		}},
		{"get transfer", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.GetTransfer(ctx, "hold-"+s)
		}},
		{"get account", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.GetAccount(ctx, "alice-"+s)
		}},
		{"list accounts", func(ctx context.Context, c *client.Client, s string) (any, error) {
			p, err := c.ListAccounts(ctx, client.ListAccountsParams{Owner: "owner-" + s})
			return p, err
		}},
		{"list transfers", func(ctx context.Context, c *client.Client, s string) (any, error) {
			var all []*client.Transfer
			for tr, err := range c.Transfers(ctx, client.ListTransfersParams{Account: "alice-" + s,
				ListParams: client.ListParams{Limit: 2}}) {
				if err != nil {
					return nil, err
				}
				all = append(all, tr)
			}
			return all, nil
		}},
		{"entries", func(ctx context.Context, c *client.Client, s string) (any, error) {
			var all []*client.Entry
			for e, err := range c.Entries(ctx, "alice-"+s, client.ListParams{Limit: 3}) {
				if err != nil {
					return nil, err
				}
				all = append(all, e)
			}
			return all, nil
		}},
		{"balance", func(ctx context.Context, c *client.Client, s string) (any, error) {
			b, err := c.BalanceAt(ctx, "alice-"+s, time.Time{})
			if err != nil {
				return nil, err
			}
			return b.Posted, nil // At is the server's now
		}},
		{"bad list limit", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.ListTransfers(ctx, client.ListTransfersParams{ListParams: client.ListParams{Limit: 5000}})
		}},
		{"idempotent replay", func(ctx context.Context, c *client.Client, s string) (any, error) {
			r := tr("alice-"+s, "bob-"+s, "9")
			var m1, m2 client.Meta
			t1, err := c.CreateTransfer(ctx, r, client.WithIdempotencyKey("key-"+s), client.WithMeta(&m1))
			if err != nil {
				return nil, err
			}
			t2, err := c.CreateTransfer(ctx, r, client.WithIdempotencyKey("key-"+s), client.WithMeta(&m2))
			if err != nil {
				return nil, err
			}
			return []any{t1.ID == t2.ID, m1.Replayed, m2.Replayed, m2.IdempotencyKey}, nil
		}},
		{"idempotency key reused", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateTransfer(ctx, tr("alice-"+s, "bob-"+s, "10"), client.WithIdempotencyKey("key-"+s))
		}},
		// Webhooks: only what does not depend on the events other tests commit meanwhile.
		{"create webhook", func(ctx context.Context, c *client.Client, s string) (any, error) {
			w, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "http://127.0.0.1:1/hook-" + s,
				EventTypes: []client.EventType{"asset.created"}, Description: "feed " + s})
			if err != nil {
				return nil, err
			}
			hooks[s] = w.ID
			return webhookOf(&w.Webhook, strings.HasPrefix(w.Secret, "whsec_")), nil
		}},
		{"webhook with a bad URL", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "ftp://127.0.0.1/hook-" + s})
		}},
		{"webhook with an unknown event type", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "http://127.0.0.1:1/hook-" + s,
				EventTypes: []client.EventType{"transfer.lost"}})
		}},
		{"get webhook", func(ctx context.Context, c *client.Client, s string) (any, error) {
			w, err := c.GetWebhook(ctx, hooks[s])
			if err != nil {
				return nil, err
			}
			return webhookOf(w, false), nil
		}},
		{"list webhooks", func(ctx context.Context, c *client.Client, s string) (any, error) {
			for w, err := range c.Webhooks(ctx, client.ListParams{Limit: 2}) {
				if err != nil {
					return nil, err
				}
				if w.ID == hooks[s] {
					return webhookOf(w, false), nil
				}
			}
			return "not listed", nil
		}},
		{"webhook's follower", func(ctx context.Context, c *client.Client, s string) (any, error) {
			fs, err := c.ListFollowers(ctx)
			for _, f := range fs {
				if f.Name == "webhook:"+hooks[s] {
					return "listed", err
				}
			}
			return "not listed", err
		}},
		{"webhook deliveries", func(ctx context.Context, c *client.Client, s string) (any, error) {
			_, err := c.ListWebhookDeliveries(ctx, hooks[s], client.ListParams{Limit: 10})
			return nil, err
		}},
		{"webhook dead letters", func(ctx context.Context, c *client.Client, s string) (any, error) {
			_, err := c.ListWebhookDeadLetters(ctx, hooks[s], client.ListParams{})
			return nil, err
		}},
		{"deliveries, bad limit", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.ListWebhookDeliveries(ctx, hooks[s], client.ListParams{Limit: 5000})
		}},
		{"replay from the head", func(ctx context.Context, c *client.Client, s string) (any, error) {
			h, err := c.JournalHead(ctx)
			if err != nil {
				return nil, err
			}
			return nil, c.ReplayWebhook(ctx, hooks[s], h.Seq+1)
		}},
		{"replay an unknown webhook", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return nil, c.ReplayWebhook(ctx, "wh_0000000000000000", 1)
		}},
		{"delete webhook", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return nil, c.DeleteWebhook(ctx, hooks[s])
		}},
		{"get a deleted webhook", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return c.GetWebhook(ctx, hooks[s])
		}},
		{"delete it again", func(ctx context.Context, c *client.Client, s string) (any, error) {
			return nil, c.DeleteWebhook(ctx, hooks[s])
		}},
		{"balances after", func(ctx context.Context, c *client.Client, s string) (any, error) {
			var out []client.Balance
			for _, id := range []string{"treasury-", "alice-", "bob-"} {
				a, err := c.GetAccount(ctx, id+s)
				if err != nil {
					return nil, err
				}
				out = append(out, a.Balance)
			}
			return out, nil
		}},
	}
}

// webhookOf is what of an endpoint does not depend on the events committed since its
// creation (by other tests too), nor on its random id.
func webhookOf(w *client.Webhook, secret bool) any {
	return struct {
		URL, Description string
		EventTypes       []client.EventType
		CreatedAt        time.Time
		Secret           bool
	}{w.URL, w.Description, w.EventTypes, w.CreatedAt, secret}
}

var timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)

// outcome is what a step's result and error look like with the run's suffix and times
// taken out: what must be the same over both transports.
func outcome(t *testing.T, s string, v any, err error) string {
	t.Helper()
	var e *client.Error
	if err != nil && !errors.As(err, &e) {
		t.Fatalf("%v: not an *Error", err)
	}
	if e != nil {
		c := *e
		c.RequestID = "" // gRPC answers carry no request id
		v = c
	}
	b, jerr := json.Marshal(v)
	if jerr != nil {
		t.Fatal(jerr)
	}
	return timeRE.ReplaceAllString(strings.ReplaceAll(string(b), s, "S"), "TIME")
}

// TestTransportParity runs the same SDK calls over REST and over gRPC against the same
// server (on separate accounts) and checks each step's result or error is the same: the
// same types, the same *Error with the same code, status, detail and batch errors, so that
// errors.Is works alike.
func TestTransportParity(t *testing.T) {
	t.Parallel()
	script := parityScript()
	got := map[string][]string{}
	for _, tp := range transports(t) {
		s := rand.Text()[:10]
		for _, st := range script {
			v, err := st.call(t.Context(), tp.c, s)
			got[tp.name] = append(got[tp.name], outcome(t, s, v, err))
		}
	}
	for i, st := range script {
		rest, grpc := got["rest"][i], got["grpc"][i]
		if testing.Verbose() {
			t.Logf("%s: %s", st.name, grpc)
		}
		if rest != grpc {
			t.Errorf("%s:\n rest %s\n grpc %s", st.name, rest, grpc)
		}
	}
	// The script is not vacuous: it has both successes and every kind of rejection.
	for _, want := range []client.Code{client.CodeAssetExists, client.CodeAccountExists, client.CodeAssetUnknown,
		client.CodeInsufficientFunds, client.CodeSameAccount, client.CodeInvalidRequest, client.CodeAccountNotFound,
		client.CodeAmountExceedsHold, client.CodeTransferNotPending, client.CodeTransferNotFound,
		client.CodeAccountFrozen, client.CodeBatchFailed, client.CodeIdempotencyKeyReused, client.CodeWebhookNotFound} {
		if !strings.Contains(strings.Join(got["grpc"], "\n"), `"Code":"`+string(want)+`"`) {
			t.Errorf("no step answered %s", want)
		}
	}
}

// TestGRPCErrors checks the typed errors of the gRPC transport one by one: the sentinels
// match, the batch's items are there, and what gRPC does not have is refused as such.
func TestGRPCErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newGRPCClient(t, grpcTarget)
	_, users := funded(t, c, "USD", 2, "10")
	_, err := c.CreateTransfer(ctx, client.CreateTransferRequest{Source: users[0], Destination: users[1], Amount: amt("11")})
	if !errors.Is(err, client.ErrInsufficientFunds) || client.CodeOf(err) != client.CodeInsufficientFunds {
		t.Errorf("overdraft over gRPC: %v, want insufficient_funds", err)
	}
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 422 || e.Detail == "" || e.Title != "Unprocessable Entity" {
		t.Errorf("overdraft over gRPC: %+v", e)
	}
	_, err = c.CreateBatchAtomic(ctx, []client.CreateTransferRequest{
		{Source: users[0], Destination: users[1], Amount: amt("1")},
		{Source: users[0], Destination: users[1], Amount: amt("100")}})
	if !errors.As(err, &e) || !errors.Is(err, client.ErrBatchFailed) || len(e.Errors) != 1 || e.Errors[0].Index != 1 ||
		!errors.Is(e.Errors[0].Err(), client.ErrInsufficientFunds) {
		t.Errorf("atomic batch over gRPC: %v %+v", err, e)
	}
	wantBalance(t, c, users[0], "10", "10")

	bad, err := client.NewGRPC(grpcTarget, "not-a-key")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.ListAssets(ctx); !errors.Is(err, client.ErrUnauthenticated) {
		t.Errorf("unknown key over gRPC: %v, want unauthenticated", err)
	}

	if _, err := c.ListEvents(ctx, client.EventsParams{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ListEvents over gRPC: %v, want errors.ErrUnsupported", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready over gRPC: %v", err)
	}
	if _, err := client.NewGRPC("", "k"); err == nil {
		t.Error(`NewGRPC("") = nil error`)
	}
}

func ExampleNewGRPC() {
	// A gRPC client has the methods, types and errors of a REST one.
	c, err := client.NewGRPC(grpcTarget, apiKey)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()
	owner := "user:" + rand.Text()[:8]
	a, err := c.CreateAccount(ctx, client.CreateAccountRequest{Owner: owner, Asset: "USD"})
	if err != nil {
		panic(err)
	}
	_, err = c.CreateTransfer(ctx, client.CreateTransferRequest{Source: a.ID, Destination: a.ID, Amount: client.NewAmount(1)})
	fmt.Println(errors.Is(err, client.ErrSameAccount))
	// Output: true
}
