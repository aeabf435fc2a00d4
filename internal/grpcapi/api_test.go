package grpcapi_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/tpwallet/tpwallet/internal/grpcapi"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// tpwalletMethods lists every RPC of the tpwallet.v1 services, "Service/Method", with
// whether it streams.
func tpwalletMethods(t *testing.T) map[string]bool {
	t.Helper()
	fd, err := protoregistry.GlobalFiles.FindFileByPath("tpwallet/v1/tpwallet.proto")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for i := 0; i < fd.Services().Len(); i++ {
		sd := fd.Services().Get(i)
		for j := 0; j < sd.Methods().Len(); j++ {
			m := sd.Methods().Get(j)
			out[string(sd.Name())+"/"+string(m.Name())] = m.IsStreamingClient() || m.IsStreamingServer()
		}
	}
	return out
}

// call invokes an RPC with an empty request: a unary call's error, or a stream's first
// answer's.
func call(ctx context.Context, s *stack, rpc string, streaming bool) error {
	if !streaming {
		_, _, err := invoke(ctx, s.conn, rpc, "")
		return err
	}
	svc, name, _ := strings.Cut(rpc, "/")
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}
	st, err := s.conn.NewStream(ctx, desc, "/tpwallet.v1."+svc+"/"+name)
	if err != nil {
		return err
	}
	// SendMsg answers io.EOF when the server has already ended the stream (refused it):
	// then RecvMsg tells why.
	if name == "StreamEvents" {
		if err := st.SendMsg(&tpwalletv1.StreamEventsRequest{}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	return st.RecvMsg(&tpwalletv1.StreamEventsResponse{})
}

// TestEveryMethodGuarded calls every RPC without a key (unauthenticated) and with a read
// key (forbidden exactly for the methods api.md gives the write or admin scope).
func TestEveryMethodGuarded(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "a", true) // an event, which StreamEvents answers at once
	read := s.newKey(t, "r", "read")
	needsMore := map[string]bool{
		"APIKeyService/CreateAPIKey": true, "APIKeyService/ListAPIKeys": true, "APIKeyService/DeleteAPIKey": true,
		"AssetService/CreateAsset": true, "AccountService/CreateAccount": true, "AccountService/FreezeAccount": true,
		"AccountService/UnfreezeAccount": true, "TransferService/CreateTransfer": true,
		"TransferService/PostTransfer": true, "TransferService/IncreaseTransfer": true,
		"TransferService/VoidTransfer": true, "TransferService/CreateTransferBatch": true,
		"TransferService/SubmitTransfers": true,
		"WebhookService/CreateWebhook":    true, "WebhookService/ListWebhooks": true, "WebhookService/GetWebhook": true,
		"WebhookService/DeleteWebhook": true, "WebhookService/ListWebhookDeliveries": true,
		"WebhookService/ListWebhookDeadLetters": true, "WebhookService/ReplayWebhook": true,
		"FollowerService/ListFollowers": true,
	}
	methods := tpwalletMethods(t)
	if len(methods) != 31 {
		t.Errorf("got %d RPCs, want 31: a new one needs a row here and in the server's method table", len(methods))
	}
	for rpc, streaming := range methods {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		if err := call(authCtx(ctx, ""), s, rpc, streaming); reason(t, err) != "unauthenticated" {
			t.Errorf("%s without a key: got %v, want unauthenticated", rpc, err)
		}
		err := call(authCtx(ctx, read), s, rpc, streaming)
		cancel()
		if forbidden := reason(t, err) == "forbidden"; forbidden != needsMore[rpc] {
			t.Errorf("%s with a read key: got %v, want forbidden %v", rpc, err, needsMore[rpc])
		}
	}
}

// retryDelay returns the RetryInfo delay of err, 0 when it has none.
func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.RetryDelay.AsDuration()
		}
	}
	return 0
}

// TestLimits: the in-flight bound (Unavailable overloaded), the per-key rate
// (ResourceExhausted rate_limited), both with RetryInfo, and the message size limits.
func TestLimits(t *testing.T) {
	t.Run("in flight", func(t *testing.T) {
		s := openStack(t, stackOptions{grpc: grpcapi.Options{MaxInFlight: 1}})
		s.openAccount(t, "a", true)
		s.openAccount(t, "b", false)
		entered, release := s.store.holdNextCommit()
		done := make(chan error, 1)
		go func() {
			_, err := s.transfers().CreateTransfer(authCtx(context.Background(), s.admin), tr("", "a", "b", "1"))
			done <- err
		}()
		<-entered
		_, err := s.transfers().GetTransfer(authCtx(t.Context(), s.admin), &tpwalletv1.GetTransferRequest{Id: "x"})
		if st := wantCode(t, err, "overloaded"); st.Code() != codes.Unavailable || retryDelay(err) != time.Second {
			t.Errorf("got %v with retry delay %v, want Unavailable with RetryInfo 1s", st.Code(), retryDelay(err))
		}
		release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("rate", func(t *testing.T) {
		s := openStack(t, stackOptions{grpc: grpcapi.Options{RateLimit: 0.001, RateBurst: 2}})
		w := s.newKey(t, "w", "write")
		get := func(key string) error {
			_, err := s.accounts().GetAccount(authCtx(t.Context(), key), &tpwalletv1.GetAccountRequest{Id: "x"})
			return err
		}
		for range 2 {
			wantCode(t, get(w), "account_not_found")
		}
		err := get(w)
		if st := wantCode(t, err, "rate_limited"); st.Code() != codes.ResourceExhausted || retryDelay(err) != time.Second {
			t.Errorf("got %v with retry delay %v, want ResourceExhausted with RetryInfo 1s", st.Code(), retryDelay(err))
		}
		wantCode(t, get(s.admin), "account_not_found") // another key has its own bucket
	})
	t.Run("size", func(t *testing.T) {
		s := newStack(t)
		s.openAccount(t, "a", true)
		s.openAccount(t, "b", false)
		big := tr("", "a", "b", "1")
		big.Reference = strings.Repeat("r", 1<<20)
		_, err := s.transfers().CreateTransfer(authCtx(t.Context(), s.admin), big)
		if st := wantCode(t, err, "request_too_large"); st.Code() != codes.ResourceExhausted {
			t.Errorf("got %v, want ResourceExhausted", st.Code())
		}
		// A batch may be up to 16 MiB, as REST's: 3 MiB of references pass the size check
		// (and are refused by the ledger's own limit on references, item by item).
		batch := &tpwalletv1.CreateTransferBatchRequest{Atomic: new(bool)}
		for range 12 {
			it := tr("", "a", "b", "1")
			it.Reference = strings.Repeat("r", 256<<10)
			batch.Transfers = append(batch.Transfers, it)
		}
		resp, err := s.transfers().CreateTransferBatch(authCtx(t.Context(), s.admin), batch)
		if err != nil {
			t.Fatalf("a 3 MiB batch: %v", err)
		}
		if got := resp.Results[0].GetError().GetCode(); got != "invalid_request" {
			t.Errorf("a 256 KiB reference: got %v, want invalid_request", resp.Results[0])
		}
	})
}

// TestIdempotencyInFlight: while a write with an idempotency-key is in flight, the same
// key is refused with Aborted idempotency_in_flight over gRPC and 409 over REST (the key
// is shared by both transports, per API key), and once it is answered the same key over
// REST is idempotency_key_reused: a key never applies a write twice, whichever transport
// the retry takes.
func TestIdempotencyInFlight(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "a", true)
	s.openAccount(t, "b", false)
	w := s.newKey(t, "w", "write")
	ctx := authCtx(t.Context(), w, "idempotency-key", "once")
	entered, release := s.store.holdNextCommit()
	done := make(chan error, 1)
	go func() {
		_, err := s.transfers().CreateTransfer(ctx, tr("", "a", "b", "5"))
		done <- err
	}()
	<-entered
	_, err := s.transfers().CreateTransfer(ctx, tr("", "a", "b", "5"))
	if st := wantCode(t, err, "idempotency_in_flight"); st.Code() != codes.Aborted {
		t.Errorf("got %v, want Aborted", st.Code())
	}
	body := `{"source":"a","destination":"b","amount":"5"}`
	if code, _, b := s.restDo(t, "POST", "/v1/transfers", w, body, "Idempotency-Key", "once"); code != 409 || !strings.Contains(string(b), "idempotency_in_flight") {
		t.Errorf("REST, same key in flight: got %d %s, want 409 idempotency_in_flight", code, b)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var header metadata.MD
	if _, err := s.transfers().CreateTransfer(ctx, tr("", "a", "b", "5"), grpc.Header(&header)); err != nil || first(header, "idempotent-replayed") != "true" {
		t.Errorf("gRPC retry: got %v, replayed %q; want the replayed answer", err, first(header, "idempotent-replayed"))
	}
	if code, _, b := s.restDo(t, "POST", "/v1/transfers", w, body, "Idempotency-Key", "once"); code != 422 || !strings.Contains(string(b), "idempotency_key_reused") {
		t.Errorf("REST, same key after gRPC: got %d %s, want 422 idempotency_key_reused", code, b)
	}
	if got := s.account(t, "b").Balance.Posted; got != "5" {
		t.Errorf("b posted %s, want 5: the write applied once", got)
	}
}

// TestBatchExisting: in a non-atomic batch, an item repeating an existing transfer says
// so (existing), which REST's results do not show.
func TestBatchExisting(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "a", true)
	s.openAccount(t, "b", false)
	batch := &tpwalletv1.CreateTransferBatchRequest{Atomic: new(bool), Transfers: []*tpwalletv1.CreateTransferRequest{
		tr("e1", "a", "b", "1"), tr("e1", "a", "b", "1")}}
	resp, err := s.transfers().CreateTransferBatch(authCtx(t.Context(), s.admin), batch)
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Results; r[0].Existing || !r[1].Existing || r[1].GetTransfer().GetId() != "e1" {
		t.Errorf("got %v, want e1 created, then e1 existing", r)
	}
}

// TestHealth: SERVING while the engine takes writes, NOT_SERVING on a standby (writes
// answer not_leader with the leader's address and RetryInfo) and after a failed commit,
// as /readyz; Watch sees the changes.
func TestHealth(t *testing.T) {
	s := newStack(t)
	hc := healthpb.NewHealthClient(s.conn)
	check := func(name string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: name})
		if err != nil {
			t.Fatalf("check %q: %v", name, err)
		}
		return r.Status
	}
	for _, name := range []string{"", "tpwallet.v1.TransferService", "tpwallet.v1.EventService"} {
		if got := check(name); got != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("%q: %v, want SERVING", name, got)
		}
	}
	if _, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown service: got %v, want NotFound", err)
	}
	watch, err := hc.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	next := func() healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		r, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	if got := next(); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v, want SERVING", got)
	}

	eng := s.svc.Demote("http://10.0.0.2:8080")
	if got := check(""); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("standby: %v, want NOT_SERVING", got)
	}
	if got := next(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("watch, standby: %v, want NOT_SERVING", got)
	}
	_, err = s.transfers().CreateTransfer(authCtx(t.Context(), s.admin), tr("", "a", "b", "1"))
	if st := wantCode(t, err, "not_leader"); st.Code() != codes.Unavailable || retryDelay(err) != time.Second {
		t.Errorf("write on a standby: got %v (retry %v), want Unavailable with RetryInfo", st.Code(), retryDelay(err))
	}
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.Metadata["leader"] != "http://10.0.0.2:8080" {
			t.Errorf("not_leader names leader %q, want http://10.0.0.2:8080", ei.Metadata["leader"])
		}
	}
	if err := s.svc.Promote(t.Context(), eng); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("watch, promoted: %v, want SERVING", got)
	}

	s.store.failNextCommit(errors.New("injected commit failure"))
	_, err = s.accounts().CreateAccount(authCtx(t.Context(), s.admin), &tpwalletv1.CreateAccountRequest{Asset: "USD"})
	if st := wantCode(t, err, "unavailable"); st.Code() != codes.Unavailable {
		t.Errorf("the failed commit: got %v, want Unavailable", st.Code())
	}
	if got := check("tpwallet.v1.AccountService"); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("after a failed commit: %v, want NOT_SERVING", got)
	}
	if got := next(); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("watch, after a failed commit: %v, want NOT_SERVING", got)
	}
}

// TestReflection lists the services through server reflection, without a key, as grpcurl
// does.
func TestReflection(t *testing.T) {
	s := newStack(t)
	st, err := reflectionpb.NewServerReflectionClient(s.conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	r, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, sv := range r.GetListServicesResponse().GetService() {
		got[sv.Name] = true
	}
	for _, want := range append(healthNames(t), "grpc.health.v1.Health") {
		if !got[want] {
			t.Errorf("reflection does not list %s (got %v)", want, got)
		}
	}
}

func healthNames(t *testing.T) []string {
	t.Helper()
	fd, err := protoregistry.GlobalFiles.FindFileByPath("tpwallet/v1/tpwallet.proto")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := 0; i < fd.Services().Len(); i++ {
		out = append(out, string(fd.Services().Get(i).FullName()))
	}
	return out
}
