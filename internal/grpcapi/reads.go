package grpcapi

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// pageLimit is REST's ?limit=: 1-1000, and 0 (unset in proto3) the default 50.
func pageLimit(limit int32) (int, error) {
	switch {
	case limit == 0:
		return 50, nil
	case limit < 0 || limit > 1000:
		return 0, invalid("limit must be an integer from 1 to 1000")
	}
	return int(limit), nil
}

// readErr maps store read errors as REST does: not found to notFound, a bad cursor to
// invalid_request.
func readErr(err error, notFound ledger.Code) error {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		switch notFound {
		case ledger.CodeAccountNotFound:
			return fail(notFound, "no account with that id")
		case ledger.CodeTransferNotFound:
			return fail(notFound, "no transfer with that id")
		}
		return fail(notFound, "")
	case errors.Is(err, engine.ErrBadCursor):
		return invalid("the cursor is not one this server made")
	}
	return errorOf(err)
}

func (s assets) ListAssets(ctx context.Context, _ *tpwalletv1.ListAssetsRequest) (*tpwalletv1.ListAssetsResponse, error) {
	list, err := s.svc.Assets(ctx)
	if err != nil {
		return nil, errorOf(err)
	}
	out := &tpwalletv1.ListAssetsResponse{Items: make([]*tpwalletv1.Asset, len(list))}
	for i := range list {
		out.Items[i] = assetPB(&list[i])
	}
	return out, nil
}

func (s accounts) GetAccount(ctx context.Context, req *tpwalletv1.GetAccountRequest) (*tpwalletv1.Account, error) {
	a, err := s.svc.Store().Account(ctx, req.Id)
	if err != nil {
		return nil, readErr(err, ledger.CodeAccountNotFound)
	}
	return accountPB(a), nil
}

func (s accounts) ListAccounts(ctx context.Context, req *tpwalletv1.ListAccountsRequest) (*tpwalletv1.ListAccountsResponse, error) {
	limit, err := pageLimit(req.Limit)
	if err != nil {
		return nil, err
	}
	items, next, err := s.svc.Store().Accounts(ctx, req.Owner, req.Cursor, limit)
	if err != nil {
		return nil, readErr(err, ledger.CodeNotFound)
	}
	out := &tpwalletv1.ListAccountsResponse{Items: make([]*tpwalletv1.Account, len(items)), NextCursor: next}
	for i, a := range items {
		out.Items[i] = accountPB(a)
	}
	return out, nil
}

// accountExists is nil when the account exists, else account_not_found.
func (s *Server) accountExists(ctx context.Context, id string) error {
	if _, err := s.svc.Store().Account(ctx, id); err != nil {
		return readErr(err, ledger.CodeAccountNotFound)
	}
	return nil
}

func (s accounts) ListEntries(ctx context.Context, req *tpwalletv1.ListEntriesRequest) (*tpwalletv1.ListEntriesResponse, error) {
	limit, err := pageLimit(req.Limit)
	if err != nil {
		return nil, err
	}
	if err := s.accountExists(ctx, req.AccountId); err != nil {
		return nil, err
	}
	items, next, err := s.svc.Store().Entries(ctx, req.AccountId, req.Cursor, limit)
	if err != nil {
		return nil, readErr(err, ledger.CodeAccountNotFound)
	}
	out := &tpwalletv1.ListEntriesResponse{Items: make([]*tpwalletv1.Entry, len(items)), NextCursor: next}
	for i := range items {
		out.Items[i] = entryPB(&items[i])
	}
	return out, nil
}

func (s accounts) GetBalance(ctx context.Context, req *tpwalletv1.GetBalanceRequest) (*tpwalletv1.BalanceAt, error) {
	// Without at the answer is the current balance: every entry counts, also those the
	// engine stamped after the wall clock's now (as REST, handlers.go balanceAt).
	at, upTo := time.Now().UnixNano(), int64(math.MaxInt64)
	if req.At != "" {
		t, err := journal.ParseTime(req.At)
		if err != nil {
			return nil, invalid("at must be an RFC 3339 time")
		}
		at, upTo = t, t
	}
	if err := s.accountExists(ctx, req.AccountId); err != nil {
		return nil, err
	}
	bal, err := s.svc.Store().BalanceAt(ctx, req.AccountId, upTo)
	if err != nil {
		return nil, readErr(err, ledger.CodeAccountNotFound)
	}
	return &tpwalletv1.BalanceAt{AccountId: req.AccountId, At: journal.FormatTime(at), Posted: bal.String()}, nil
}

func (s transfers) GetTransfer(ctx context.Context, req *tpwalletv1.GetTransferRequest) (*tpwalletv1.Transfer, error) {
	t, err := s.svc.Store().Transfer(ctx, req.Id)
	if err != nil {
		return nil, readErr(err, ledger.CodeTransferNotFound)
	}
	return transferPB(t), nil
}

func (s transfers) ListTransfers(ctx context.Context, req *tpwalletv1.ListTransfersRequest) (*tpwalletv1.ListTransfersResponse, error) {
	limit, err := pageLimit(req.Limit)
	if err != nil {
		return nil, err
	}
	if req.Account != "" {
		if err := s.accountExists(ctx, req.Account); err != nil {
			return nil, err
		}
	}
	items, next, err := s.svc.Store().Transfers(ctx, req.Account, req.Cursor, limit)
	if err != nil {
		return nil, readErr(err, ledger.CodeNotFound)
	}
	out := &tpwalletv1.ListTransfersResponse{Items: make([]*tpwalletv1.Transfer, len(items)), NextCursor: next}
	for i, t := range items {
		out.Items[i] = transferPB(t)
	}
	return out, nil
}

func (s journals) ListRecords(ctx context.Context, req *tpwalletv1.ListRecordsRequest) (*tpwalletv1.ListRecordsResponse, error) {
	limit, err := pageLimit(req.Limit)
	if err != nil {
		return nil, err
	}
	recs, err := s.svc.Store().Journal(ctx, req.After, limit)
	if err != nil {
		return nil, errorOf(err)
	}
	out := &tpwalletv1.ListRecordsResponse{Items: make([]*tpwalletv1.Record, len(recs))}
	for i, r := range recs {
		out.Items[i] = recordPB(r)
	}
	if len(recs) == limit {
		out.NextCursor = strconv.FormatUint(recs[len(recs)-1].Seq, 10)
	}
	return out, nil
}

func (s journals) GetHead(ctx context.Context, _ *tpwalletv1.GetHeadRequest) (*tpwalletv1.JournalHead, error) {
	h, err := s.svc.Store().Head(ctx)
	if err != nil {
		return nil, errorOf(err)
	}
	return &tpwalletv1.JournalHead{Seq: h.Seq, Hash: h.Hash.String()}, nil
}
