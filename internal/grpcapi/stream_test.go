package grpcapi_test

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/grpcapi"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// commands is an engine observer that records the size of every command (submission)
// of every committed batch.
type commands struct {
	mu    sync.Mutex
	sizes []int
}

func (c *commands) Batch(b *engine.BatchInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range b.Commands {
		c.sizes = append(c.sizes, len(cmd.Requests))
	}
}

func (c *commands) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sizes = nil
}

func (c *commands) get() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.sizes...)
}

func tr(id, src, dst, amount string) *tpwalletv1.CreateTransferRequest {
	t := &tpwalletv1.CreateTransferRequest{Source: src, Destination: dst, Amount: amount}
	if id != "" {
		t.Id = &id
	}
	return t
}

// fundUsers opens a treasury and n users with 1000 each.
func fundUsers(t *testing.T, s *stack, n int) []string {
	t.Helper()
	s.openAccount(t, "treasury", true)
	users := make([]string, n)
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
		s.openAccount(t, users[i], false)
		s.pay(t, "treasury", users[i], "1000")
	}
	return users
}

// openStream opens a transfer stream with key.
func openStream(t *testing.T, s *stack, key string) tpwalletv1.TransferService_SubmitTransfersClient {
	t.Helper()
	st, err := s.transfers().SubmitTransfers(authCtx(t.Context(), key))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSubmitTransfersInOrder sends 300 messages of 1 to 7 transfers without waiting for
// answers, some of them invalid or refused by the ledger, and checks that every message
// is answered once, in order, item by item, and that the balances are what the accepted
// transfers make them.
func TestSubmitTransfersInOrder(t *testing.T) {
	s := newStack(t)
	users := fundUsers(t, s, 10)
	stream := openStream(t, s, s.admin)

	const messages = 300
	type want struct {
		id, src, dst, amount, code string
	}
	wants := make([][]want, messages)
	for i := range wants {
		for j := 0; j < 1+i%7; j++ {
			w := want{id: fmt.Sprintf("s-%d-%d", i, j), src: users[(i+j)%10], dst: users[(i+j+1)%10],
				amount: strconv.Itoa((i+j)%5 + 1)}
			switch {
			case i%13 == 0 && j == 1:
				w.amount, w.code = "0", "invalid_request"
			case i%17 == 0 && j == 0:
				w.amount, w.code = "1000000", "insufficient_funds"
			case i%19 == 0 && j == 2:
				w.dst, w.code = "nobody", "account_not_found"
			}
			wants[i] = append(wants[i], w)
		}
	}
	sendErr := make(chan error, 1)
	go func() {
		for _, ws := range wants {
			msg := &tpwalletv1.SubmitTransfersRequest{}
			for _, w := range ws {
				msg.Transfers = append(msg.Transfers, tr(w.id, w.src, w.dst, w.amount))
			}
			if err := stream.Send(msg); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()

	moved := map[string]int{}
	for i := 0; i < messages; i++ {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if len(resp.Results) != len(wants[i]) {
			t.Fatalf("answer %d: %d results, want %d", i, len(resp.Results), len(wants[i]))
		}
		for j, r := range resp.Results {
			w := wants[i][j]
			if w.code != "" {
				if e := r.GetError(); e == nil || e.Code != w.code {
					t.Errorf("message %d item %d: got %v, want error %s", i, j, r, w.code)
				}
				continue
			}
			tr := r.GetTransfer()
			if tr == nil || tr.Id != w.id || tr.Amount != w.amount || tr.Source != w.src || tr.Status != "posted" || r.Existing {
				t.Fatalf("message %d item %d: got %v, want transfer %+v", i, j, r, w)
			}
			n, _ := strconv.Atoi(w.amount)
			moved[w.src] -= n
			moved[w.dst] += n
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the last answer: got %v, want io.EOF", err)
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if got, want := s.account(t, u).Balance.Posted, strconv.Itoa(1000+moved[u]); got != want {
			t.Errorf("%s: posted %s, want %s", u, got, want)
		}
	}
}

// TestSubmitTransfersJoinsMessages holds the ledger's commit of a stream's first
// message, sends 500 one-transfer messages meanwhile, and checks that once the server
// has read them all they go to the engine as one submission of 500: the server batches
// what arrives instead of making one engine call per message.
func TestSubmitTransfersJoinsMessages(t *testing.T) {
	var seen commands
	s := openStack(t, stackOptions{engine: engine.Options{Observer: &seen}})
	users := fundUsers(t, s, 4)
	const later = 500
	var n int
	all := make(chan struct{})
	grpcapi.SetQueuedHook(s.grpc, func() {
		if n++; n == 1+later { // the hook runs on the stream's one receiving goroutine
			close(all)
		}
	})
	seen.reset()
	entered, release := s.store.holdNextCommit()
	stream := openStream(t, s, s.admin)
	send := func(i int) {
		t.Helper()
		msg := &tpwalletv1.SubmitTransfersRequest{Transfers: []*tpwalletv1.CreateTransferRequest{
			tr("j"+strconv.Itoa(i), users[i%4], users[(i+1)%4], "1")}}
		if err := stream.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	send(0)
	<-entered // the first message's submission is committing, and held
	for i := 1; i <= later; i++ {
		send(i)
	}
	<-all
	release()
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= later; i++ {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if got := resp.Results[0].GetTransfer().GetId(); got != "j"+strconv.Itoa(i) {
			t.Fatalf("answer %d: transfer %q, want j%d", i, got, i)
		}
	}
	if sizes := seen.get(); len(sizes) != 2 || sizes[0] != 1 || sizes[1] != later {
		t.Errorf("engine submissions of the stream: got sizes %v, want [1 %d]", sizes, later)
	}
}

// TestSubmitTransfersRefusals: a message over 8,190 transfers is refused item by item, an
// empty message gets an empty answer, and the stream goes on.
func TestSubmitTransfersRefusals(t *testing.T) {
	s := newStack(t)
	fundUsers(t, s, 2)
	stream := openStream(t, s, s.admin)
	big := &tpwalletv1.SubmitTransfersRequest{}
	for range 8191 {
		big.Transfers = append(big.Transfers, tr("", "u0", "u1", "1"))
	}
	for _, msg := range []*tpwalletv1.SubmitTransfersRequest{big, {}, {Transfers: big.Transfers[:1]}} {
		if err := stream.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	before := s.head(t)
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 8191 {
		t.Fatalf("got %d results, want 8191", len(resp.Results))
	}
	for i, r := range resp.Results {
		if r.GetError().GetCode() != "batch_too_large" {
			t.Fatalf("item %d: got %v, want batch_too_large", i, r)
		}
	}
	if resp, err = stream.Recv(); err != nil || len(resp.Results) != 0 {
		t.Fatalf("the empty message: got %v %v, want an empty answer", resp, err)
	}
	if resp, err = stream.Recv(); err != nil || resp.Results[0].GetTransfer().GetAmount() != "1" {
		t.Fatalf("after the refusals: got %v %v, want a transfer", resp, err)
	}
	if after := s.head(t); after.Seq != before.Seq+1 {
		t.Errorf("journal moved from %d to %d, want one record (the last message)", before.Seq, after.Seq)
	}
}

// TestSubmitTransfersExactlyOnce: sending transfers again with their ids answers the
// existing transfers (existing set) and changes nothing; an id with other fields is
// transfer_exists.
func TestSubmitTransfersExactlyOnce(t *testing.T) {
	s := newStack(t)
	fundUsers(t, s, 2)
	msg := &tpwalletv1.SubmitTransfersRequest{Transfers: []*tpwalletv1.CreateTransferRequest{
		tr("once-1", "u0", "u1", "10"), tr("once-2", "u1", "u0", "3")}}
	first := roundTrip(t, s, msg)
	head := s.head(t)
	again := roundTrip(t, s, msg)
	for i, r := range again.Results {
		if !r.Existing || r.GetTransfer().GetId() != first.Results[i].GetTransfer().GetId() ||
			r.GetTransfer().GetCreatedAt() != first.Results[i].GetTransfer().GetCreatedAt() {
			t.Errorf("resent item %d: got %v, want the existing %v", i, r, first.Results[i])
		}
		if first.Results[i].Existing {
			t.Errorf("first send, item %d: existing set", i)
		}
	}
	if h := s.head(t); h.Seq != head.Seq {
		t.Errorf("resending moved the journal from %d to %d", head.Seq, h.Seq)
	}
	other := roundTrip(t, s, &tpwalletv1.SubmitTransfersRequest{Transfers: []*tpwalletv1.CreateTransferRequest{
		tr("once-1", "u0", "u1", "11")}})
	if got := other.Results[0].GetError().GetCode(); got != "transfer_exists" {
		t.Errorf("same id, other amount: got %v, want transfer_exists", other.Results[0])
	}
	if got := s.account(t, "u1").Balance.Posted; got != "1007" {
		t.Errorf("u1 posted %s, want 1007", got)
	}
}

// roundTrip sends one message on a new stream and returns its answer.
func roundTrip(t *testing.T, s *stack, msg *tpwalletv1.SubmitTransfersRequest) *tpwalletv1.SubmitTransfersResponse {
	t.Helper()
	stream := openStream(t, s, s.admin)
	if err := stream.Send(msg); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after the answer: got %v, want io.EOF", err)
	}
	return resp
}

// TestSubmitTransfersAuth: a stream needs a key with the write scope, takes no
// idempotency-key, and a key over its rate gets its messages refused one by one.
func TestSubmitTransfersAuth(t *testing.T) {
	s := openStack(t, stackOptions{grpc: grpcapi.Options{RateLimit: 0.001, RateBurst: 3}})
	for _, body := range []string{`{"id":"t","asset":"USD","allow_negative":true}`, `{"id":"u0","asset":"USD"}`,
		`{"id":"u1","asset":"USD"}`} { // over REST, which this stack does not limit
		if code, _, b := s.restDo(t, "POST", "/v1/accounts", s.admin, body); code != 201 {
			t.Fatalf("create account: %d %s", code, b)
		}
	}
	read, w1, w2 := s.newKey(t, "r", "read"), s.newKey(t, "w1", "write"), s.newKey(t, "w2", "write")
	for _, c := range []struct {
		ctx  context.Context
		code string
	}{
		{authCtx(t.Context(), ""), "unauthenticated"},
		{authCtx(t.Context(), read), "forbidden"},
		{authCtx(t.Context(), w2, "idempotency-key", "k"), "invalid_request"},
	} {
		stream, err := s.transfers().SubmitTransfers(c.ctx)
		if err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, err, c.code)
	}
	// w1's burst of 3: one to open the stream, one to each of its first two messages.
	stream := openStream(t, s, w1)
	msg := &tpwalletv1.SubmitTransfersRequest{Transfers: []*tpwalletv1.CreateTransferRequest{tr("", "t", "u1", "1")}}
	for range 3 {
		if err := stream.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if resp, err := stream.Recv(); err != nil || resp.Results[0].GetTransfer() == nil {
			t.Fatalf("message %d: got %v %v, want a transfer", i, resp, err)
		}
	}
	if resp, err := stream.Recv(); err != nil || resp.Results[0].GetError().GetCode() != "rate_limited" {
		t.Fatalf("third message: got %v %v, want rate_limited", resp, err)
	}
}

// TestSubmitTransfersStop stops the server while a stream's submission is committing:
// the submission is answered, then the stream ends Unavailable, and the message sent
// meanwhile is not applied.
func TestSubmitTransfersStop(t *testing.T) {
	s := newStack(t)
	fundUsers(t, s, 2)
	stream := openStream(t, s, s.admin)
	entered, release := s.store.holdNextCommit()
	if err := stream.Send(&tpwalletv1.SubmitTransfersRequest{Transfers: []*tpwalletv1.CreateTransferRequest{
		tr("stop-1", "u0", "u1", "1")}}); err != nil {
		t.Fatal(err)
	}
	<-entered
	stopped := make(chan struct{})
	go func() {
		s.grpc.Stop(context.Background())
		close(stopped)
	}()
	// The stop has begun once health says so; then send one more message.
	waitNotServing(t, s)
	if err := stream.Send(&tpwalletv1.SubmitTransfersRequest{Transfers: []*tpwalletv1.CreateTransferRequest{
		tr("stop-2", "u0", "u1", "1")}}); err != nil {
		t.Fatal(err)
	}
	release()
	resp, err := stream.Recv()
	if err != nil || resp.Results[0].GetTransfer().GetId() != "stop-1" {
		t.Fatalf("the submitted message: got %v %v, want stop-1", resp, err)
	}
	_, err = stream.Recv()
	if st := wantCode(t, err, "unavailable"); st.Code() != codes.Unavailable {
		t.Errorf("got %v, want Unavailable", st.Code())
	}
	<-stopped
	if _, err := s.svc.Store().Transfer(t.Context(), "stop-2"); err == nil {
		t.Errorf("stop-2, sent after the stop began, was applied")
	}
	if _, err := s.svc.Store().Transfer(t.Context(), "stop-1"); err != nil {
		t.Errorf("stop-1: %v", err)
	}
}

// waitNotServing waits, on a health Watch, until the server says NOT_SERVING.
func waitNotServing(t *testing.T, s *stack) {
	t.Helper()
	w, err := healthpb.NewHealthClient(s.conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := w.Recv()
		if err != nil {
			t.Fatalf("health watch: %v", err)
		}
		if r.Status == healthpb.HealthCheckResponse_NOT_SERVING {
			return
		}
	}
}
