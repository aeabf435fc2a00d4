package grpcapi

import (
	"github.com/tpwallet/tpwallet/internal/ledger"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// SetQueuedHook makes s call f after each message of a transfer stream is queued for the
// batcher, so that a test can wait until the server has read what it sent.
func SetQueuedHook(s *Server, f func()) { s.queued.Store(&f) }

// The transfer stream's answers as messages built with the converters, the reference that
// TestWireAnswer holds the wire writer to.

type (
	Chunk   = chunk
	Group   = group
	BadItem = badItem
)

// NewChunk is a chunk of n transfers whose items at bad's indexes were refused.
func NewChunk(n int, reqs []ledger.Request, bad map[int]*ledger.Error) *Chunk {
	c := &chunk{n: n, reqs: reqs}
	for i := 0; i < n; i++ {
		if e, ok := bad[i]; ok {
			c.bad = append(c.bad, badItem{index: i, err: e})
		}
	}
	return c
}

// NewGroup is a group answered with res, or failed as a whole with err.
func NewGroup(chunks []*Chunk, res []ledger.Result, err *ledger.Error) *Group {
	return &group{chunks: chunks, res: res, err: err}
}

// WireAnswer is what the stream sends for chunk c of g (first result g.res[k]).
func WireAnswer(c *Chunk, g *Group, k int) []byte {
	var w answerWriter
	return w.answer(c, g, k).buf.ReadOnlyData()
}

// ReferenceAnswer is the same answer built as a message with resultPB and errorResult.
func ReferenceAnswer(c *Chunk, g *Group, k int) *tpwalletv1.SubmitTransfersResponse {
	msg := &tpwalletv1.SubmitTransfersResponse{Results: make([]*tpwalletv1.TransferResult, c.n)}
	b := 0
	for i := range msg.Results {
		switch {
		case b < len(c.bad) && c.bad[b].index == i:
			msg.Results[i] = errorResult(c.bad[b].err.Code, c.bad[b].err.Detail)
			b++
		case g.err != nil:
			msg.Results[i] = errorResult(g.err.Code, g.err.Detail)
		default:
			msg.Results[i] = resultPB(&g.res[k])
			k++
		}
	}
	return msg
}

// DecodeTransfers is the transfer stream's decoder of its messages.
func DecodeTransfers(b []byte) (*Chunk, error) { return decodeTransfers(b) }

// ReferenceChunk is what decodeTransfers must make of msg: its transfers checked by
// transferRequest, the same check as CreateTransfer's.
func ReferenceChunk(msg *tpwalletv1.SubmitTransfersRequest) *Chunk {
	n := len(msg.Transfers)
	c := &chunk{n: n, weight: int64(max(n, 1))}
	if n > ledger.BatchTransfersMax {
		return c
	}
	c.reqs = make([]ledger.Request, 0, n)
	for i, t := range msg.Transfers {
		r, e := transferRequest(t)
		if e != nil {
			c.bad = append(c.bad, badItem{index: i, err: e})
			continue
		}
		c.reqs = append(c.reqs, r)
	}
	return c
}

// ChunkParts lets a test compare chunks.
func ChunkParts(c *Chunk) (n int, reqs []ledger.Request, bad []BadItem, weight int64) {
	return c.n, c.reqs, c.bad, c.weight
}
