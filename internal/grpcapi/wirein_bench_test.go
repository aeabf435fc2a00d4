package grpcapi_test

import (
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tpwallet/tpwallet/internal/grpcapi"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// benchMessage is a stream message of 1,000 transfers as the bench sends them.
func benchMessage(b *testing.B) []byte {
	msg := &tpwalletv1.SubmitTransfersRequest{}
	for i := range 1000 {
		msg.Transfers = append(msg.Transfers, &tpwalletv1.CreateTransferRequest{
			Source: "bench-abc123-" + strconv.Itoa(i), Destination: "bench-abc123-" + strconv.Itoa(i*7%10000), Amount: "1"})
	}
	w, err := proto.Marshal(msg)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// BenchmarkDecodeTransfers compares the stream's decoder with proto.Unmarshal followed by
// transferRequest, per message of 1,000 transfers.
func BenchmarkDecodeTransfers(b *testing.B) {
	w := benchMessage(b)
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := grpcapi.DecodeTransfers(w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var msg tpwalletv1.SubmitTransfersRequest
			if err := proto.Unmarshal(w, &msg); err != nil {
				b.Fatal(err)
			}
			grpcapi.ReferenceChunk(&msg)
		}
	})
}
