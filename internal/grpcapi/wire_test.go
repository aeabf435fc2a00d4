package grpcapi_test

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tpwallet/tpwallet/internal/grpcapi"
	"github.com/tpwallet/tpwallet/internal/ledger"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// randomTransfer is a transfer with every field drawn: empty or not, ASCII or not, small
// or 128-bit amounts, times or none, metadata or none.
func randomTransfer(rng *rand.Rand) *ledger.Transfer {
	str := func() string {
		switch rng.IntN(4) {
		case 0:
			return ""
		case 1:
			return "ü€𝄞-" + strconv.Itoa(rng.IntN(1000))
		}
		return "x" + strconv.Itoa(rng.IntN(1e6))
	}
	amount := func() ledger.Amount {
		if rng.IntN(3) == 0 {
			return ledger.AmountFromParts(rng.Uint64(), rng.Uint64())
		}
		return ledger.AmountFromUint64(uint64(rng.IntN(3)) * rng.Uint64N(1000))
	}
	when := func() int64 {
		if rng.IntN(3) == 0 {
			return 0
		}
		return rng.Int64N(1 << 62)
	}
	t := &ledger.Transfer{ID: "tr" + str(), Source: str(), Destination: str(), Amount: amount(), Asset: str(),
		Kind: ledger.TransferKind(str()), Status: ledger.TransferStatus(str()), Reference: str(),
		CreatedAt: when(), PostedAt: when(), AmountPosted: amount(), ExpiresAt: when()}
	if rng.IntN(2) == 0 {
		t.Metadata = map[string]string{}
		for range rng.IntN(4) {
			t.Metadata["k"+str()] = str()
		}
	}
	return t
}

// TestWireAnswer holds the stream's hand-written wire answers to proto.Marshal: each,
// decoded, must equal the message built with the converters, over random transfers,
// rejections at the edge, rejections by the ledger and failed submissions.
func TestWireAnswer(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := 0; round < 500; round++ {
		n := rng.IntN(20)
		bad := map[int]*ledger.Error{}
		var res []ledger.Result
		for i := 0; i < n; i++ {
			switch rng.IntN(6) {
			case 0:
				bad[i] = ledger.Errorf(ledger.CodeInvalidRequest, "amount: bad %d ü", i)
			case 1:
				res = append(res, ledger.Result{Code: ledger.CodeInsufficientFunds, Detail: "too low"})
			default:
				res = append(res, ledger.Result{Transfer: randomTransfer(rng), Existing: rng.IntN(4) == 0})
			}
		}
		var gerr *ledger.Error
		if rng.IntN(10) == 0 {
			gerr, res = ledger.Errorf(ledger.CodeUnavailable, "stopped"), nil
		}
		// Put the results after another chunk's, so that k matters.
		lead := ledger.Result{Transfer: randomTransfer(rng)}
		c := grpcapi.NewChunk(n, make([]ledger.Request, len(res)), bad)
		g := grpcapi.NewGroup([]*grpcapi.Chunk{c}, append([]ledger.Result{lead}, res...), gerr)
		k := 1
		if gerr != nil {
			k = 0
		}
		var got tpwalletv1.SubmitTransfersResponse
		if err := proto.Unmarshal(grpcapi.WireAnswer(c, g, k), &got); err != nil {
			t.Fatalf("round %d: the wire answer does not decode: %v", round, err)
		}
		want := grpcapi.ReferenceAnswer(c, g, k)
		if !proto.Equal(&got, want) {
			t.Fatalf("round %d:\ngot  %v\nwant %v", round, &got, want)
		}
	}
}
