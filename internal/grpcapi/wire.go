package grpcapi

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// The transfer stream's answers are its hot path: a Transfer per transfer, hundreds of
// thousands a second. Building each as a message (a struct, its oneof wrapper, five
// strings) and then marshalling it through protobuf's reflection cost more CPU than the
// rest of the stream; appendAnswer writes the wire form of a SubmitTransfersResponse
// straight from the ledger's results instead, and the server's codec sends it as it is.
// TestWireAnswer holds it to proto.Marshal of the same message built with the converters.

// wireMessage is a message already in wire form, in a buffer of the gRPC pool that the
// transport frees once it is written.
type wireMessage struct{ buf mem.Buffer }

// codec is the proto codec, except that it sends a *wireMessage as it is and decodes a
// *transferMessage by hand.
type codec struct{ proto encoding.CodecV2 }

func newCodec() codec { return codec{proto: encoding.GetCodecV2("proto")} }

func (c codec) Name() string { return "proto" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if w, ok := v.(*wireMessage); ok {
		return mem.BufferSlice{w.buf}, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal decodes a transfer stream's message with decodeTransfers, and everything else
// as the proto codec does.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*transferMessage)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free() // decodeTransfers copies what it keeps
	var err error
	m.c, err = decodeTransfers(buf.ReadOnlyData())
	return err
}

// transferMessage is what a transfer stream receives its messages into: the codec
// decodes a SubmitTransfersRequest straight into a chunk.
type transferMessage struct{ c *chunk }

// newWireMessage copies b into a pooled buffer.
func newWireMessage(b []byte) *wireMessage {
	pool := mem.DefaultBufferPool()
	p := pool.Get(len(b))
	copy(*p, b)
	return &wireMessage{buf: mem.NewBuffer(p, pool)}
}

// Field numbers of tpwallet.v1 messages written here.
const (
	fieldResults = 1 // SubmitTransfersResponse.results

	fieldResultTransfer = 1 // TransferResult.transfer
	fieldResultError    = 2 // TransferResult.error
	fieldResultExisting = 3 // TransferResult.existing

	fieldErrorCode   = 1
	fieldErrorDetail = 2

	fieldTransferID           = 1
	fieldTransferSource       = 2
	fieldTransferDestination  = 3
	fieldTransferAmount       = 4
	fieldTransferAsset        = 5
	fieldTransferKind         = 6
	fieldTransferStatus       = 7
	fieldTransferReference    = 8
	fieldTransferMetadata     = 9
	fieldTransferCreatedAt    = 10
	fieldTransferPostedAt     = 11
	fieldTransferAmountPosted = 12
	fieldTransferExpiresAt    = 13
)

// appendString appends a string field, omitted when empty as proto3 does.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendTime appends a time field as REST writes it; 0 is omitted (REST's null).
func appendTime(b []byte, num protowire.Number, ns int64) []byte {
	if ns == 0 {
		return b
	}
	var t [30]byte
	return appendBytes(b, num, journal.AppendTime(t[:0], ns))
}

func appendAmount(b []byte, num protowire.Number, a ledger.Amount) []byte {
	var d [40]byte // 2^128-1 has 39 digits
	return appendBytes(b, num, a.AppendDecimal(d[:0]))
}

// appendTransferFields appends the fields of the Transfer message of t, as transferPB
// makes it.
func appendTransferFields(b []byte, t *ledger.Transfer) []byte {
	b = appendString(b, fieldTransferID, t.ID)
	b = appendString(b, fieldTransferSource, t.Source)
	b = appendString(b, fieldTransferDestination, t.Destination)
	b = appendAmount(b, fieldTransferAmount, t.Amount)
	b = appendString(b, fieldTransferAsset, t.Asset)
	b = appendString(b, fieldTransferKind, string(t.Kind))
	b = appendString(b, fieldTransferStatus, string(t.Status))
	b = appendString(b, fieldTransferReference, t.Reference)
	for k, v := range t.Metadata {
		// A map entry: key 1 and value 2, each written even when empty, like protobuf-go.
		n := protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
		b = protowire.AppendTag(b, fieldTransferMetadata, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	var ct [30]byte // always set, as transferPB sets it
	b = appendBytes(b, fieldTransferCreatedAt, journal.AppendTime(ct[:0], t.CreatedAt))
	b = appendTime(b, fieldTransferPostedAt, t.PostedAt)
	b = appendAmount(b, fieldTransferAmountPosted, t.AmountPosted)
	return appendTime(b, fieldTransferExpiresAt, t.ExpiresAt)
}

// answerWriter writes SubmitTransfersResponse messages; its buffers are reused from one
// message to the next.
type answerWriter struct {
	msg []byte // the message being written
	tmp []byte // one Transfer, while its length is not known
}

// appendResult appends one TransferResult (as a results field) of a transfer.
func (w *answerWriter) appendTransfer(t *ledger.Transfer, existing bool) {
	w.tmp = appendTransferFields(w.tmp[:0], t)
	n := protowire.SizeTag(fieldResultTransfer) + protowire.SizeBytes(len(w.tmp))
	if existing {
		n += protowire.SizeTag(fieldResultExisting) + protowire.SizeVarint(1)
	}
	b := protowire.AppendTag(w.msg, fieldResults, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = appendBytes(b, fieldResultTransfer, w.tmp)
	if existing {
		b = protowire.AppendTag(b, fieldResultExisting, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	w.msg = b
}

// appendError appends one TransferResult (as a results field) of a rejection.
func (w *answerWriter) appendError(e *ledger.Error) {
	w.tmp = appendString(w.tmp[:0], fieldErrorCode, string(e.Code))
	w.tmp = appendString(w.tmp, fieldErrorDetail, e.Detail)
	n := protowire.SizeTag(fieldResultError) + protowire.SizeBytes(len(w.tmp))
	b := protowire.AppendTag(w.msg, fieldResults, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	w.msg = appendBytes(b, fieldResultError, w.tmp)
}

// answer writes the response to chunk c of g, whose first result is g.res[k].
func (w *answerWriter) answer(c *chunk, g *group, k int) *wireMessage {
	w.msg = w.msg[:0]
	b := 0
	for i := 0; i < c.n; i++ {
		switch {
		case b < len(c.bad) && c.bad[b].index == i:
			w.appendError(c.bad[b].err)
			b++
		case g.err != nil:
			w.appendError(g.err)
		default:
			r := &g.res[k]
			if r.Code != ledger.CodeOK {
				w.appendError(&ledger.Error{Code: r.Code, Detail: r.Detail})
			} else {
				w.appendTransfer(r.Transfer, r.Existing)
			}
			k++
		}
	}
	return newWireMessage(w.msg)
}
