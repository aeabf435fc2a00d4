package grpcapi

import (
	"context"
	"sort"
	"strings"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// CreateTransferBatch is POST /v1/transfers/batch: atomic (all or none) or not (each on
// its own), with REST's checks and answers.
func (s transfers) CreateTransferBatch(ctx context.Context, req *tpwalletv1.CreateTransferBatchRequest) (*tpwalletv1.CreateTransferBatchResponse, error) {
	switch n := len(req.Transfers); {
	case req.Atomic == nil:
		return nil, invalid("atomic is required")
	case n == 0:
		return nil, invalid("transfers must hold 1 to 8190 transfers")
	case n > ledger.BatchTransfersMax:
		return nil, fail(ledger.CodeBatchTooLarge, "a batch holds at most 8190 transfers")
	}
	atomic := *req.Atomic
	cmd := ledger.Command{Atomic: atomic, Requests: make([]ledger.Request, 0, len(req.Transfers))}
	var bad []*tpwalletv1.BatchError // malformed items, by their index in the request
	var index []int                  // request index of each submitted request
	for i, t := range req.Transfers {
		r, e := transferRequest(t)
		if e != nil {
			bad = append(bad, &tpwalletv1.BatchError{Index: int32(i), Code: string(e.Code), Detail: e.Detail})
			continue
		}
		cmd.Requests = append(cmd.Requests, r)
		index = append(index, i)
	}
	if atomic && len(bad) > 0 {
		cmd.Requests = nil // nothing may apply: answer with the malformed items
	}
	r := func(res []ledger.Result) (proto.Message, *status.Status, bool) {
		if atomic {
			return renderAtomic(res, bad, index)
		}
		return renderResults(res, bad, index, len(req.Transfers)), nil, false
	}
	return as[*tpwalletv1.CreateTransferBatchResponse](s.write(ctx, req, cmd, r, new(tpwalletv1.CreateTransferBatchResponse)))
}

func renderAtomic(res []ledger.Result, bad []*tpwalletv1.BatchError, index []int) (proto.Message, *status.Status, bool) {
	errs := bad
	for i := range res {
		if r := &res[i]; r.Code != ledger.CodeOK {
			errs = append(errs, &tpwalletv1.BatchError{Index: int32(index[i]), Code: string(r.Code), Detail: r.Detail})
		}
	}
	if len(errs) > 0 {
		return nil, batchFailed(errs), false
	}
	out := &tpwalletv1.CreateTransferBatchResponse{Transfers: make([]*tpwalletv1.Transfer, len(res))}
	for i := range res {
		out.Transfers[i] = transferPB(res[i].Transfer)
	}
	return out, nil, false
}

func renderResults(res []ledger.Result, bad []*tpwalletv1.BatchError, index []int, n int) proto.Message {
	out := &tpwalletv1.CreateTransferBatchResponse{Results: make([]*tpwalletv1.TransferResult, n)}
	for _, e := range bad {
		out.Results[e.Index] = errorResult(ledger.Code(e.Code), e.Detail)
	}
	for i := range res {
		out.Results[index[i]] = resultPB(&res[i])
	}
	return out
}

// resultPB is the TransferResult of one transfer request's result.
func resultPB(r *ledger.Result) *tpwalletv1.TransferResult {
	if r.Code != ledger.CodeOK {
		return errorResult(r.Code, r.Detail)
	}
	return &tpwalletv1.TransferResult{Result: &tpwalletv1.TransferResult_Transfer{Transfer: transferPB(r.Transfer)},
		Existing: r.Existing}
}

func errorResult(c ledger.Code, detail string) *tpwalletv1.TransferResult {
	return &tpwalletv1.TransferResult{Result: &tpwalletv1.TransferResult_Error{
		Error: &tpwalletv1.Error{Code: string(c), Detail: detail}}}
}

// CreateAPIKey is POST /v1/api-keys. Like REST, it takes no idempotency-key: replaying
// would mean storing the secret, and each call makes a new key.
func (s apiKeys) CreateAPIKey(ctx context.Context, req *tpwalletv1.CreateAPIKeyRequest) (*tpwalletv1.APIKey, error) {
	k, err := s.svc.CreateAPIKey(ctx, req.Name, req.Scopes)
	if err != nil {
		return nil, errorOf(err)
	}
	return apiKeyPB(k), nil
}

func apiKeyPB(k service.APIKey) *tpwalletv1.APIKey {
	return &tpwalletv1.APIKey{Id: k.ID, Name: k.Name, Scopes: k.Scopes, Key: string(k.Secret),
		CreatedAt: journal.FormatTime(k.CreatedAt)}
}

// ListAPIKeys is GET /v1/api-keys: pages ordered by id; the cursor is the id of the last
// key of the page before.
func (s apiKeys) ListAPIKeys(ctx context.Context, req *tpwalletv1.ListAPIKeysRequest) (*tpwalletv1.ListAPIKeysResponse, error) {
	limit, err := pageLimit(req.Limit)
	if err != nil {
		return nil, err
	}
	keys, err := s.svc.APIKeys(ctx)
	if err != nil {
		return nil, errorOf(err)
	}
	if c := req.Cursor; c != "" {
		if h, ok := strings.CutPrefix(c, "key_"); !ok || len(h) != 16 || strings.Trim(h, "0123456789abcdef") != "" {
			return nil, invalid("the cursor is not one this server made")
		}
		keys = keys[sort.Search(len(keys), func(i int) bool { return keys[i].ID > c }):]
	}
	out := &tpwalletv1.ListAPIKeysResponse{}
	if len(keys) > limit {
		keys = keys[:limit]
	}
	if len(keys) == limit {
		out.NextCursor = keys[limit-1].ID
	}
	for _, k := range keys {
		out.Items = append(out.Items, apiKeyPB(k))
	}
	return out, nil
}

func (s apiKeys) DeleteAPIKey(ctx context.Context, req *tpwalletv1.DeleteAPIKeyRequest) (*tpwalletv1.DeleteAPIKeyResponse, error) {
	if err := s.svc.RevokeAPIKey(ctx, req.Id); err != nil {
		return nil, errorOf(err)
	}
	return &tpwalletv1.DeleteAPIKeyResponse{}, nil
}
