package natsbus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/natsbus"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

// natsURL is the test NATS server (scripts/services.sh starts it); TPWALLET_TEST_NATS_URL
// overrides it.
func natsURL() string {
	if u := os.Getenv("TPWALLET_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// connect connects to the test server, failing t (never skipping) if it is down.
func connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(natsURL(), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("NATS at %s (scripts/services.sh starts it): %v", natsURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// names returns a subject prefix and a stream name of this test alone, and deletes every
// stream whose name starts with that stream name when the test ends.
func names(t testing.TB, js jetstream.JetStream) (prefix, stream string) {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	prefix, stream = "tpwtest_"+suffix, "TPWTEST_"+strings.ToUpper(suffix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l := js.StreamNames(ctx)
		var mine []string
		for name := range l.Name() {
			if strings.HasPrefix(name, stream) {
				mine = append(mine, name)
			}
		}
		for _, name := range mine {
			if err := js.DeleteStream(ctx, name); err != nil {
				t.Errorf("delete stream %s: %v", name, err)
			}
		}
	})
	return prefix, stream
}

// ledger is a real tpwallet over Pebble: store → engine (feeding a hub) → service → REST.
type ledger struct {
	store *pebblestore.Store
	eng   *engine.Engine
	svc   *service.Service
	api   *httpapi.Server
	hub   *events.Hub
}

const adminKey = "tpw_natsbus_test_admin_key_0123456789"

func openLedger(t testing.TB) *ledger {
	t.Helper()
	ctx := context.Background()
	ps, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hub := events.NewHub()
	eng, err := engine.Open(ctx, ps, engine.Options{Observer: hub})
	if err != nil {
		ps.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	svc, err := service.New(ctx, eng, ps, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EnsureAdminKey(ctx, adminKey); err != nil {
		t.Fatal(err)
	}
	return &ledger{store: ps, eng: eng, svc: svc, api: httpapi.New(svc, httpapi.Options{Hub: hub}), hub: hub}
}

// do sends a REST request with the admin key and returns the status and body.
func (l *ledger) do(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	r := httptest.NewRequest(method, path, bytes.NewReader(b))
	r.Header.Set("Authorization", "Bearer "+adminKey)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	l.api.ServeHTTP(w, r)
	return w.Code, w.Body.Bytes()
}

func (l *ledger) mustDo(t testing.TB, method, path string, body any, want int) []byte {
	t.Helper()
	code, b := l.do(t, method, path, body)
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	return b
}

// accounts creates the treasury and users u0..u(n-1), each funded with 1,000,000.
func (l *ledger) accounts(t testing.TB, n int) {
	t.Helper()
	l.mustDo(t, "POST", "/v1/accounts", map[string]any{"id": "treasury", "asset": "USD", "allow_negative": true}, 201)
	for i := range n {
		id := "u" + itoa(i)
		l.mustDo(t, "POST", "/v1/accounts", map[string]any{"id": id, "asset": "USD"}, 201)
		l.mustDo(t, "POST", "/v1/transfers", map[string]any{"source": "treasury", "destination": id, "amount": "1000000"}, 201)
	}
}

// balance returns an account's posted balance.
func (l *ledger) balance(t *testing.T, id string) string {
	t.Helper()
	var a struct {
		Balance struct{ Posted string } `json:"balance"`
	}
	if err := json.Unmarshal(l.mustDo(t, "GET", "/v1/accounts/"+id, nil, http.StatusOK), &a); err != nil {
		t.Fatal(err)
	}
	return a.Balance.Posted
}

// journal returns every event of the journal, in order.
func (l *ledger) journal(t testing.TB) []events.Event {
	t.Helper()
	var all []events.Event
	p := events.Start
	for {
		evs, next, _, err := events.Read(context.Background(), l.store, p, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
		if next == p {
			return all
		}
		p = next
	}
}

// follow runs the publisher's follower (natsbus.NewFollower, as serve wires it, with
// batches of batch events) over l's journal until the test ends.
func (l *ledger) follow(t *testing.T, pub *natsbus.Publisher, batch int) *events.Follower {
	t.Helper()
	f := natsbus.NewFollower(l.store, l.store, l.hub, pub, natsbus.FollowerOptions{Batch: batch,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// waitFor polls cond until it holds, failing t after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling an outside system's state
	}
}

// streamMsgs waits until stream holds want messages, then returns all of them in order.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string, want int) []jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	var got uint64
	waitFor(t, "stream "+stream+" to hold "+itoa(want)+" messages", func() bool {
		s, err := js.Stream(ctx, stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return false // not made yet
		}
		if err != nil {
			t.Fatal(err)
		}
		got = s.CachedInfo().State.Msgs
		return got >= uint64(want)
	})
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for uint64(len(msgs)) < got {
		b, err := c.Fetch(int(got)-len(msgs), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := len(msgs)
		for m := range b.Messages() {
			msgs = append(msgs, m)
		}
		if b.Error() != nil || len(msgs) == n {
			t.Fatalf("read stream %s: %d of %d messages: %v", stream, len(msgs), got, b.Error())
		}
	}
	return msgs
}

func itoa(i int) string { return strconv.Itoa(i) }
