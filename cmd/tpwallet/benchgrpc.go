package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// The gRPC bench (--transport grpc): --clients streams of SubmitTransfers, each sending
// messages of --batch-size transfers with up to --window messages unanswered, for
// --duration; set-up and checks go through the unary RPCs.
//
// Like the REST bench's wrk-like client, the load generator spends as little CPU as it
// can, since it shares the machine with the server: each client sends a few messages it
// encoded once (transfers without ids, so each send makes new transfers), and reads each
// answer's results from the wire without decoding the Transfers, only whether each item
// succeeded (benchCodec). The balances are checked in full at the end.

// grpcMessages is how many distinct messages each client encodes and cycles through.
const grpcMessages = 16

// benchGRPC runs the bench over gRPC against c.URL (host:port).
func benchGRPC(ctx context.Context, c benchConfig, progress io.Writer) (benchResult, error) {
	conn, err := grpc.NewClient(c.URL, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
		grpc.WithInitialWindowSize(4<<20), grpc.WithInitialConnWindowSize(16<<20),
		grpc.WithReadBufferSize(256<<10), grpc.WithWriteBufferSize(256<<10))
	if err != nil {
		return benchResult{}, err
	}
	defer conn.Close()
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.Key)
	run := strconv.FormatInt(time.Now().UnixNano()%1e10, 36)
	ids, err := setupGRPC(actx, conn, c, run, progress)
	if err != nil {
		return benchResult{}, err
	}
	journal := tpwalletv1.NewJournalServiceClient(conn)
	head0, err := journal.GetHead(actx, &tpwalletv1.GetHeadRequest{})
	if err != nil {
		return benchResult{}, err
	}

	var (
		transfers, errCount, messages atomic.Int64
		hist                          histogram
		tallies                       = make([]tally, c.Clients)
		lats                          = make([][]time.Duration, c.Clients)
		wg                            sync.WaitGroup
		firstErr                      error
		once                          sync.Once
	)
	rctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	start := time.Now()
	for w := 0; w < c.Clients; w++ {
		tallies[w] = tally{}
		cl := &grpcClient{c: c, ids: ids, tally: tallies[w], transfers: &transfers, errs: &errCount,
			messages: &messages, hist: &hist, rng: rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cl.run(actx, rctx, conn); err != nil {
				once.Do(func() { firstErr = err })
			}
			lats[w] = cl.lats
		}()
	}
	done := make(chan struct{})
	go showProgress(done, progress, start, &transfers, &errCount, &hist)
	wg.Wait()
	close(done)
	elapsed := time.Since(start).Seconds()
	if firstErr != nil {
		return benchResult{}, firstErr
	}

	total := tally{}
	for _, t := range tallies {
		for k, v := range t {
			total[k] += v
		}
	}
	ok, err := checkBalancesGRPC(actx, conn, ids, total, progress)
	if err != nil {
		return benchResult{}, err
	}
	head1, err := journal.GetHead(actx, &tpwalletv1.GetHeadRequest{})
	if err != nil {
		return benchResult{}, err
	}
	// Every acknowledged transfer is in some record, and a message's transfers are in one.
	if moved := head1.Seq - head0.Seq; transfers.Load() > 0 && (moved == 0 || int64(moved) > messages.Load()) {
		fmt.Fprintf(progress, "journal head moved by %d for %d messages\n", moved, messages.Load())
		ok = false
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	return benchResult{Workload: c.Workload, Clients: c.Clients, Accounts: c.Accounts,
		Seconds: round3(elapsed), Transfers: transfers.Load(), Errors: errCount.Load(),
		TPS: round3(float64(transfers.Load()) / elapsed), BalancesOK: ok,
		P50: pct(all, 0.50), P95: pct(all, 0.95), P99: pct(all, 0.99), Max: pct(all, 1)}, nil
}

// grpcClient is one stream of the bench.
type grpcClient struct {
	c                         benchConfig
	ids                       []string
	rng                       *rand.Rand
	tally                     tally
	transfers, errs, messages *atomic.Int64
	hist                      *histogram
	lats                      []time.Duration
	pairs                     [grpcMessages][][2]string
	encoded                   [grpcMessages]preEncoded
}

// sent is a message on its way: which of the encoded ones, and when it left.
type sent struct {
	msg int
	at  time.Time
}

// run sends until rctx ends, then closes its side and reads the answers still due. Every
// message sent is answered (or the stream fails), so the tally is exact.
func (g *grpcClient) run(ctx, rctx context.Context, conn *grpc.ClientConn) error {
	for m := range g.encoded {
		msg := &tpwalletv1.SubmitTransfersRequest{}
		for range g.c.BatchSize {
			src, dst := benchPair(g.rng, g.c.Workload, g.ids)
			g.pairs[m] = append(g.pairs[m], [2]string{src, dst})
			msg.Transfers = append(msg.Transfers, &tpwalletv1.CreateTransferRequest{Source: src, Destination: dst, Amount: "1"})
		}
		b, err := proto.Marshal(msg)
		if err != nil {
			return err
		}
		g.encoded[m] = b
	}
	stream, err := conn.NewStream(ctx, &tpwalletv1.TransferService_ServiceDesc.Streams[0],
		tpwalletv1.TransferService_SubmitTransfers_FullMethodName, grpc.ForceCodecV2(benchCodec{}))
	if err != nil {
		return err
	}
	window := make(chan sent, g.c.Window) // the messages unanswered, in order
	sendErr := make(chan error, 1)
	go func() {
		defer close(window)
		for i := 0; rctx.Err() == nil; i++ {
			m := i % grpcMessages
			select {
			case window <- sent{msg: m, at: time.Now()}:
			case <-rctx.Done():
				continue
			}
			if err := stream.SendMsg(g.encoded[m]); err != nil {
				sendErr <- err
				return
			}
			g.messages.Add(1)
		}
		sendErr <- stream.CloseSend()
	}()
	var ans streamAnswer
	for s := range window {
		if err := stream.RecvMsg(&ans); err != nil {
			return fmt.Errorf("bench: stream: %w", err)
		}
		d := time.Since(s.at)
		pairs := g.pairs[s.msg]
		if len(ans.ok) != len(pairs) {
			return fmt.Errorf("bench: an answer of %d results to a message of %d transfers", len(ans.ok), len(pairs))
		}
		n := 0
		for i, ok := range ans.ok {
			if !ok {
				g.errs.Add(1)
				continue
			}
			g.tally[pairs[i][0]]--
			g.tally[pairs[i][1]]++
			n++
		}
		g.transfers.Add(int64(n))
		g.lats = append(g.lats, d)
		g.hist.add(d)
	}
	if err := <-sendErr; err != nil {
		return fmt.Errorf("bench: send: %w", err)
	}
	if err := stream.RecvMsg(&ans); !errors.Is(err, io.EOF) {
		return fmt.Errorf("bench: the stream did not end after the last answer: %v", err)
	}
	return nil
}

// benchPair picks two distinct accounts (for p2m, a user and the merchant ids[0]).
func benchPair(rng *rand.Rand, workload string, ids []string) (string, string) {
	a := rng.IntN(len(ids))
	if workload == "p2m" {
		if a == 0 {
			a = 1 + rng.IntN(len(ids)-1)
		}
		return ids[a], ids[0]
	}
	b := rng.IntN(len(ids) - 1)
	if b >= a {
		b++
	}
	return ids[a], ids[b]
}

// preEncoded is a message already in wire form.
type preEncoded []byte

// streamAnswer is a SubmitTransfersResponse read for whether each result is a transfer.
type streamAnswer struct {
	ok []bool
}

// benchCodec is the proto codec, except that it sends a preEncoded as it is and reads a
// streamAnswer from the wire without decoding its Transfers.
type benchCodec struct{}

func (benchCodec) Name() string { return "proto" }

func (benchCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(preEncoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (benchCodec) Unmarshal(data mem.BufferSlice, v any) error {
	a, ok := v.(*streamAnswer)
	if !ok {
		return encoding.GetCodecV2("proto").Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	a.ok = a.ok[:0]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num != 1 || typ != protowire.BytesType { // results
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		r, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		ok, err := resultOK(r)
		if err != nil {
			return err
		}
		a.ok = append(a.ok, ok)
	}
	return nil
}

// resultOK reports whether a TransferResult holds a transfer (field 1) rather than an
// error (field 2).
func resultOK(r []byte) (bool, error) {
	ok := false
	for len(r) > 0 {
		num, typ, n := protowire.ConsumeTag(r)
		if n < 0 {
			return false, protowire.ParseError(n)
		}
		r = r[n:]
		n = protowire.ConsumeFieldValue(num, typ, r)
		if n < 0 {
			return false, protowire.ParseError(n)
		}
		r = r[n:]
		switch num {
		case 1:
			ok = true
		case 2:
			return false, nil
		}
	}
	return ok, nil
}

// setupGRPC creates the accounts and a treasury over gRPC, and funds every account.
func setupGRPC(ctx context.Context, conn *grpc.ClientConn, c benchConfig, run string, progress io.Writer) ([]string, error) {
	accounts := tpwalletv1.NewAccountServiceClient(conn)
	treasury := "bench-" + run + "-treasury"
	if _, err := accounts.CreateAccount(ctx, &tpwalletv1.CreateAccountRequest{Id: &treasury, Asset: "USD",
		Kind: "system", AllowNegative: true}); err != nil {
		return nil, fmt.Errorf("bench: create treasury: %w", err)
	}
	ids := benchAccountIDs(c, run)
	err := createEach(ids, 32, func(i int) error {
		if _, err := accounts.CreateAccount(ctx, &tpwalletv1.CreateAccountRequest{Id: &ids[i],
			Owner: "bench:" + run, Asset: "USD", Kind: benchAccountKind(c, i)}); err != nil {
			return fmt.Errorf("bench: create account: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	transfers := tpwalletv1.NewTransferServiceClient(conn)
	atomic := true
	for i := 0; i < len(ids); i += 1000 {
		batch := &tpwalletv1.CreateTransferBatchRequest{Atomic: &atomic}
		for _, id := range ids[i:min(i+1000, len(ids))] {
			batch.Transfers = append(batch.Transfers, &tpwalletv1.CreateTransferRequest{Source: treasury,
				Destination: id, Amount: strconv.FormatInt(fundAmount, 10), Kind: "topup"})
		}
		if _, err := transfers.CreateTransferBatch(ctx, batch); err != nil {
			return nil, fmt.Errorf("bench: fund accounts: %w", err)
		}
	}
	fmt.Fprintf(progress, "set up %d funded accounts\n", len(ids))
	return ids, nil
}

// checkBalancesGRPC is checkBalances over gRPC.
func checkBalancesGRPC(ctx context.Context, conn *grpc.ClientConn, ids []string, t tally, progress io.Writer) (bool, error) {
	accounts := tpwalletv1.NewAccountServiceClient(conn)
	ok := true
	for _, id := range ids {
		a, err := accounts.GetAccount(ctx, &tpwalletv1.GetAccountRequest{Id: id})
		if err != nil {
			return false, fmt.Errorf("bench: read account %s: %w", id, err)
		}
		want := strconv.FormatInt(fundAmount+t[id], 10)
		if a.Balance.GetPosted() != want {
			if ok {
				fmt.Fprintf(progress, "balance mismatch: %s has %s, acknowledged transfers give %s\n", id, a.Balance.GetPosted(), want)
			}
			ok = false
		}
	}
	return ok, nil
}
