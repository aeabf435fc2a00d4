package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	tpwallet "github.com/tpwallet/tpwallet"
	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/metrics"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

// adminSecret is the admin key every test stack ensures, as TPWALLET_ADMIN_KEY would.
const adminSecret = "tpw_test-admin-key-0123456789abcdef"

// faultStore is the real Pebble store with two injectable faults on Commit: hold the next
// commit until the test releases it (to keep a request in flight), or fail it (to stop the
// engine). Everything else goes straight to Pebble.
type faultStore struct {
	engine.Store

	mu      sync.Mutex
	hold    chan struct{} // the next Commit waits until it is closed
	entered chan struct{} // closed when that Commit starts waiting
	fail    error         // the next Commit returns it without writing
}

func (f *faultStore) Commit(ctx context.Context, c *journal.Commit) error {
	f.mu.Lock()
	hold, entered, fail := f.hold, f.entered, f.fail
	f.hold, f.entered, f.fail = nil, nil, nil
	f.mu.Unlock()
	if hold != nil {
		close(entered)
		<-hold
	}
	if fail != nil {
		return fail
	}
	return f.Store.Commit(ctx, c)
}

// holdNextCommit makes the next Commit wait: entered is closed once it waits, and release
// lets it go on (call it exactly once).
func (f *faultStore) holdNextCommit() (entered <-chan struct{}, release func()) {
	hold, in := make(chan struct{}), make(chan struct{})
	f.mu.Lock()
	f.hold, f.entered = hold, in
	f.mu.Unlock()
	return in, func() { close(hold) }
}

// failNextCommit makes the next Commit fail without writing anything.
func (f *faultStore) failNextCommit(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// stack is the whole server over a data directory, wired like cmd/tpwallet's openApp:
// Pebble store → engine → service → httpapi, served over real HTTP.
type stack struct {
	dir   string
	store *faultStore
	eng   *engine.Engine
	svc   *service.Service
	srv   *httptest.Server
	http  *http.Client
	admin string
	once  sync.Once
	hub   *events.Hub
	set   *events.Set
	hooks *webhook.Manager
}

func newStack(tb testing.TB) *stack {
	tb.Helper()
	return openStack(tb, tb.TempDir())
}

func openStack(tb testing.TB, dir string) *stack {
	tb.Helper()
	return openStackWith(tb, dir, engine.Options{}, service.Options{})
}

// openStackWith opens a stack with the given engine and service options (clocks, queue
// depth, idempotency TTL).
func openStackWith(tb testing.TB, dir string, eo engine.Options, so service.Options) *stack {
	tb.Helper()
	return openStackHTTP(tb, dir, eo, so, httpapi.Options{})
}

// openStackHTTP is openStackWith with handler options too (limits).
func openStackHTTP(tb testing.TB, dir string, eo engine.Options, so service.Options, ho httpapi.Options) *stack {
	tb.Helper()
	return openStackFull(tb, dir, eo, so, ho, webhook.Options{})
}

// openStackFull is openStackHTTP with webhook options too (retry schedule, private
// addresses); as in serve, the webhooks always run, their followers woken by a hub.
func openStackFull(tb testing.TB, dir string, eo engine.Options, so service.Options, ho httpapi.Options, wo webhook.Options) *stack {
	tb.Helper()
	ctx := context.Background()
	hub := events.NewHub()
	eo.Observer = events.Observers(eo.Observer, hub)
	ps, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		tb.Fatalf("pebblestore.Open: %v", err)
	}
	fs := &faultStore{Store: ps}
	eng, err := engine.Open(ctx, fs, eo)
	if err != nil {
		ps.Close()
		tb.Fatalf("engine.Open: %v", err)
	}
	svc, err := service.New(ctx, eng, fs, so)
	if err != nil {
		eng.Close()
		tb.Fatalf("service.New: %v", err)
	}
	if _, err := svc.EnsureAdminKey(ctx, adminSecret); err != nil {
		eng.Close()
		tb.Fatalf("EnsureAdminKey: %v", err)
	}
	hub.Committed(eng.HeadSeq())
	set := events.NewSet(hub)
	set.Start(ctx)
	wo.Meta, wo.Source, wo.Set, wo.Hub = ps, ps, set, hub
	hooks, err := webhook.Open(ctx, wo)
	if err != nil {
		set.Stop()
		eng.Close()
		tb.Fatalf("webhook.Open: %v", err)
	}
	ho.Webhooks = hooks
	ho.OpenAPI = tpwallet.OpenAPI
	if ho.Metrics == nil { // as serve has them
		ho.Metrics = metrics.New()
		ho.MetricsHandler = ho.Metrics.Handler()
	}
	srv := httptest.NewServer(httpapi.New(svc, ho))
	s := &stack{dir: dir, store: fs, eng: eng, svc: svc, srv: srv, admin: adminSecret, hub: hub, set: set, hooks: hooks}
	s.http = srv.Client()
	s.http.Timeout = 2 * time.Minute
	tb.Cleanup(func() { s.close(tb) })
	return s
}

func (s *stack) close(tb testing.TB) {
	s.once.Do(func() {
		s.srv.Close()
		s.hooks.Close()
		s.set.Stop()
		if err := s.eng.Close(); err != nil {
			tb.Errorf("engine close: %v", err)
		}
	})
}

// restart closes the whole stack and opens a new one on the same data directory.
func (s *stack) restart(tb testing.TB) *stack {
	tb.Helper()
	s.close(tb)
	return openStack(tb, s.dir)
}

// reply is an HTTP answer, read in full.
type reply struct {
	Method string
	Path   string
	Status int
	Header http.Header
	Body   []byte
}

type reqOpt func(*http.Request)

// rawHdr sets a request header to exactly v, even when v is empty.
func rawHdr(k, v string) reqOpt {
	return func(r *http.Request) { r.Header[http.CanonicalHeaderKey(k)] = []string{v} }
}

// hdr sets a request header; an empty value deletes it.
func hdr(k, v string) reqOpt {
	return func(r *http.Request) {
		if v == "" {
			r.Header.Del(k)
			return
		}
		r.Header.Set(k, v)
	}
}

// do sends a request and checks the answer against api.md's conventions and openapi.yaml
// (see send for the body).
func (s *stack) do(tb testing.TB, method, path, key string, body any, opts ...reqOpt) reply {
	tb.Helper()
	r, err := s.send(method, path, key, body, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	checkReply(tb, r)
	return r
}

// send sends a request and reads the answer; it may be called from any goroutine. body is
// nil (no body and no Content-Type), a string or []byte (sent as is), an io.Reader (sent
// chunked, with no Content-Length), or anything else (sent as JSON). Bodies go with
// Content-Type application/json unless an option changes it.
func (s *stack) send(method, path, key string, body any, opts ...reqOpt) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = struct{ io.Reader }{b} // hide the length: chunked
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return reply{}, fmt.Errorf("marshal: %w", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		return reply{}, fmt.Errorf("new request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return reply{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func (r reply) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.Method, r.Path, r.Status, r.Body)
}

// want fails the test unless the status is status.
func (r reply) want(tb testing.TB, status int) reply {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("%s: got status %d, want %d", r, r.Status, status)
	}
	return r
}

// into decodes the body into v.
func (r reply) into(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("%s: decode: %v", r, err)
	}
}

// problem is an RFC 9457 body.
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Code   string       `json:"code"`
	Errors []batchError `json:"errors"`
	Role   string       `json:"role"`
	Leader string       `json:"leader"`
}

type batchError struct {
	Index  int    `json:"index"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// wantProblem fails the test unless the answer is a problem with this status and code.
func (r reply) wantProblem(tb testing.TB, status int, code string) problem {
	tb.Helper()
	r.want(tb, status)
	var p problem
	r.into(tb, &p)
	if p.Code != code {
		tb.Fatalf("%s: got code %q, want %q", r, p.Code, code)
	}
	return p
}

type balance struct {
	Posted         string `json:"posted"`
	Available      string `json:"available"`
	PendingDebits  string `json:"pending_debits"`
	PendingCredits string `json:"pending_credits"`
}

type account struct {
	ID            string            `json:"id"`
	Owner         string            `json:"owner"`
	Asset         string            `json:"asset"`
	Kind          string            `json:"kind"`
	AllowNegative bool              `json:"allow_negative"`
	Status        string            `json:"status"`
	Balance       balance           `json:"balance"`
	DebitsPosted  string            `json:"debits_posted"`
	CreditsPosted string            `json:"credits_posted"`
	Metadata      map[string]string `json:"metadata"`
	CreatedAt     string            `json:"created_at"`
}

type transfer struct {
	ID           string            `json:"id"`
	Source       string            `json:"source"`
	Destination  string            `json:"destination"`
	Amount       string            `json:"amount"`
	Asset        string            `json:"asset"`
	Kind         string            `json:"kind"`
	Status       string            `json:"status"`
	Reference    string            `json:"reference"`
	Metadata     map[string]string `json:"metadata"`
	CreatedAt    string            `json:"created_at"`
	PostedAt     *string           `json:"posted_at"`
	AmountPosted string            `json:"amount_posted"`
	ExpiresAt    *string           `json:"expires_at"`
}

type entry struct {
	TransferID  string `json:"transfer_id"`
	Direction   string `json:"direction"`
	Amount      string `json:"amount"`
	Kind        string `json:"kind"`
	PostedAfter string `json:"posted_after"`
	Timestamp   string `json:"timestamp"`
}

type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

type obj = map[string]any

// newKey creates an API key with scopes and returns its secret.
func (s *stack) newKey(tb testing.TB, name string, scopes ...string) string {
	tb.Helper()
	var k struct {
		Key string `json:"key"`
	}
	s.do(tb, "POST", "/v1/api-keys", s.admin, obj{"name": name, "scopes": scopes}).want(tb, 201).into(tb, &k)
	if k.Key == "" {
		tb.Fatal("created API key has no key")
	}
	return k.Key
}

// openAccount creates an account with the admin key (201).
func (s *stack) openAccount(tb testing.TB, id, asset string, allowNegative bool) account {
	tb.Helper()
	var a account
	s.do(tb, "POST", "/v1/accounts", s.admin, obj{"id": id, "asset": asset, "allow_negative": allowNegative,
		"owner": "owner:" + id}).want(tb, 201).into(tb, &a)
	return a
}

func (s *stack) account(tb testing.TB, id string) account {
	tb.Helper()
	var a account
	s.do(tb, "GET", "/v1/accounts/"+id, s.admin, nil).want(tb, 200).into(tb, &a)
	return a
}

func (s *stack) transfer(tb testing.TB, id string) transfer {
	tb.Helper()
	var t transfer
	s.do(tb, "GET", "/v1/transfers/"+id, s.admin, nil).want(tb, 200).into(tb, &t)
	return t
}

// pay posts a transfer at once and returns it (201).
func (s *stack) pay(tb testing.TB, src, dst, amount string) transfer {
	tb.Helper()
	var t transfer
	s.do(tb, "POST", "/v1/transfers", s.admin, obj{"source": src, "destination": dst, "amount": amount}).
		want(tb, 201).into(tb, &t)
	return t
}

// hold creates a pending transfer (201).
func (s *stack) hold(tb testing.TB, src, dst, amount string, timeoutSeconds int) transfer {
	tb.Helper()
	var t transfer
	s.do(tb, "POST", "/v1/transfers", s.admin, obj{"source": src, "destination": dst, "amount": amount,
		"hold": obj{"timeout_seconds": timeoutSeconds}}).want(tb, 201).into(tb, &t)
	if t.Status != "pending" {
		tb.Fatalf("hold %s: got status %q, want pending", t.ID, t.Status)
	}
	return t
}

func (s *stack) head(tb testing.TB) head {
	tb.Helper()
	var h head
	s.do(tb, "GET", "/v1/journal/head", s.admin, nil).want(tb, 200).into(tb, &h)
	return h
}

// unchanged runs f and fails the test if the journal head moved: a rejected write must
// change nothing.
func (s *stack) unchanged(tb testing.TB, f func()) {
	tb.Helper()
	before := s.head(tb)
	f()
	if after := s.head(tb); after != before {
		tb.Errorf("journal head moved from %+v to %+v: a rejected write changed something", before, after)
	}
}

// wantBalance fails the test unless the account's balance is as given.
func (s *stack) wantBalance(tb testing.TB, id string, want balance) {
	tb.Helper()
	if got := s.account(tb, id).Balance; got != want {
		tb.Errorf("balance of %s: got %+v, want %+v", id, got, want)
	}
}

// all fetches every page of a list with limit per page, following next_cursor.
func all[T any](tb testing.TB, s *stack, key, path string, limit int) []T {
	tb.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var out []T
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100000 {
			tb.Fatalf("%s: next_cursor never ends", path)
		}
		u := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		var p page[T]
		s.do(tb, "GET", u, key, nil).want(tb, 200).into(tb, &p)
		if len(p.Items) > limit {
			tb.Fatalf("%s: got %d items, limit %d", u, len(p.Items), limit)
		}
		out = append(out, p.Items...)
		if p.NextCursor == "" {
			return out
		}
		if len(p.Items) < limit {
			tb.Fatalf("%s: a short page (%d of %d) has next_cursor %q", u, len(p.Items), limit, p.NextCursor)
		}
		cursor = p.NextCursor
	}
}

// eventually polls cond until it holds or the deadline passes: for waiting on server-side
// time (hold expiry), never for synchronisation between goroutines of the test.
func eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var errInjected = errors.New("injected commit failure")
