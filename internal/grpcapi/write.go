package grpcapi

import (
	"context"
	"crypto/sha256"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// render builds the answer to a write from its results: a message, or a status; existing
// is set when a transfer repeated an existing one (REST's 200 instead of 201).
type render func(res []ledger.Result) (msg proto.Message, st *status.Status, existing bool)

// Stored answers: service.Write keeps an answer as a status and body. A gRPC answer is
// kept as the gRPC code with the marshalled google.rpc.Status, or as storedOK (storedExisting)
// with the marshalled answer message. No gRPC code is storedExisting. The request hash
// starts with "grpc\n", so a REST answer, stored under the same key by the same API key,
// is never replayed here (nor this one over REST): that is idempotency_key_reused.
const (
	storedOK       = int(codes.OK)
	storedExisting = 100
)

// write runs the common path of every unary RPC that changes the ledger: the
// idempotency-key, submission, and the answer, replayed or fresh.
func (s *Server) write(ctx context.Context, req proto.Message, cmd ledger.Command, r render, answer proto.Message) (proto.Message, error) {
	idem, err := idemRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	sr := noRender
	if idem != nil {
		sr = func(res []ledger.Result) (int, []byte, bool) { return stored(r(res)) }
	}
	ans, err := s.svc.Write(ctx, principal(ctx), idem, cmd, sr)
	if err != nil {
		return nil, errorOf(err)
	}
	if ans.Replayed {
		grpc.SetHeader(ctx, metadata.Pairs(mdReplayed, "true"))
		return replay(ctx, ans, answer)
	}
	msg, st, existing := r(ans.Results)
	if st != nil {
		return nil, st.Err()
	}
	if existing {
		grpc.SetHeader(ctx, metadata.Pairs(mdExisting, "true"))
	}
	return msg, nil
}

// noRender is the service.Render of a write without an idempotency-key: Write's answer
// is built from its results instead.
func noRender([]ledger.Result) (int, []byte, bool) { return 0, nil, false }

// stored is the answer to keep for replay, and whether to keep it (not Unavailable,
// ResourceExhausted, Internal or Aborted answers, as REST keeps no 5xx, 429 or
// idempotency_in_flight answer).
func stored(msg proto.Message, st *status.Status, existing bool) (int, []byte, bool) {
	if st != nil {
		b, err := proto.Marshal(st.Proto())
		switch st.Code() {
		case codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.Aborted:
			return int(st.Code()), b, false
		}
		return int(st.Code()), b, err == nil
	}
	b, err := proto.Marshal(msg)
	if existing {
		return storedExisting, b, err == nil
	}
	return storedOK, b, err == nil
}

// replay decodes a stored answer into answer (an empty message of the RPC's answer type).
func replay(ctx context.Context, ans service.Answer, answer proto.Message) (proto.Message, error) {
	switch ans.Status {
	case storedOK, storedExisting:
		if err := proto.Unmarshal(ans.Body, answer); err != nil {
			return nil, fail(ledger.CodeInternal, "a stored answer could not be read")
		}
		if ans.Status == storedExisting {
			grpc.SetHeader(ctx, metadata.Pairs(mdExisting, "true"))
		}
		return answer, nil
	}
	var sp spb.Status
	if err := proto.Unmarshal(ans.Body, &sp); err != nil {
		return nil, fail(ledger.CodeInternal, "a stored answer could not be read")
	}
	return nil, status.FromProto(&sp).Err()
}

// idemRequest reads the idempotency-key metadata of a write: nil without one. The request
// hash is over "grpc", the method and the request message in deterministic wire form, so
// the same key with the same request replays, and with any other request (or the same
// key sent over REST) is idempotency_key_reused.
func idemRequest(ctx context.Context, req proto.Message) (*service.IdemRequest, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(mdIdempotencyKey)
	if len(v) == 0 {
		return nil, nil
	}
	if len(v) != 1 || !validIdemKey(v[0]) {
		return nil, invalid("idempotency-key must be 1-255 printable ASCII characters")
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, invalid("the request cannot be encoded")
	}
	method, _ := grpc.Method(ctx)
	h := sha256.New()
	h.Write([]byte("grpc\n" + method + "\n"))
	h.Write(b)
	idem := &service.IdemRequest{Key: v[0]}
	h.Sum(idem.Hash[:0])
	return idem, nil
}

func validIdemKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func one(req ledger.Request) ledger.Command {
	return ledger.Command{Requests: []ledger.Request{req}}
}

// renderOne answers a single-request command: the object, or the rejection.
func renderOne(res []ledger.Result) (proto.Message, *status.Status, bool) {
	r := &res[0]
	if r.Code != ledger.CodeOK {
		return nil, statusOf(r.Code, r.Detail, nil), false
	}
	switch {
	case r.Transfer != nil:
		return transferPB(r.Transfer), nil, r.Existing
	case r.Account != nil:
		return accountPB(r.Account), nil, false
	case r.Asset != nil:
		return assetPB(r.Asset), nil, false
	}
	return nil, statusOf(ledger.CodeInternal, "an internal error occurred", nil), false
}

func (s transfers) CreateTransfer(ctx context.Context, req *tpwalletv1.CreateTransferRequest) (*tpwalletv1.Transfer, error) {
	r, bad := transferRequest(req)
	if bad != nil {
		return nil, errorOf(bad)
	}
	return as[*tpwalletv1.Transfer](s.write(ctx, req, one(r), renderOne, new(tpwalletv1.Transfer)))
}

func (s transfers) PostTransfer(ctx context.Context, req *tpwalletv1.PostTransferRequest) (*tpwalletv1.Transfer, error) {
	r := ledger.Request{Op: ledger.OpPost, TransferID: req.Id}
	var err error
	if r.Amount, r.AmountSet, err = amount(req.Amount); err != nil {
		return nil, err
	}
	r.NotFinal = req.Final != nil && !*req.Final
	if r.NotFinal && !r.AmountSet {
		return nil, invalid("a post with final false needs an amount")
	}
	return as[*tpwalletv1.Transfer](s.write(ctx, req, one(r), renderOne, new(tpwalletv1.Transfer)))
}

func (s transfers) IncreaseTransfer(ctx context.Context, req *tpwalletv1.IncreaseTransferRequest) (*tpwalletv1.Transfer, error) {
	a, set, err := amount(req.Amount)
	if err != nil {
		return nil, err
	}
	if !set {
		return nil, invalid("amount is required")
	}
	r := ledger.Request{Op: ledger.OpIncrease, TransferID: req.Id, Amount: a}
	return as[*tpwalletv1.Transfer](s.write(ctx, req, one(r), renderOne, new(tpwalletv1.Transfer)))
}

func (s transfers) VoidTransfer(ctx context.Context, req *tpwalletv1.VoidTransferRequest) (*tpwalletv1.Transfer, error) {
	r := ledger.Request{Op: ledger.OpVoid, TransferID: req.Id}
	return as[*tpwalletv1.Transfer](s.write(ctx, req, one(r), renderOne, new(tpwalletv1.Transfer)))
}

func (s accounts) CreateAccount(ctx context.Context, req *tpwalletv1.CreateAccountRequest) (*tpwalletv1.Account, error) {
	a := ledger.AccountRequest{Owner: req.Owner, Asset: req.Asset, Kind: ledger.AccountKind(req.Kind),
		AllowNegative: req.AllowNegative, Metadata: req.Metadata}
	if req.Id != nil {
		if !ledger.ValidID(*req.Id) {
			return nil, invalid("id must be 1-64 characters of A-Za-z0-9_.:-")
		}
		a.ID = *req.Id
	}
	if req.Asset == "" {
		return nil, invalid("asset is required")
	}
	r := ledger.Request{Op: ledger.OpCreateAccount, Account: a}
	return as[*tpwalletv1.Account](s.write(ctx, req, one(r), renderOne, new(tpwalletv1.Account)))
}

func (s accounts) FreezeAccount(ctx context.Context, req *tpwalletv1.FreezeAccountRequest) (*tpwalletv1.Account, error) {
	r := ledger.Request{Op: ledger.OpFreeze, AccountID: req.Id}
	return as[*tpwalletv1.Account](s.write(ctx, req, one(r), renderOne, new(tpwalletv1.Account)))
}

func (s accounts) UnfreezeAccount(ctx context.Context, req *tpwalletv1.UnfreezeAccountRequest) (*tpwalletv1.Account, error) {
	r := ledger.Request{Op: ledger.OpUnfreeze, AccountID: req.Id}
	return as[*tpwalletv1.Account](s.write(ctx, req, one(r), renderOne, new(tpwalletv1.Account)))
}

func (s assets) CreateAsset(ctx context.Context, req *tpwalletv1.CreateAssetRequest) (*tpwalletv1.Asset, error) {
	if req.Scale == nil || *req.Scale > ledger.AssetScaleMax || !ledger.ValidAssetCode(req.Code) {
		return nil, invalid("code must be 2-16 characters of A-Z0-9 and scale 0-18")
	}
	r := ledger.Request{Op: ledger.OpCreateAsset, Asset: ledger.Asset{Code: req.Code, Scale: uint8(*req.Scale)}}
	return as[*tpwalletv1.Asset](s.write(ctx, req, one(r), renderOne, new(tpwalletv1.Asset)))
}

// as narrows write's answer to the RPC's answer type.
func as[T proto.Message](m proto.Message, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	return m.(T), nil
}
