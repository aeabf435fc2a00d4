package grpcapi_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tpwallet "github.com/tpwallet/tpwallet"
	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/grpcapi"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
	"github.com/tpwallet/tpwallet/internal/webhook"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// adminSecret is the admin key every test stack ensures, as TPWALLET_ADMIN_KEY would.
const adminSecret = "tpw_test-admin-key-0123456789abcdef"

// faultStore is the real Pebble store whose next Commit can be held until the test lets
// it go (to keep a write in flight) or failed (to stop the engine).
type faultStore struct {
	engine.Store

	mu      sync.Mutex
	hold    chan struct{}
	entered chan struct{}
	fail    error
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

func (f *faultStore) failNextCommit(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// stack is the whole server over a temporary data directory, wired as serve wires it:
// Pebble → engine (with the hub as its observer) → service → REST and gRPC, each on its
// own loopback port.
type stack struct {
	store *faultStore
	eng   *engine.Engine
	svc   *service.Service
	hub   *events.Hub
	set   *events.Set
	hooks *webhook.Manager
	rest  *httptest.Server
	grpc  *grpcapi.Server
	conn  *grpc.ClientConn
	admin string
	// hookID is the webhook endpoint the parity script created last.
	hookID string
}

type stackOptions struct {
	engine  engine.Options
	service service.Options
	grpc    grpcapi.Options
	webhook webhook.Options
}

// publicResolver resolves every name to a public address, so that webhook URLs pass
// the registration check without DNS (the parity script delivers nothing to them).
type publicResolver struct{}

func (publicResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
}

func newStack(tb testing.TB) *stack {
	tb.Helper()
	return openStack(tb, stackOptions{})
}

func openStack(tb testing.TB, o stackOptions) *stack {
	tb.Helper()
	ctx := context.Background()
	ps, err := pebblestore.Open(tb.TempDir(), pebblestore.Options{})
	if err != nil {
		tb.Fatalf("pebblestore.Open: %v", err)
	}
	fs := &faultStore{Store: ps}
	hub := events.NewHub()
	o.engine.Observer = events.Observers(o.engine.Observer, hub)
	eng, err := engine.Open(ctx, fs, o.engine)
	if err != nil {
		ps.Close()
		tb.Fatalf("engine.Open: %v", err)
	}
	svc, err := service.New(ctx, eng, fs, o.service)
	if err != nil {
		eng.Close()
		tb.Fatalf("service.New: %v", err)
	}
	if _, err := svc.EnsureAdminKey(ctx, adminSecret); err != nil {
		eng.Close()
		tb.Fatalf("EnsureAdminKey: %v", err)
	}
	// As serve: the webhook endpoints' followers run in a set woken by the hub.
	hub.Committed(eng.HeadSeq())
	set := events.NewSet(hub)
	set.Start(ctx)
	o.webhook.Meta, o.webhook.Source, o.webhook.Set, o.webhook.Hub = ps, ps, set, hub
	if o.webhook.Resolver == nil {
		o.webhook.Resolver = publicResolver{}
	}
	if o.webhook.Now == nil {
		o.webhook.Now = o.service.Now
	}
	hooks, err := webhook.Open(ctx, o.webhook)
	if err != nil {
		set.Stop()
		eng.Close()
		tb.Fatalf("webhook.Open: %v", err)
	}
	s := &stack{store: fs, eng: eng, svc: svc, hub: hub, set: set, hooks: hooks, admin: adminSecret}
	s.rest = httptest.NewServer(httpapi.New(svc, httpapi.Options{OpenAPI: tpwallet.OpenAPI, Hub: hub,
		Followers: set, Webhooks: hooks}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	o.grpc.Hub, o.grpc.Followers, o.grpc.Webhooks = hub, set, hooks
	s.grpc = grpcapi.New(svc, o.grpc)
	served := make(chan error, 1)
	go func() { served <- s.grpc.Serve(ln) }()
	s.conn, err = grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.conn.Close()
		s.stopGRPC(tb, served)
		s.rest.Close()
		hooks.Close()
		set.Stop()
		if err := eng.Close(); err != nil {
			tb.Errorf("engine close: %v", err)
		}
	})
	return s
}

func (s *stack) stopGRPC(tb testing.TB, served <-chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.grpc.Stop(ctx)
	if err := <-served; err != nil {
		tb.Errorf("grpc Serve: %v", err)
	}
}

// ctx is a context whose outgoing metadata carries key (none when "") and the pairs
// (key, value, ...).
func authCtx(ctx context.Context, key string, pairs ...string) context.Context {
	if key != "" {
		pairs = append(pairs, "authorization", "Bearer "+key)
	}
	return metadata.AppendToOutgoingContext(ctx, pairs...)
}

func (s *stack) transfers() tpwalletv1.TransferServiceClient {
	return tpwalletv1.NewTransferServiceClient(s.conn)
}

func (s *stack) accounts() tpwalletv1.AccountServiceClient {
	return tpwalletv1.NewAccountServiceClient(s.conn)
}

// newKey creates an API key with scopes through the service and returns its secret.
func (s *stack) newKey(tb testing.TB, name string, scopes ...string) string {
	tb.Helper()
	k, err := s.svc.CreateAPIKey(context.Background(), name, scopes)
	if err != nil {
		tb.Fatal(err)
	}
	return string(k.Secret)
}

// openAccount creates an account over gRPC with the admin key.
func (s *stack) openAccount(tb testing.TB, id string, allowNegative bool) *tpwalletv1.Account {
	tb.Helper()
	a, err := s.accounts().CreateAccount(authCtx(tb.Context(), s.admin),
		&tpwalletv1.CreateAccountRequest{Id: &id, Asset: "USD", AllowNegative: allowNegative})
	if err != nil {
		tb.Fatalf("create account %s: %v", id, err)
	}
	return a
}

// pay posts a transfer over gRPC with the admin key.
func (s *stack) pay(tb testing.TB, src, dst, amount string) *tpwalletv1.Transfer {
	tb.Helper()
	t, err := s.transfers().CreateTransfer(authCtx(tb.Context(), s.admin),
		&tpwalletv1.CreateTransferRequest{Source: src, Destination: dst, Amount: amount})
	if err != nil {
		tb.Fatalf("pay %s → %s %s: %v", src, dst, amount, err)
	}
	return t
}

func (s *stack) account(tb testing.TB, id string) *tpwalletv1.Account {
	tb.Helper()
	a, err := s.accounts().GetAccount(authCtx(tb.Context(), s.admin), &tpwalletv1.GetAccountRequest{Id: id})
	if err != nil {
		tb.Fatalf("get account %s: %v", id, err)
	}
	return a
}

func (s *stack) head(tb testing.TB) *tpwalletv1.JournalHead {
	tb.Helper()
	h, err := tpwalletv1.NewJournalServiceClient(s.conn).GetHead(authCtx(tb.Context(), s.admin), &tpwalletv1.GetHeadRequest{})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// restDo sends a REST request and returns the status, header and body.
func (s *stack) restDo(tb testing.TB, method, path, key, body string, header ...string) (int, http.Header, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.rest.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.rest.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b.Bytes()
}

// reason returns the api.md code of a gRPC error (its ErrorInfo reason), checking the
// domain, or "" when err carries no ErrorInfo.
func reason(tb testing.TB, err error) string {
	tb.Helper()
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			if ei.Domain != grpcapi.Domain {
				tb.Errorf("ErrorInfo domain %q, want %q", ei.Domain, grpcapi.Domain)
			}
			return ei.Reason
		}
	}
	return ""
}

// wantCode fails the test unless err is a status with the gRPC code of the api.md code
// and an ErrorInfo naming it.
func wantCode(tb testing.TB, err error, code string) *status.Status {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error, want %s", code)
	}
	st := status.Convert(err)
	if got := reason(tb, err); got != code {
		tb.Fatalf("got %v (reason %q), want reason %q", err, got, code)
	}
	return st
}
