package grpcapi_test

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tpwallet/tpwallet/internal/grpcapi"
	"github.com/tpwallet/tpwallet/internal/ledger"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// FuzzDecodeTransfers holds the transfer stream's hand-written decoder to protobuf: on any
// bytes it must fail exactly when proto.Unmarshal fails, and otherwise make the chunk that
// transferRequest makes of proto.Unmarshal's message, request for request and refusal for
// refusal.
func FuzzDecodeTransfers(f *testing.F) {
	id, empty := "t-1", ""
	for _, msg := range []*tpwalletv1.SubmitTransfersRequest{
		{},
		{Transfers: []*tpwalletv1.CreateTransferRequest{{Source: "a", Destination: "b", Amount: "1"}}},
		{Transfers: []*tpwalletv1.CreateTransferRequest{
			{Id: &id, Source: "a", Destination: "b", Amount: "340282366920938463463374607431768211455", Asset: "USD",
				Kind: "p2m", Reference: "ü€", Metadata: map[string]string{"k": "v", "": "", "x": "ü"},
				Hold: &tpwalletv1.Hold{TimeoutSeconds: 600}},
			{Id: &empty, Source: "a", Destination: "b", Amount: "0"},
			{Source: "a", Amount: "01", Hold: &tpwalletv1.Hold{TimeoutSeconds: -1}},
			{},
		}},
	} {
		b, err := proto.Marshal(msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Wire-level oddities: a field of the wrong type, an unknown field, a repeated scalar,
	// two hold messages that merge, invalid UTF-8, a truncated length.
	item := protowire.AppendTag(nil, 2, protowire.VarintType)
	item = protowire.AppendVarint(item, 7)
	item = protowire.AppendTag(item, 2, protowire.BytesType)
	item = protowire.AppendString(item, "a")
	item = protowire.AppendTag(item, 2, protowire.BytesType)
	item = protowire.AppendString(item, "src")
	item = protowire.AppendTag(item, 99, protowire.Fixed64Type)
	item = protowire.AppendFixed64(item, 1)
	hold := protowire.AppendTag(nil, 1, protowire.VarintType)
	hold = protowire.AppendVarint(hold, 30)
	item = protowire.AppendTag(item, 9, protowire.BytesType)
	item = protowire.AppendBytes(item, hold)
	item = protowire.AppendTag(item, 9, protowire.BytesType)
	item = protowire.AppendBytes(item, nil)
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), item))
	f.Add([]byte{0x0a, 0x04, 0x12, 0x02, 0xff, 0xfe})
	f.Add([]byte{0x0a, 0x05, 0x12})
	f.Fuzz(func(t *testing.T, b []byte) {
		var msg tpwalletv1.SubmitTransfersRequest
		perr := proto.Unmarshal(b, &msg)
		c, derr := grpcapi.DecodeTransfers(b)
		if perr != nil || derr != nil {
			if (perr == nil) != (derr == nil) {
				if n, _, _, _ := grpcapi.ChunkParts(c); derr == nil && n > ledger.BatchTransfersMax {
					return // past the limit the decoder only counts: the message is refused anyway
				}
				t.Fatalf("proto.Unmarshal: %v; decodeTransfers: %v", perr, derr)
			}
			return
		}
		gn, greqs, gbad, gw := grpcapi.ChunkParts(c)
		wn, wreqs, wbad, ww := grpcapi.ChunkParts(grpcapi.ReferenceChunk(&msg))
		if gn != wn || gw != ww || !reflect.DeepEqual(greqs, wreqs) || !reflect.DeepEqual(gbad, wbad) {
			t.Fatalf("got n=%d weight=%d reqs=%+v bad=%+v\nwant n=%d weight=%d reqs=%+v bad=%+v",
				gn, gw, greqs, gbad, wn, ww, wreqs, wbad)
		}
	})
}
