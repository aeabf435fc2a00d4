package client

import (
	"context"
	"errors"
	"time"
)

// Every method returns an *Error for a problem the server answered (match it with
// errors.Is and the Err* sentinels). Besides the codes each lists, any call may fail with
// unauthenticated, forbidden, invalid_request, and — after the retry policy gave up —
// rate_limited, overloaded, not_leader or unavailable, or with a network or context error.
// Writes carry an Idempotency-Key (WithIdempotencyKey, else a random one per call), the
// same on every attempt, so a retried write is applied at most once.

// CreateAPIKey makes an API key with the given scopes (admin). Its secret is in the answer
// only. The server keeps no Idempotency-Key for this operation, so it is not retried after
// an attempt that may have reached the server: on a network error, list the keys before
// trying again.
func (c *Client) CreateAPIKey(ctx context.Context, req CreateAPIKeyRequest, opts ...CallOption) (*APIKeyCreated, error) {
	var out APIKeyCreated
	_, err := c.do(ctx, opCreateAPIKey, "", &req, &out, opts)
	return ptrOrNil(&out, err)
}

// ListAPIKeys returns a page of the live API keys, without secrets, ordered by id (admin).
func (c *Client) ListAPIKeys(ctx context.Context, p ListParams, opts ...CallOption) (*Page[APIKey], error) {
	var out Page[APIKey]
	_, err := c.do(ctx, opListAPIKeys, "", p, &out, opts)
	return ptrOrNil(&out, err)
}

// DeleteAPIKey revokes an API key at once (admin). Codes: not_found. A retry that finds the
// key gone after an attempt whose outcome was unknown counts as done.
func (c *Client) DeleteAPIKey(ctx context.Context, id string, opts ...CallOption) error {
	cl, err := c.do(ctx, opDeleteAPIKey, id, nil, nil, opts)
	if errors.Is(err, ErrNotFound) && cl.ambiguous {
		return nil // the attempt that got no answer deleted it
	}
	return err
}

// ListAssets returns every asset, sorted by code.
func (c *Client) ListAssets(ctx context.Context, opts ...CallOption) ([]Asset, error) {
	var out items[Asset]
	_, err := c.do(ctx, opListAssets, "", nil, &out, opts)
	return out.Items, err
}

// CreateAsset adds an asset (admin). Codes: asset_exists.
func (c *Client) CreateAsset(ctx context.Context, a Asset, opts ...CallOption) (*Asset, error) {
	var out Asset
	_, err := c.do(ctx, opCreateAsset, "", &a, &out, opts)
	return ptrOrNil(&out, err)
}

// CreateAccount opens an account. Codes: account_exists, asset_unknown.
func (c *Client) CreateAccount(ctx context.Context, req CreateAccountRequest, opts ...CallOption) (*Account, error) {
	var out Account
	_, err := c.do(ctx, opCreateAccount, "", &req, &out, opts)
	return ptrOrNil(&out, err)
}

// GetAccount returns an account as of the latest commit. Codes: account_not_found.
func (c *Client) GetAccount(ctx context.Context, id string, opts ...CallOption) (*Account, error) {
	var out Account
	_, err := c.do(ctx, opGetAccount, id, nil, &out, opts)
	return ptrOrNil(&out, err)
}

// ListAccounts returns a page of accounts, ordered by id; Accounts iterates over all pages.
func (c *Client) ListAccounts(ctx context.Context, p ListAccountsParams, opts ...CallOption) (*Page[Account], error) {
	var out Page[Account]
	_, err := c.do(ctx, opListAccounts, "", p, &out, opts)
	return ptrOrNil(&out, err)
}

// FreezeAccount freezes an account (admin): it takes part in no new transfer, post or
// increase; its holds may still be voided or expire. Codes: account_not_found,
// account_closed.
func (c *Client) FreezeAccount(ctx context.Context, id string, opts ...CallOption) (*Account, error) {
	var out Account
	_, err := c.do(ctx, opFreezeAccount, id, nil, &out, opts)
	return ptrOrNil(&out, err)
}

// UnfreezeAccount unfreezes an account (admin). Codes: account_not_found, account_closed.
func (c *Client) UnfreezeAccount(ctx context.Context, id string, opts ...CallOption) (*Account, error) {
	var out Account
	_, err := c.do(ctx, opUnfreezeAccount, id, nil, &out, opts)
	return ptrOrNil(&out, err)
}

// ListEntries returns a page of an account's entries (posted movements), newest first;
// Entries iterates over all pages. Codes: account_not_found.
func (c *Client) ListEntries(ctx context.Context, accountID string, p ListParams, opts ...CallOption) (*Page[Entry], error) {
	var out Page[Entry]
	_, err := c.do(ctx, opListEntries, accountID, p, &out, opts)
	return ptrOrNil(&out, err)
}

// BalanceAt returns an account's posted balance just after its last entry at or before at
// (now, when at is the zero time). Codes: account_not_found.
func (c *Client) BalanceAt(ctx context.Context, accountID string, at time.Time, opts ...CallOption) (*PostedBalance, error) {
	var out PostedBalance
	_, err := c.do(ctx, opGetBalance, accountID, balanceParams{At: at}, &out, opts)
	return ptrOrNil(&out, err)
}

// CreateTransfer moves Amount from Source to Destination: posted at once (Status posted), or
// held when req.Hold is set (Status pending). Codes: account_not_found,
// insufficient_funds, account_frozen, account_closed, asset_mismatch, same_account,
// amount_overflow, transfer_exists, idempotency_key_reused.
func (c *Client) CreateTransfer(ctx context.Context, req CreateTransferRequest, opts ...CallOption) (*Transfer, error) {
	var out Transfer
	_, err := c.do(ctx, opCreateTransfer, "", &req, &out, opts)
	return ptrOrNil(&out, err)
}

// GetTransfer returns a transfer as of its latest change. Codes: transfer_not_found.
func (c *Client) GetTransfer(ctx context.Context, id string, opts ...CallOption) (*Transfer, error) {
	var out Transfer
	_, err := c.do(ctx, opGetTransfer, id, nil, &out, opts)
	return ptrOrNil(&out, err)
}

// ListTransfers returns a page of transfers, newest first; Transfers iterates over all
// pages. Codes: account_not_found (the Account filter names no account).
func (c *Client) ListTransfers(ctx context.Context, p ListTransfersParams, opts ...CallOption) (*Page[Transfer], error) {
	var out Page[Transfer]
	_, err := c.do(ctx, opListTransfers, "", p, &out, opts)
	return ptrOrNil(&out, err)
}

// PostTransfer posts all or part of a hold (see PostTransferRequest). Codes:
// transfer_not_found, transfer_not_pending, hold_expired, amount_exceeds_hold,
// account_frozen, account_closed, amount_overflow.
func (c *Client) PostTransfer(ctx context.Context, id string, req PostTransferRequest, opts ...CallOption) (*Transfer, error) {
	var in any // the whole hold, finally: no body at all
	if req != (PostTransferRequest{}) {
		in = req
	}
	var out Transfer
	_, err := c.do(ctx, opPostTransfer, id, in, &out, opts)
	return ptrOrNil(&out, err)
}

// IncreaseTransfer holds amount more on a pending transfer (incremental authorisation),
// checked against the source's available balance; the expiry does not change. Codes:
// transfer_not_found, transfer_not_pending, hold_expired, insufficient_funds,
// account_frozen, account_closed, amount_overflow.
func (c *Client) IncreaseTransfer(ctx context.Context, id string, amount Amount, opts ...CallOption) (*Transfer, error) {
	in := increaseRequest{amount}
	var out Transfer
	_, err := c.do(ctx, opIncrease, id, &in, &out, opts)
	return ptrOrNil(&out, err)
}

// VoidTransfer releases what a hold still reserves; what was posted stays posted. Codes:
// transfer_not_found, transfer_not_pending, hold_expired.
func (c *Client) VoidTransfer(ctx context.Context, id string, opts ...CallOption) (*Transfer, error) {
	var out Transfer
	_, err := c.do(ctx, opVoidTransfer, id, nil, &out, opts)
	return ptrOrNil(&out, err)
}

// The answers and bodies below are named, so that every transport decodes into the same
// types (a gRPC transport switches on them).

// items is an answer of a list that has no pages.
type items[T any] struct {
	Items []T `json:"items"`
}

// increaseRequest is the body of POST /v1/transfers/{id}/increase.
type increaseRequest struct {
	Amount Amount `json:"amount"`
}

// batchTransfers is the answer of an atomic batch; batchResults of one that is not.
type batchTransfers struct {
	Transfers []Transfer `json:"transfers"`
}

type batchResults struct {
	Results []BatchResult `json:"results"`
}

// batchRequest is the body of POST /v1/transfers/batch.
type batchRequest struct {
	Atomic    bool                    `json:"atomic"`
	Transfers []CreateTransferRequest `json:"transfers"`
}

// CreateBatchAtomic applies 1 to 8,190 transfers in order, all or none: a later one may
// spend what an earlier one credited. On success it returns them in request order; if any
// fails, nothing is applied and the error is batch_failed, whose Errors list each failed
// transfer by index. Codes: batch_failed, batch_too_large.
func (c *Client) CreateBatchAtomic(ctx context.Context, transfers []CreateTransferRequest, opts ...CallOption) ([]Transfer, error) {
	var out batchTransfers
	_, err := c.do(ctx, opCreateBatch, "", &batchRequest{Atomic: true, Transfers: transfers}, &out, opts)
	return out.Transfers, err
}

// CreateBatch applies 1 to 8,190 transfers in order, each on its own, and returns one
// result per transfer in request order: the Transfer, or the Err that rejected it.
// Codes: batch_too_large.
func (c *Client) CreateBatch(ctx context.Context, transfers []CreateTransferRequest, opts ...CallOption) ([]BatchResult, error) {
	var out batchResults
	_, err := c.do(ctx, opCreateBatch, "", &batchRequest{Atomic: false, Transfers: transfers}, &out, opts)
	return out.Results, err
}

// ListJournal returns journal records with seq > p.After, in order. NextCursor is the last
// seq when the page is full (pass it as After), else empty. Journal iterates to the head.
func (c *Client) ListJournal(ctx context.Context, p JournalParams, opts ...CallOption) (*Page[Record], error) {
	var out Page[Record]
	_, err := c.do(ctx, opListJournal, "", p, &out, opts)
	return ptrOrNil(&out, err)
}

// JournalHead returns the latest record's seq and hash.
func (c *Client) JournalHead(ctx context.Context, opts ...CallOption) (*JournalHead, error) {
	var out JournalHead
	_, err := c.do(ctx, opJournalHead, "", nil, &out, opts)
	return ptrOrNil(&out, err)
}

// ListEvents returns up to p.Limit events after p.After, waiting up to p.Wait for a first
// one (a long poll). NextCursor is always set: pass it as After to go on. Events iterates
// for ever.
func (c *Client) ListEvents(ctx context.Context, p EventsParams, opts ...CallOption) (*Page[Event], error) {
	var out Page[Event]
	_, err := c.do(ctx, opListEvents, "", p, &out, opts)
	return ptrOrNil(&out, err)
}

// ListFollowers returns the journal's followers this instance runs, with their lag (admin).
func (c *Client) ListFollowers(ctx context.Context, opts ...CallOption) ([]Follower, error) {
	var out items[Follower]
	_, err := c.do(ctx, opListFollowers, "", nil, &out, opts)
	return out.Items, err
}

// Ready returns nil when the server takes writes (GET /readyz), else its *Error:
// not_leader on a standby (Leader names the leader when known), unavailable after a failed
// commit. It is not retried.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, opReadyz, "", nil, nil, []CallOption{WithCallRetryPolicy(NoRetry)})
	return err
}

// ptrOrNil returns out on success and nil with the error, so that no caller reads a
// half-filled result.
func ptrOrNil[T any](out *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return out, nil
}
