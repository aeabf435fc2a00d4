package main_test

import (
	"bytes"
	"context"
	mrand "math/rand/v2"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// streamed is a transfer sent on a SubmitTransfers stream.
type streamed struct {
	req   *tpwalletv1.CreateTransferRequest
	acked bool // the server answered it with a transfer
}

// TestGRPCStreamCrash kills a real `tpwallet serve --grpc-addr` with SIGKILL while four
// SubmitTransfers streams send transfers with client ids, and restarts it, twice. After
// each restart every transfer a stream acknowledged is there with its fields; the
// transfers whose answers were lost are sent again with the same ids, and each applies at
// most once: a second resend of everything answers every transfer as existing, and the
// balances equal the transfers listed, which sum to zero. It ends with tpwallet verify.
func TestGRPCStreamCrash(t *testing.T) {
	dataDir := t.TempDir()
	grpcAddr := freeAddr(t)
	p := startServe(t, dataDir, "--grpc-addr", grpcAddr)
	const users = 40
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "treasury", "asset": "USD",
		"kind": "system", "allow_negative": true}, nil, 201)
	for i := 0; i < users; i++ {
		id := "u" + strconv.Itoa(i)
		p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": id, "asset": "USD"}, nil, 201)
		p.mustCall(t, "POST", "/v1/transfers", map[string]any{"id": "fund-" + id, "source": "treasury",
			"destination": id, "amount": "1000000", "kind": "topup"}, nil, 201)
	}
	var (
		mu   sync.Mutex
		all  = map[string]*streamed{}
		next atomic.Int64
	)
	seed := time.Now().UnixNano()
	rng := mrand.New(mrand.NewPCG(uint64(seed), 0))
	t.Logf("kill points drawn with seed %d", seed)
	for round := 0; round < 2; round++ {
		killAt := int64(200 + rng.IntN(3000)) // acknowledged transfers before the kill
		var acks atomic.Int64
		killed := make(chan struct{})
		var once sync.Once
		conn := dialGRPC(t, grpcAddr)
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Go(func() {
				streamUntilKilled(t, conn, func() *tpwalletv1.SubmitTransfersRequest {
					msg := &tpwalletv1.SubmitTransfersRequest{}
					mu.Lock()
					defer mu.Unlock()
					for range 20 {
						n := next.Add(1)
						id := "g" + strconv.FormatInt(n, 10)
						src, dst := int(n)%users, int(n*7+int64(w))%users
						if src == dst {
							dst = (dst + 1) % users
						}
						req := &tpwalletv1.CreateTransferRequest{Id: &id, Source: "u" + strconv.Itoa(src),
							Destination: "u" + strconv.Itoa(dst), Amount: strconv.FormatInt(n%97+1, 10)}
						all[id] = &streamed{req: req}
						msg.Transfers = append(msg.Transfers, req)
					}
					return msg
				}, func(r *tpwalletv1.TransferResult, req *tpwalletv1.CreateTransferRequest) {
					if r.GetTransfer() == nil {
						t.Errorf("transfer %s: %v", req.GetId(), r)
						return
					}
					mu.Lock()
					all[req.GetId()].acked = true
					mu.Unlock()
					if acks.Add(1) == killAt {
						once.Do(func() {
							p.kill(t)
							close(killed)
						})
					}
				}, killed)
			})
		}
		wg.Wait()
		conn.Close()
		select {
		case <-killed:
		default:
			t.Fatalf("the streams ended before the kill")
		}

		grpcAddr = freeAddr(t)
		p = startServe(t, dataDir, "--grpc-addr", grpcAddr)
		conn = dialGRPC(t, grpcAddr)
		checkStreamedAcked(t, conn, all, &mu)
		// Send every unanswered transfer again, then everything again: exactly once.
		mu.Lock()
		var unanswered, everything []*tpwalletv1.CreateTransferRequest
		for _, s := range all {
			if !s.acked {
				unanswered = append(unanswered, s.req)
			}
			everything = append(everything, s.req)
		}
		mu.Unlock()
		applied := 0
		for i, r := range resend(t, conn, unanswered) {
			if r.GetTransfer() == nil {
				t.Fatalf("resent %s: %v", unanswered[i].GetId(), r)
			}
			if !r.Existing {
				applied++
			}
			all[unanswered[i].GetId()].acked = true
		}
		t.Logf("round %d: %d transfers sent, %d unanswered at the kill, of which %d had not applied",
			round, len(everything), len(unanswered), applied)
		for i, r := range resend(t, conn, everything) {
			if r.GetTransfer() == nil || !r.Existing {
				t.Fatalf("second resend of %s: got %v, want the existing transfer", everything[i].GetId(), r)
			}
		}
		conn.Close()
		checkLedger(t, p, users)
	}
	p.stop(t)
	out, err := exec.Command(binPath, "verify", "--data", dataDir).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("ok")) {
		t.Fatalf("tpwallet verify: %v\n%s", err, out)
	}
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func adminCtx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminKey)
}

// streamUntilKilled sends messages from next on one stream, up to 8 unanswered, and hands
// each answered transfer to answered, until the stream breaks (the server was killed).
func streamUntilKilled(t *testing.T, conn *grpc.ClientConn, next func() *tpwalletv1.SubmitTransfersRequest,
	answered func(*tpwalletv1.TransferResult, *tpwalletv1.CreateTransferRequest), killed <-chan struct{}) {
	ctx, cancel := context.WithCancel(adminCtx(context.Background()))
	defer cancel()
	stream, err := tpwalletv1.NewTransferServiceClient(conn).SubmitTransfers(ctx)
	if err != nil {
		return
	}
	window := make(chan *tpwalletv1.SubmitTransfersRequest, 8)
	go func() {
		defer close(window)
		for {
			msg := next()
			select {
			case window <- msg:
			case <-killed:
				return
			case <-ctx.Done():
				return
			}
			if stream.Send(msg) != nil {
				return
			}
		}
	}()
	for msg := range window {
		resp, err := stream.Recv()
		if err != nil {
			cancel() // the server is gone: what was not answered has an unknown outcome
			for range window {
			}
			return
		}
		if len(resp.Results) != len(msg.Transfers) {
			t.Errorf("an answer of %d results to %d transfers", len(resp.Results), len(msg.Transfers))
			return
		}
		for i, r := range resp.Results {
			answered(r, msg.Transfers[i])
		}
	}
}

// resend sends reqs on one stream, in messages of 500, and returns their results in order.
func resend(t *testing.T, conn *grpc.ClientConn, reqs []*tpwalletv1.CreateTransferRequest) []*tpwalletv1.TransferResult {
	t.Helper()
	stream, err := tpwalletv1.NewTransferServiceClient(conn).SubmitTransfers(adminCtx(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	var out []*tpwalletv1.TransferResult
	for i := 0; i < len(reqs); i += 500 {
		msg := &tpwalletv1.SubmitTransfersRequest{Transfers: reqs[i:min(i+500, len(reqs))]}
		if err := stream.Send(msg); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.Results...)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkStreamedAcked checks that every acknowledged transfer is present with its fields.
func checkStreamedAcked(t *testing.T, conn *grpc.ClientConn, all map[string]*streamed, mu *sync.Mutex) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	c := tpwalletv1.NewTransferServiceClient(conn)
	n := 0
	for id, s := range all {
		if !s.acked {
			continue
		}
		n++
		tr, err := c.GetTransfer(adminCtx(t.Context()), &tpwalletv1.GetTransferRequest{Id: id})
		if err != nil {
			t.Fatalf("acknowledged transfer %s: %v", id, err)
		}
		if tr.Amount != s.req.Amount || tr.Source != s.req.Source || tr.Destination != s.req.Destination || tr.Status != "posted" {
			t.Fatalf("acknowledged transfer %s: got %v, want %v", id, tr, s.req)
		}
	}
	t.Logf("%d acknowledged transfers present after restart", n)
}
