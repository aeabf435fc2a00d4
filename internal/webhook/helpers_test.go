package webhook_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	clientwebhook "github.com/tpwallet/tpwallet/client/webhook"
	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

// book is a real ledger for the webhooks to follow: Pebble, the engine, the hub that
// wakes followers, and a running follower set, as serve wires them.
type book struct {
	dir   string // Pebble's; "" on PostgreSQL
	store bookStore
	eng   *engine.Engine
	hub   *events.Hub
	set   *events.Set
	n     int // transfers made, for unique ids
}

func openBook(t *testing.T) *book {
	t.Helper()
	return openBookAt(t, t.TempDir())
}

// bookStore is a ledger store with its Meta space, as both backends are.
type bookStore interface {
	engine.Store
	store.Meta
}

func openBookAt(t *testing.T, dir string) *book {
	t.Helper()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return openBookOn(t, st, dir)
}

// openBookPG opens a ledger on the PostgreSQL database at dsn (pgtest.NewDatabase).
func openBookPG(t *testing.T, dsn string) *book {
	t.Helper()
	st, err := pgstore.Open(t.Context(), dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return openBookOn(t, st, "")
}

func openBookOn(t *testing.T, st bookStore, dir string) *book {
	t.Helper()
	var err error
	b := &book{dir: dir, store: st, hub: events.NewHub()}
	b.eng, err = engine.Open(context.Background(), st, engine.Options{Observer: b.hub})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	b.hub.Committed(b.eng.HeadSeq())
	b.set = events.NewSet(b.hub)
	b.set.Start(context.Background())
	t.Cleanup(b.close)
	return b
}

func (b *book) close() {
	if b.eng == nil {
		return
	}
	b.set.Stop()
	b.eng.Close()
	b.eng = nil
}

// submit commits one request and returns its journal seq.
func (b *book) submit(t *testing.T, req ledger.Request) uint64 {
	t.Helper()
	r, err := b.eng.Submit(t.Context(), &engine.Submission{Command: ledger.Command{Requests: []ledger.Request{req}}})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Results[0].Code; c != ledger.CodeOK {
		t.Fatalf("request %+v: %s %s", req, c, r.Results[0].Detail)
	}
	return r.Seq
}

func (b *book) account(t *testing.T, id string, allowNegative bool) uint64 {
	t.Helper()
	return b.submit(t, ledger.Request{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: id,
		Asset: "USD", AllowNegative: allowNegative}})
}

// pay commits a posted transfer of amount from src to dst and returns its seq.
func (b *book) pay(t *testing.T, src, dst string, amount uint64) uint64 {
	t.Helper()
	b.n++
	return b.submit(t, ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
		ID: "t" + strconv.Itoa(b.n), Source: src, Destination: dst, Amount: ledger.AmountFromUint64(amount)}})
}

// opts are manager options for tests: private addresses allowed (the receiver is on
// 127.0.0.1) and a retry schedule in milliseconds.
func (b *book) opts() webhook.Options {
	return webhook.Options{Meta: b.store, Source: b.store, Set: b.set, Hub: b.hub, AllowPrivate: true,
		Timeout: 5 * time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		RetryFor: time.Hour, SyncEvery: 50 * time.Millisecond}
}

func openManager(t *testing.T, o webhook.Options) *webhook.Manager {
	t.Helper()
	m, err := webhook.Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// received is one request a receiver got.
type received struct {
	path   string
	header http.Header
	body   []byte
	at     time.Time
	status int // what the receiver answered
}

// receiver is a real HTTP server on 127.0.0.1 that records every request and answers
// with what answer returns (200 when it is nil).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(r *http.Request, n int) int // n counts requests from 0
	notify chan struct{}                    // gets a token after each request
}

func newReceiver(t *testing.T, answer func(r *http.Request, n int) int) *receiver {
	t.Helper()
	rc := &receiver{answer: answer, notify: make(chan struct{}, 1)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.mu.Unlock()
		status := 200
		if rc.answer != nil {
			status = rc.answer(r, n)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{path: r.URL.Path, header: r.Header.Clone(), body: body, at: time.Now(), status: status})
		rc.mu.Unlock()
		select {
		case rc.notify <- struct{}{}:
		default:
		}
		if status != 0 {
			w.WriteHeader(status)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// delivered returns the event ids the receiver answered 2xx, in arrival order.
func (rc *receiver) delivered() []string {
	var ids []string
	for _, r := range rc.requests() {
		if r.status >= 200 && r.status <= 299 {
			ids = append(ids, r.header.Get(clientwebhook.HeaderID))
		}
	}
	return ids
}

// eventually polls cond until it holds, failing the test after within: the observable
// condition a test waits for, never a sleep in its place.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// journalEvents returns the ids of every event of the journal from seq on that f selects.
func journalEvents(t *testing.T, b *book, from uint64, f events.Filter) []string {
	t.Helper()
	var ids []string
	p := events.Position{Seq: from}
	for {
		evs, next, _, err := events.Read(t.Context(), b.store, p, 1000, f)
		if err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			ids = append(ids, evs[i].ID())
		}
		if next == p {
			return ids
		}
		p = next
	}
}

// fakeResolver answers from a table, and asks the system for names not in it.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	list, ok := f[host]
	if !ok {
		return net.DefaultResolver.LookupNetIP(ctx, network, host)
	}
	if len(list) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range list {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func codeOf(err error) ledger.Code {
	var e *ledger.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ledger.CodeOK
}
