package grpcapi

import (
	"context"
	"errors"
	"io"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/metadata"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// streamPendingMax bounds the transfers a stream has received but not yet submitted: four
// full ledger batches. Past it the stream stops reading, and HTTP/2 flow control holds the
// client back.
const streamPendingMax = 4 * ledger.BatchTransfersMax

// chunk is one message of a transfer stream after the edge checks.
type chunk struct {
	n      int              // transfers in the message
	reqs   []ledger.Request // those that passed the checks, in order
	bad    []badItem        // the others, by index, in order
	weight int64            // what it holds of the stream's pending bound
}

// badItem is a transfer of a message refused at the edge.
type badItem struct {
	index int
	err   *ledger.Error
}

// group is consecutive chunks of one stream that one engine submission answered.
type group struct {
	chunks []*chunk
	res    []ledger.Result // one per request of the chunks, in order
	err    *ledger.Error   // set when the submission failed as a whole
}

// SubmitTransfers runs a transfer stream with three goroutines:
//
//   - receive reads messages (decoded by hand: wirein.go), checks each transfer as
//     CreateTransfer does, and queues the messages (at most streamPendingMax transfers
//     wait);
//   - this one, the batcher, takes everything queued (up to one ledger batch of 8,190
//     transfers) and submits it as one non-atomic command, one submission at a time, so
//     the stream's transfers apply in the order they were sent and a stream that sends
//     faster than the ledger commits gets larger batches;
//   - send answers each message, in order, once its submission is durable, while the
//     batcher has the next one applied.
//
// Idempotency is by transfer id: a transfer sent again with the same id and fields
// answers the existing transfer (existing set) and changes nothing.
func (s transfers) SubmitTransfers(stream tpwalletv1.TransferService_SubmitTransfersServer) error {
	ctx := stream.Context()
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(mdIdempotencyKey)) > 0 {
		return invalid("a transfer stream takes no idempotency-key: give each transfer an id, which makes resending it safe")
	}
	p := principal(ctx)
	pending := semaphore.NewWeighted(streamPendingMax)
	in := make(chan *chunk, streamPendingMax) // never full: each chunk weighs at least 1
	recvErr := make(chan error, 1)
	go s.receive(ctx, stream, p, pending, in, recvErr)

	out := make(chan *group, 2)
	sent := make(chan error, 1)
	go send(stream, out, sent)

	err := s.batch(ctx, p, pending, in, recvErr, out)
	close(out)
	if serr := <-sent; serr != nil && err == nil {
		err = serr
	}
	return err
}

// receive queues the stream's messages on in until the client closes its side (recvErr
// gets nil) or the stream fails (recvErr gets the error).
func (s transfers) receive(ctx context.Context, stream tpwalletv1.TransferService_SubmitTransfersServer,
	p *service.Principal, pending *semaphore.Weighted, in chan<- *chunk, recvErr chan<- error) {
	for {
		var m transferMessage // decoded by the codec (decodeTransfers)
		if err := stream.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			recvErr <- err
			close(in)
			return
		}
		c := s.admitChunk(m.c, p)
		if err := pending.Acquire(ctx, c.weight); err != nil {
			recvErr <- err
			close(in)
			return
		}
		in <- c
		if f := s.queued.Load(); f != nil {
			(*f)()
		}
	}
}

// admitChunk refuses every transfer of a message that is too large, or whose API key is
// over its rate.
func (s transfers) admitChunk(c *chunk, p *service.Principal) *chunk {
	var e *ledger.Error
	switch {
	case c.n > ledger.BatchTransfersMax:
		e = ledger.Errorf(ledger.CodeBatchTooLarge, "a message holds at most 8190 transfers")
	case !s.limits.Allow(p.KeyID):
		e = ledger.Errorf(ledger.CodeRateLimited, "this API key sends more requests than it may; retry after a second")
	default:
		return c
	}
	refused := &chunk{n: c.n, weight: 1, bad: make([]badItem, c.n)}
	for i := range refused.bad {
		refused.bad[i] = badItem{index: i, err: e}
	}
	return refused
}

// batch submits what in brings, a group at a time, and hands each answered group to send.
// It returns when the client has closed its side and everything is answered (nil), when
// the stream fails, or when the server stops (Unavailable).
func (s transfers) batch(ctx context.Context, p *service.Principal, pending *semaphore.Weighted,
	in <-chan *chunk, recvErr <-chan error, out chan<- *group) error {
	var carry *chunk // taken from in, but too large for the group before
	for {
		if s.stopping.Err() != nil { // before in: stop even when more is queued
			return fail(ledger.CodeUnavailable, "the server is stopping; send the unanswered transfers again, with their ids")
		}
		first := carry
		carry = nil
		if first == nil {
			select {
			case c, ok := <-in:
				if !ok {
					return <-recvErr
				}
				first = c
			case <-s.stopping.Done():
				return fail(ledger.CodeUnavailable, "the server is stopping; send the unanswered transfers again, with their ids")
			}
		}
		g := &group{chunks: []*chunk{first}}
		total := len(first.reqs)
	drain:
		for total < ledger.BatchTransfersMax {
			select {
			case c, ok := <-in:
				if !ok {
					break drain // recvErr is read when in is found closed again
				}
				if total+len(c.reqs) > ledger.BatchTransfersMax {
					carry = c
					break drain
				}
				g.chunks = append(g.chunks, c)
				total += len(c.reqs)
			default:
				break drain
			}
		}
		s.submit(ctx, p, g, total)
		var weight int64
		for _, c := range g.chunks {
			weight += c.weight
		}
		pending.Release(weight)
		select {
		case out <- g:
		case <-ctx.Done():
			return errorOf(ctx.Err())
		}
	}
}

// submit applies the requests of g's chunks as one non-atomic command.
func (s transfers) submit(ctx context.Context, p *service.Principal, g *group, total int) {
	if total == 0 {
		return
	}
	reqs := g.chunks[0].reqs
	if len(reqs) != total {
		reqs = make([]ledger.Request, 0, total)
		for _, c := range g.chunks {
			reqs = append(reqs, c.reqs...)
		}
	}
	ans, err := s.svc.Write(ctx, p, nil, ledger.Command{Requests: reqs}, noRender)
	if err != nil {
		g.err = refusal(err)
		return
	}
	g.res = ans.Results
}

// refusal is the rejection every transfer of a failed submission gets.
func refusal(err error) *ledger.Error {
	var nl *service.NotLeaderError
	var e *ledger.Error
	switch {
	case errors.As(err, &nl):
		return nl.Unwrap().(*ledger.Error)
	case errors.As(err, &e):
		return e
	case errors.Is(err, engine.ErrUnavailable):
		return ledger.Errorf(ledger.CodeUnavailable, "the store cannot be reached; retry shortly")
	}
	return ledger.Errorf(ledger.CodeInternal, "an internal error occurred; the outcome is unknown: send the transfer again with its id")
}

// send answers each chunk of each group in order, and reports the first Send error on
// sent (nil when all went out). After an error it keeps draining out.
func send(stream tpwalletv1.TransferService_SubmitTransfersServer, out <-chan *group, sent chan<- error) {
	var failed error
	var w answerWriter
	for g := range out {
		k := 0
		for _, c := range g.chunks {
			if failed == nil {
				failed = stream.SendMsg(w.answer(c, g, k))
			}
			k += len(c.reqs)
		}
	}
	sent <- failed
}
