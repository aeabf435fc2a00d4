package client

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// transport sends one attempt of an operation over a wire protocol. It is the seam between
// the Client, which owns everything a caller sees — typed operations, idempotency keys,
// retries, errors — and the protocol: REST today (rest.go); a gRPC transport can be added
// beside it, mapping each operation's name to its RPC, without changing any operation.
//
// do sends c once and decodes the answer into c.out. It returns:
//   - an *Error for an answer the server gave that is a problem (with RetryAfter when the
//     server sent one);
//   - a *transportError when no answer came: the request may or may not have reached the
//     server, unless notSent says it surely did not;
//   - any other error for a failure that a retry cannot mend (a body that does not encode,
//     an answer that does not decode, the context's end).
//
// It fills c.got on every attempt it has an answer for. It must send the same request on
// every attempt of one call: the server hashes method, path and body under the
// Idempotency-Key, and answers a different request with that key 422 idempotency_key_reused.
// Implementations are safe for concurrent use.
type transport interface {
	do(ctx context.Context, c *call) error
}

// operation is one API operation as every transport knows it. name is openapi.yaml's
// operationId (a gRPC transport maps it to its method); method and path are the REST route.
type operation struct {
	name   string
	method string
	path   string // with {id} where the call's id goes
	kind   opKind
}

// opKind says what a retry of an operation risks.
type opKind int

const (
	// opRead changes nothing: any failure may be retried.
	opRead opKind = iota
	// opWrite carries an Idempotency-Key: the server answers a retry with the first
	// attempt's stored answer (Idempotent-Replayed) or, while it still runs, 409
	// idempotency_in_flight; either way nothing is applied twice.
	opWrite
	// opUnkeyed changes state but the server keeps no Idempotency-Key for it (POST
	// /v1/api-keys): it is retried only when the server surely did nothing.
	opUnkeyed
	// opRepeatable changes state, takes no Idempotency-Key, and doing it twice is doing
	// it once (POST /v1/webhooks/{id}/replay): any failure may be retried, as a read.
	opRepeatable
	// opDelete removes something: a retry after an attempt whose outcome is unknown may
	// find it gone already (DeleteAPIKey counts that as done).
	opDelete
)

var (
	opCreateAPIKey    = &operation{"createAPIKey", "POST", "/v1/api-keys", opUnkeyed}
	opListAPIKeys     = &operation{"listAPIKeys", "GET", "/v1/api-keys", opRead}
	opDeleteAPIKey    = &operation{"deleteAPIKey", "DELETE", "/v1/api-keys/{id}", opDelete}
	opListAssets      = &operation{"listAssets", "GET", "/v1/assets", opRead}
	opCreateAsset     = &operation{"createAsset", "POST", "/v1/assets", opWrite}
	opCreateAccount   = &operation{"createAccount", "POST", "/v1/accounts", opWrite}
	opListAccounts    = &operation{"listAccounts", "GET", "/v1/accounts", opRead}
	opGetAccount      = &operation{"getAccount", "GET", "/v1/accounts/{id}", opRead}
	opFreezeAccount   = &operation{"freezeAccount", "POST", "/v1/accounts/{id}/freeze", opWrite}
	opUnfreezeAccount = &operation{"unfreezeAccount", "POST", "/v1/accounts/{id}/unfreeze", opWrite}
	opListEntries     = &operation{"listEntries", "GET", "/v1/accounts/{id}/entries", opRead}
	opGetBalance      = &operation{"getBalance", "GET", "/v1/accounts/{id}/balance", opRead}
	opCreateTransfer  = &operation{"createTransfer", "POST", "/v1/transfers", opWrite}
	opListTransfers   = &operation{"listTransfers", "GET", "/v1/transfers", opRead}
	opCreateBatch     = &operation{"createTransferBatch", "POST", "/v1/transfers/batch", opWrite}
	opGetTransfer     = &operation{"getTransfer", "GET", "/v1/transfers/{id}", opRead}
	opPostTransfer    = &operation{"postTransfer", "POST", "/v1/transfers/{id}/post", opWrite}
	opIncrease        = &operation{"increaseTransfer", "POST", "/v1/transfers/{id}/increase", opWrite}
	opVoidTransfer    = &operation{"voidTransfer", "POST", "/v1/transfers/{id}/void", opWrite}
	opListJournal     = &operation{"listJournal", "GET", "/v1/journal", opRead}
	opJournalHead     = &operation{"journalHead", "GET", "/v1/journal/head", opRead}
	opListEvents      = &operation{"listEvents", "GET", "/v1/events", opRead}
	opListFollowers   = &operation{"listFollowers", "GET", "/v1/followers", opRead}
	opReadyz          = &operation{"readyz", "GET", "/readyz", opRead}
)

// call is one logical call: what every attempt sends, and what the latest one got.
type call struct {
	op *operation
	id string // the path's {id}
	// in is the typed input: a request body for writes (nil: none), a params value for
	// reads (a queryer for REST). A gRPC transport reads the same values.
	in  any
	out any // the answer's destination (nil: none)

	idemKey   string // writes: made once per call, sent on every attempt
	requestID string // sent as X-Request-Id when not empty

	got answer // filled by the transport for each attempt that got an answer
	// ambiguous is set once an attempt got no answer after it may have reached the server.
	ambiguous bool

	// encoded is the transport's encoding of in, made on the first attempt and reused, so
	// that every attempt sends the same bytes.
	encoded []byte
	// msg is the gRPC transport's request message, made on the first attempt and reused.
	msg any
}

// answer is what the transport learnt from a response.
type answer struct {
	status    int
	requestID string
	replayed  bool
}

// queryer is a read's params that become a REST query string.
type queryer interface{ query() url.Values }

func (p ListParams) query() url.Values {
	v := url.Values{}
	if p.Limit != 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		v.Set("cursor", p.Cursor)
	}
	return v
}

func (p ListAccountsParams) query() url.Values {
	v := p.ListParams.query()
	if p.Owner != "" {
		v.Set("owner", p.Owner)
	}
	return v
}

func (p ListTransfersParams) query() url.Values {
	v := p.ListParams.query()
	if p.Account != "" {
		v.Set("account", p.Account)
	}
	return v
}

func (p JournalParams) query() url.Values {
	v := url.Values{}
	if p.After != 0 {
		v.Set("after", strconv.FormatUint(p.After, 10))
	}
	if p.Limit != 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	return v
}

func (p EventsParams) query() url.Values {
	v := url.Values{}
	if p.After != "" {
		v.Set("after", p.After)
	}
	if p.Limit != 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Wait > 0 {
		// Whole seconds, rounded up so that a wait is never shorter than asked.
		v.Set("wait", strconv.FormatInt(int64((p.Wait+time.Second-1)/time.Second), 10))
	}
	if len(p.Types) > 0 {
		t := make([]string, len(p.Types))
		for i, typ := range p.Types {
			t[i] = string(typ)
		}
		v.Set("types", strings.Join(t, ","))
	}
	return v
}

// balanceParams is the query of getBalance.
type balanceParams struct{ At time.Time }

func (p balanceParams) query() url.Values {
	v := url.Values{}
	if !p.At.IsZero() {
		v.Set("at", p.At.UTC().Format(time.RFC3339Nano))
	}
	return v
}
