package grpcapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/grpcapi"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/service"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// step is one operation of the parity script, in its REST and its gRPC form, and what
// both must answer.
type step struct {
	name string
	key  string // admin, write, read, none (no key) or bogus (an unknown key)
	rest string // "METHOD /path?query"
	body string // REST body ("" for none)
	rpc  string // "Service/Method" of tpwallet.v1
	msg  string // the gRPC request as protojson ("" for the empty message)
	idem string // idempotency key, sent on both

	code     string // the api.md code both must answer; "" for success
	status   int    // the HTTP status REST must answer (gRPC's code follows from code)
	replayed bool   // both must say the answer is a replay
	// ignore lists fields that may differ between the two ledgers (API key ids and secrets).
	ignore []string
	// sortItems: the order of items may differ (API keys are ordered by their random ids).
	sortItems bool
	// anyDetail: the detail names transport-specific syntax (JSON vs protobuf) and may
	// differ; the code may not.
	anyDetail bool
	// empty: the answer is an empty page, which normalizes to nothing.
	empty bool
}

// parityScript exercises every resource and every error class in order, on a fresh ledger.
var parityScript = []step{
	// Accounts.
	{name: "create treasury", key: "admin", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"treasury","asset":"USD","kind":"system","allow_negative":true}`, status: 201},
	{name: "create alice", key: "write", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"alice","owner":"user:alice","asset":"USD","metadata":{"tier":"kyc2"}}`, status: 201},
	{name: "create bob", key: "write", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"bob","owner":"user:bob","asset":"USD"}`, status: 201},
	{name: "create eur", key: "write", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"eur1","asset":"EUR","kind":"merchant"}`, status: 201},
	{name: "server-made account id", key: "write", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"asset":"GBP"}`, status: 201},
	{name: "account exists", key: "write", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"alice","asset":"USD"}`, code: "account_exists", status: 409},
	{name: "unknown asset", key: "write", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"x1","asset":"XXX"}`, code: "asset_unknown", status: 422},
	{name: "empty account id", key: "write", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"","asset":"USD"}`, code: "invalid_request", status: 400},
	{name: "account without asset", key: "write", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"x2"}`, code: "invalid_request", status: 400},
	{name: "unknown account kind", key: "write", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"x3","asset":"USD","kind":"bank"}`, code: "invalid_request", status: 400},
	{name: "read key cannot write", key: "read", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"x4","asset":"USD"}`, code: "forbidden", status: 403},
	{name: "get account", key: "read", rest: "GET /v1/accounts/alice", rpc: "AccountService/GetAccount",
		msg: `{"id":"alice"}`, status: 200},
	{name: "no such account", key: "read", rest: "GET /v1/accounts/nobody", rpc: "AccountService/GetAccount",
		msg: `{"id":"nobody"}`, code: "account_not_found", status: 404},
	{name: "no key", key: "none", rest: "GET /v1/accounts/alice", rpc: "AccountService/GetAccount",
		msg: `{"id":"alice"}`, code: "unauthenticated", status: 401, anyDetail: true},
	{name: "unknown key", key: "bogus", rest: "GET /v1/accounts/alice", rpc: "AccountService/GetAccount",
		msg: `{"id":"alice"}`, code: "unauthenticated", status: 401},
	{name: "accounts of an owner", key: "read", rest: "GET /v1/accounts?owner=user:alice", rpc: "AccountService/ListAccounts",
		msg: `{"owner":"user:alice"}`, status: 200},
	{name: "all accounts, pages of 2", key: "read", rest: "GET /v1/accounts?limit=2", rpc: "AccountService/ListAccounts",
		msg: `{"limit":2}`, status: 200},
	{name: "limit out of range", key: "read", rest: "GET /v1/accounts?limit=5000", rpc: "AccountService/ListAccounts",
		msg: `{"limit":5000}`, code: "invalid_request", status: 400},
	{name: "bad cursor", key: "read", rest: "GET /v1/accounts?cursor=zz", rpc: "AccountService/ListAccounts",
		msg: `{"cursor":"zz"}`, code: "invalid_request", status: 400},

	// Transfers.
	{name: "fund alice", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"id":"fund-alice","source":"treasury","destination":"alice","amount":"1000","kind":"topup","reference":"r-1"}`, status: 201},
	{name: "same id, same fields: the existing transfer", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"id":"fund-alice","source":"treasury","destination":"alice","amount":"1000","kind":"topup","reference":"r-1"}`, status: 200},
	{name: "same id, other fields", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"id":"fund-alice","source":"treasury","destination":"alice","amount":"999","kind":"topup"}`, code: "transfer_exists", status: 409},
	{name: "insufficient funds", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"bob","amount":"5000"}`, code: "insufficient_funds", status: 422},
	{name: "same account", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"alice","amount":"1"}`, code: "same_account", status: 422},
	{name: "asset mismatch", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"eur1","amount":"1"}`, code: "asset_mismatch", status: 422},
	{name: "no such destination", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"nobody","amount":"1"}`, code: "account_not_found", status: 404},
	{name: "zero amount", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"bob","amount":"0"}`, code: "invalid_request", status: 400},
	{name: "malformed amount", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"bob","amount":"-1"}`, code: "invalid_request", status: 400, anyDetail: true},
	{name: "missing destination", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","amount":"1"}`, code: "invalid_request", status: 400},
	{name: "hold timeout out of range", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"bob","amount":"1","hold":{"timeout_seconds":-1}}`, code: "invalid_request", status: 400},
	{name: "server-made transfer id", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"bob","amount":"100","metadata":{"order":"42"}}`, status: 201},
	{name: "hold", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"id":"h1","source":"alice","destination":"bob","amount":"300","hold":{"timeout_seconds":600}}`, status: 201},
	{name: "hold that never expires", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"id":"h2","source":"alice","destination":"bob","amount":"10","hold":{}}`, status: 201},
	{name: "post part, not final", key: "write", rest: "POST /v1/transfers/h1/post", body: `{"amount":"100","final":false}`,
		rpc: "TransferService/PostTransfer", msg: `{"id":"h1","amount":"100","final":false}`, status: 200},
	{name: "increase", key: "write", rest: "POST /v1/transfers/h1/increase", body: `{"amount":"50"}`,
		rpc: "TransferService/IncreaseTransfer", msg: `{"id":"h1","amount":"50"}`, status: 200},
	{name: "increase past the balance", key: "write", rest: "POST /v1/transfers/h1/increase", body: `{"amount":"100000"}`,
		rpc: "TransferService/IncreaseTransfer", msg: `{"id":"h1","amount":"100000"}`, code: "insufficient_funds", status: 422},
	{name: "post more than held", key: "write", rest: "POST /v1/transfers/h1/post", body: `{"amount":"1000"}`,
		rpc: "TransferService/PostTransfer", msg: `{"id":"h1","amount":"1000"}`, code: "amount_exceeds_hold", status: 422},
	{name: "not final needs an amount", key: "write", rest: "POST /v1/transfers/h1/post", body: `{"final":false}`,
		rpc: "TransferService/PostTransfer", msg: `{"id":"h1","final":false}`, code: "invalid_request", status: 400, anyDetail: true},
	{name: "void", key: "write", rest: "POST /v1/transfers/h1/void",
		rpc: "TransferService/VoidTransfer", msg: `{"id":"h1"}`, status: 200},
	{name: "void again", key: "write", rest: "POST /v1/transfers/h1/void",
		rpc: "TransferService/VoidTransfer", msg: `{"id":"h1"}`, code: "transfer_not_pending", status: 409},
	{name: "post all of h2", key: "write", rest: "POST /v1/transfers/h2/post",
		rpc: "TransferService/PostTransfer", msg: `{"id":"h2"}`, status: 200},
	{name: "post an unknown transfer", key: "write", rest: "POST /v1/transfers/nope/post",
		rpc: "TransferService/PostTransfer", msg: `{"id":"nope"}`, code: "transfer_not_found", status: 404},
	{name: "get transfer", key: "read", rest: "GET /v1/transfers/h1", rpc: "TransferService/GetTransfer",
		msg: `{"id":"h1"}`, status: 200},
	{name: "no such transfer", key: "read", rest: "GET /v1/transfers/nope", rpc: "TransferService/GetTransfer",
		msg: `{"id":"nope"}`, code: "transfer_not_found", status: 404},
	{name: "transfers of alice", key: "read", rest: "GET /v1/transfers?account=alice", rpc: "TransferService/ListTransfers",
		msg: `{"account":"alice"}`, status: 200},
	{name: "transfers of nobody", key: "read", rest: "GET /v1/transfers?account=nobody", rpc: "TransferService/ListTransfers",
		msg: `{"account":"nobody"}`, code: "account_not_found", status: 404},
	{name: "entries of alice", key: "read", rest: "GET /v1/accounts/alice/entries?limit=3", rpc: "AccountService/ListEntries",
		msg: `{"account_id":"alice","limit":3}`, status: 200},
	{name: "balance at", key: "read", rest: "GET /v1/accounts/alice/balance?at=2030-01-01T00:00:00Z", rpc: "AccountService/GetBalance",
		msg: `{"account_id":"alice","at":"2030-01-01T00:00:00Z"}`, status: 200},
	{name: "balance at a bad time", key: "read", rest: "GET /v1/accounts/alice/balance?at=yesterday", rpc: "AccountService/GetBalance",
		msg: `{"account_id":"alice","at":"yesterday"}`, code: "invalid_request", status: 400},

	// Freeze.
	{name: "freeze needs admin", key: "write", rest: "POST /v1/accounts/bob/freeze",
		rpc: "AccountService/FreezeAccount", msg: `{"id":"bob"}`, code: "forbidden", status: 403},
	{name: "freeze", key: "admin", rest: "POST /v1/accounts/bob/freeze",
		rpc: "AccountService/FreezeAccount", msg: `{"id":"bob"}`, status: 200},
	{name: "frozen destination", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"bob","amount":"1"}`, code: "account_frozen", status: 422},
	{name: "unfreeze", key: "admin", rest: "POST /v1/accounts/bob/unfreeze",
		rpc: "AccountService/UnfreezeAccount", msg: `{"id":"bob"}`, status: 200},
	{name: "freeze an unknown account", key: "admin", rest: "POST /v1/accounts/nobody/freeze",
		rpc: "AccountService/FreezeAccount", msg: `{"id":"nobody"}`, code: "account_not_found", status: 404},

	// Batches.
	{name: "atomic batch", key: "write", rest: "POST /v1/transfers/batch", rpc: "TransferService/CreateTransferBatch",
		body: `{"atomic":true,"transfers":[{"id":"b1","source":"alice","destination":"bob","amount":"5"},{"id":"b2","source":"bob","destination":"alice","amount":"2"}]}`, status: 201},
	{name: "atomic batch, one fails", key: "write", rest: "POST /v1/transfers/batch", rpc: "TransferService/CreateTransferBatch",
		body: `{"atomic":true,"transfers":[{"source":"alice","destination":"bob","amount":"5"},{"source":"alice","destination":"bob","amount":"999999"}]}`,
		code: "batch_failed", status: 422},
	{name: "atomic batch, one malformed", key: "write", rest: "POST /v1/transfers/batch", rpc: "TransferService/CreateTransferBatch",
		body: `{"atomic":true,"transfers":[{"source":"alice","destination":"bob","amount":"5"},{"source":"alice","amount":"1"}]}`,
		code: "batch_failed", status: 422},
	{name: "non-atomic batch", key: "write", rest: "POST /v1/transfers/batch", rpc: "TransferService/CreateTransferBatch",
		body:   `{"atomic":false,"transfers":[{"id":"b3","source":"alice","destination":"bob","amount":"5"},{"source":"alice","destination":"bob","amount":"999999"},{"id":"b1","source":"alice","destination":"bob","amount":"5"},{"source":"alice","destination":"bob","amount":"0"}]}`,
		status: 200, ignore: []string{"existing"}}, // gRPC also says b1 existed (TestBatchExisting)
	{name: "batch without atomic", key: "write", rest: "POST /v1/transfers/batch", rpc: "TransferService/CreateTransferBatch",
		body: `{"transfers":[{"source":"alice","destination":"bob","amount":"5"}]}`, code: "invalid_request", status: 400},
	{name: "empty batch", key: "write", rest: "POST /v1/transfers/batch", rpc: "TransferService/CreateTransferBatch",
		body: `{"atomic":true,"transfers":[]}`, code: "invalid_request", status: 400},

	// Idempotency.
	{name: "idempotent write", key: "write", idem: "k1", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"bob","amount":"7"}`, status: 201},
	{name: "idempotent replay", key: "write", idem: "k1", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"bob","amount":"7"}`, status: 201, replayed: true},
	{name: "idempotency key reused", key: "write", idem: "k1", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"alice","destination":"bob","amount":"8"}`, code: "idempotency_key_reused", status: 422},
	{name: "idempotency key reused on another method", key: "write", idem: "k1", rest: "POST /v1/accounts", rpc: "AccountService/CreateAccount",
		body: `{"id":"x5","asset":"USD"}`, code: "idempotency_key_reused", status: 422},
	{name: "idempotent refusal", key: "write", idem: "k2", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"bob","destination":"alice","amount":"100000"}`, code: "insufficient_funds", status: 422},
	{name: "fund bob", key: "write", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"treasury","destination":"bob","amount":"100000"}`, status: 201},
	{name: "idempotent refusal replayed, though it would pass now", key: "write", idem: "k2", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"source":"bob","destination":"alice","amount":"100000"}`, code: "insufficient_funds", status: 422, replayed: true},
	{name: "idempotent batch", key: "write", idem: "k3", rest: "POST /v1/transfers/batch", rpc: "TransferService/CreateTransferBatch",
		body: `{"atomic":false,"transfers":[{"source":"alice","destination":"bob","amount":"1"}]}`, status: 200},
	{name: "idempotent batch replayed", key: "write", idem: "k3", rest: "POST /v1/transfers/batch", rpc: "TransferService/CreateTransferBatch",
		body: `{"atomic":false,"transfers":[{"source":"alice","destination":"bob","amount":"1"}]}`, status: 200, replayed: true},
	{name: "idempotent existing transfer", key: "write", idem: "k4", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"id":"fund-alice","source":"treasury","destination":"alice","amount":"1000","kind":"topup","reference":"r-1"}`, status: 200},
	{name: "idempotent existing transfer replayed", key: "write", idem: "k4", rest: "POST /v1/transfers", rpc: "TransferService/CreateTransfer",
		body: `{"id":"fund-alice","source":"treasury","destination":"alice","amount":"1000","kind":"topup","reference":"r-1"}`, status: 200, replayed: true},

	// Assets.
	{name: "list assets", key: "read", rest: "GET /v1/assets", rpc: "AssetService/ListAssets", status: 200},
	{name: "create asset", key: "admin", rest: "POST /v1/assets", rpc: "AssetService/CreateAsset",
		body: `{"code":"XAU","scale":3}`, status: 201},
	{name: "asset exists", key: "admin", rest: "POST /v1/assets", rpc: "AssetService/CreateAsset",
		body: `{"code":"XAU","scale":3}`, code: "asset_exists", status: 409},
	{name: "asset needs admin", key: "write", rest: "POST /v1/assets", rpc: "AssetService/CreateAsset",
		body: `{"code":"XAG","scale":3}`, code: "forbidden", status: 403},
	{name: "asset scale out of range", key: "admin", rest: "POST /v1/assets", rpc: "AssetService/CreateAsset",
		body: `{"code":"XAG","scale":19}`, code: "invalid_request", status: 400},
	{name: "asset without scale", key: "admin", rest: "POST /v1/assets", rpc: "AssetService/CreateAsset",
		body: `{"code":"XAG"}`, code: "invalid_request", status: 400},

	// API keys.
	{name: "create API key", key: "admin", rest: "POST /v1/api-keys", rpc: "APIKeyService/CreateAPIKey",
		body: `{"name":"svc","scopes":["read","write"]}`, status: 201, ignore: []string{"id", "key"}},
	{name: "unknown scope", key: "admin", rest: "POST /v1/api-keys", rpc: "APIKeyService/CreateAPIKey",
		body: `{"name":"svc","scopes":["root"]}`, code: "invalid_request", status: 400},
	{name: "API keys need admin", key: "write", rest: "GET /v1/api-keys", rpc: "APIKeyService/ListAPIKeys",
		code: "forbidden", status: 403},
	{name: "list API keys", key: "admin", rest: "GET /v1/api-keys", rpc: "APIKeyService/ListAPIKeys",
		status: 200, ignore: []string{"id"}, sortItems: true},
	{name: "delete an unknown API key", key: "admin", rest: "DELETE /v1/api-keys/key_0000000000000000",
		rpc: "APIKeyService/DeleteAPIKey", msg: `{"id":"key_0000000000000000"}`, code: "not_found", status: 404},

	// The journal: both ledgers went through the same changes, so they have the same chain.
	{name: "journal head", key: "read", rest: "GET /v1/journal/head", rpc: "JournalService/GetHead", status: 200},
	{name: "journal page", key: "read", rest: "GET /v1/journal?after=2&limit=4", rpc: "JournalService/ListRecords",
		msg: `{"after":2,"limit":4}`, status: 200},
	{name: "journal limit out of range", key: "read", rest: "GET /v1/journal?limit=0", rpc: "JournalService/ListRecords",
		msg: `{"limit":-1}`, code: "invalid_request", status: 400},

	// Webhook endpoints and followers (admin). In paths, bodies and messages {hook} is the
	// endpoint the last create made on that server and {next} the journal's head seq + 1.
	// The URLs' hosts resolve to a public address (publicResolver); no event commits while
	// an endpoint exists, so nothing is delivered and every status is the same on both.
	{name: "webhooks need admin", key: "write", rest: "GET /v1/webhooks", rpc: "WebhookService/ListWebhooks",
		code: "forbidden", status: 403},
	{name: "creating a webhook needs admin", key: "write", rest: "POST /v1/webhooks", rpc: "WebhookService/CreateWebhook",
		body: `{"url":"https://hooks.example.com/ledger"}`, code: "forbidden", status: 403},
	{name: "followers need admin", key: "read", rest: "GET /v1/followers", rpc: "FollowerService/ListFollowers",
		code: "forbidden", status: 403},
	{name: "webhook on a private address", key: "admin", rest: "POST /v1/webhooks", rpc: "WebhookService/CreateWebhook",
		body: `{"url":"http://127.0.0.1:8080/hook"}`, code: "webhook_url_forbidden", status: 422},
	{name: "webhook on a private network", key: "admin", rest: "POST /v1/webhooks", rpc: "WebhookService/CreateWebhook",
		body: `{"url":"https://10.1.2.3/hook"}`, code: "webhook_url_forbidden", status: 422},
	{name: "webhook without url", key: "admin", rest: "POST /v1/webhooks", rpc: "WebhookService/CreateWebhook",
		body: `{"event_types":["transfer.posted"]}`, code: "invalid_request", status: 400},
	{name: "webhook with a bad scheme", key: "admin", rest: "POST /v1/webhooks", rpc: "WebhookService/CreateWebhook",
		body: `{"url":"ftp://hooks.example.com/x"}`, code: "invalid_request", status: 400},
	{name: "webhook with an unknown event type", key: "admin", rest: "POST /v1/webhooks", rpc: "WebhookService/CreateWebhook",
		body: `{"url":"https://hooks.example.com/x","event_types":["transfer.lost"]}`, code: "invalid_request", status: 400},
	{name: "create webhook", key: "admin", rest: "POST /v1/webhooks", rpc: "WebhookService/CreateWebhook",
		body:   `{"url":"https://hooks.example.com/ledger","event_types":["transfer.posted","account.created"],"description":"ledger feed"}`,
		status: 201, ignore: []string{"id", "secret", "running"}}, // its follower may not have started yet
	{name: "followers", key: "admin", rest: "GET /v1/followers", rpc: "FollowerService/ListFollowers",
		status: 200, ignore: []string{"name", "lag_seconds"}}, // REST writes lag_seconds as "0.000"
	{name: "get webhook", key: "admin", rest: "GET /v1/webhooks/{hook}", rpc: "WebhookService/GetWebhook",
		msg: `{"id":"{hook}"}`, status: 200, ignore: []string{"id"}},
	{name: "list webhooks", key: "admin", rest: "GET /v1/webhooks", rpc: "WebhookService/ListWebhooks",
		status: 200, ignore: []string{"id"}},
	{name: "webhooks, limit out of range", key: "admin", rest: "GET /v1/webhooks?limit=5000", rpc: "WebhookService/ListWebhooks",
		msg: `{"limit":5000}`, code: "invalid_request", status: 400},
	{name: "webhooks, bad cursor", key: "admin", rest: "GET /v1/webhooks?cursor=zz", rpc: "WebhookService/ListWebhooks",
		msg: `{"cursor":"zz"}`, code: "invalid_request", status: 400},
	{name: "no such webhook", key: "admin", rest: "GET /v1/webhooks/wh_0000000000000000", rpc: "WebhookService/GetWebhook",
		msg: `{"id":"wh_0000000000000000"}`, code: "webhook_not_found", status: 404},
	{name: "webhook deliveries", key: "admin", rest: "GET /v1/webhooks/{hook}/deliveries?limit=10",
		rpc: "WebhookService/ListWebhookDeliveries", msg: `{"id":"{hook}","limit":10}`, status: 200, empty: true},
	{name: "webhook dead letters", key: "admin", rest: "GET /v1/webhooks/{hook}/dead-letters",
		rpc: "WebhookService/ListWebhookDeadLetters", msg: `{"id":"{hook}"}`, status: 200, empty: true},
	{name: "deliveries of an unknown webhook", key: "admin", rest: "GET /v1/webhooks/wh_0000000000000000/deliveries",
		rpc: "WebhookService/ListWebhookDeliveries", msg: `{"id":"wh_0000000000000000"}`, code: "webhook_not_found", status: 404},
	{name: "deliveries, bad cursor", key: "admin", rest: "GET /v1/webhooks/{hook}/deliveries?cursor=zz",
		rpc: "WebhookService/ListWebhookDeliveries", msg: `{"id":"{hook}","cursor":"zz"}`, code: "invalid_request", status: 400},
	{name: "dead letters of an unknown webhook", key: "admin", rest: "GET /v1/webhooks/nope/dead-letters",
		rpc: "WebhookService/ListWebhookDeadLetters", msg: `{"id":"nope"}`, code: "webhook_not_found", status: 404},
	{name: "replay needs admin", key: "write", rest: "POST /v1/webhooks/{hook}/replay", body: `{"from_seq":1}`,
		rpc: "WebhookService/ReplayWebhook", msg: `{"id":"{hook}","from_seq":1}`, code: "forbidden", status: 403},
	{name: "replay without from_seq", key: "admin", rest: "POST /v1/webhooks/{hook}/replay", body: `{}`,
		rpc: "WebhookService/ReplayWebhook", msg: `{"id":"{hook}"}`, code: "invalid_request", status: 400},
	{name: "replay from 0", key: "admin", rest: "POST /v1/webhooks/{hook}/replay", body: `{"from_seq":0}`,
		rpc: "WebhookService/ReplayWebhook", msg: `{"id":"{hook}","from_seq":0}`, code: "invalid_request", status: 400},
	{name: "replay an unknown webhook", key: "admin", rest: "POST /v1/webhooks/wh_0000000000000000/replay", body: `{"from_seq":1}`,
		rpc: "WebhookService/ReplayWebhook", msg: `{"id":"wh_0000000000000000","from_seq":1}`, code: "webhook_not_found", status: 404},
	{name: "replay from the head", key: "admin", rest: "POST /v1/webhooks/{hook}/replay", body: `{"from_seq":{next}}`,
		rpc: "WebhookService/ReplayWebhook", msg: `{"id":"{hook}","from_seq":{next}}`, status: 202, ignore: []string{"id"}},
	{name: "delete webhook needs admin", key: "write", rest: "DELETE /v1/webhooks/{hook}",
		rpc: "WebhookService/DeleteWebhook", msg: `{"id":"{hook}"}`, code: "forbidden", status: 403},
	{name: "delete webhook", key: "admin", rest: "DELETE /v1/webhooks/{hook}",
		rpc: "WebhookService/DeleteWebhook", msg: `{"id":"{hook}"}`, status: 204},
	{name: "delete it again", key: "admin", rest: "DELETE /v1/webhooks/{hook}",
		rpc: "WebhookService/DeleteWebhook", msg: `{"id":"{hook}"}`, code: "webhook_not_found", status: 404},
	{name: "get the deleted webhook", key: "admin", rest: "GET /v1/webhooks/{hook}", rpc: "WebhookService/GetWebhook",
		msg: `{"id":"{hook}"}`, code: "webhook_not_found", status: 404},
}

// TestParity runs parityScript over REST on one ledger and over gRPC on another, both with
// the same frozen clock, and checks that each step answers the same on both: the same
// code (HTTP status and gRPC code from their tables), the same detail, the same objects
// field by field (server-made ids and times included), the same replays. The final
// journal heads being equal shows both made the same changes.
func TestParity(t *testing.T) {
	const t0 = int64(1_795_000_000_000_000_000) // 2026-11-18, frozen
	o := stackOptions{engine: engine.Options{Now: func() int64 { return t0 }},
		service: service.Options{Now: func() time.Time { return time.Unix(0, t0) }}}
	rest, grpcS := openStack(t, o), openStack(t, o)
	keys := func(s *stack) map[string]string {
		return map[string]string{"admin": s.admin, "write": s.newKey(t, "w", "write"),
			"read": s.newKey(t, "r", "read"), "none": "", "bogus": "tpw_not_a_key_0123456789"}
	}
	restKeys, grpcKeys := keys(rest), keys(grpcS)
	for _, st := range parityScript {
		if st.msg == "" && strings.HasPrefix(st.rest, "POST ") {
			st.msg = st.body // a create's body is its request message
		}
		if !t.Run(st.name, func(t *testing.T) { runStep(t, st, rest, grpcS, restKeys, grpcKeys) }) {
			t.FailNow() // later steps depend on this one
		}
	}
}

// runStep runs one step over REST on rs and over gRPC on gs and compares.
func runStep(t *testing.T, st step, rs, gs *stack, restKeys, grpcKeys map[string]string) {
	if st.rpc == "FollowerService/ListFollowers" && st.code == "" {
		settleFollowers(t, rs)
		settleFollowers(t, gs)
	}
	restStep, grpcMsg := rs.expand(t, st.rest), gs.expand(t, st.msg)
	st.rest, st.body = restStep, rs.expand(t, st.body)
	st.msg = grpcMsg
	method, path, _ := strings.Cut(st.rest, " ")
	var hdr []string
	if st.idem != "" {
		hdr = []string{"Idempotency-Key", st.idem}
	}
	status, header, body := rs.restDo(t, method, path, restKeys[st.key], st.body, hdr...)
	var md []string
	if st.idem != "" {
		md = []string{"idempotency-key", st.idem}
	}
	resp, gHeader, err := invoke(authCtx(t.Context(), grpcKeys[st.key], md...), gs.conn, st.rpc, st.msg)

	if status != st.status {
		t.Fatalf("REST: got %d %s, want %d", status, body, st.status)
	}
	if got := header.Get("Idempotent-Replayed") == "true"; got != st.replayed {
		t.Errorf("REST: replayed %v, want %v", got, st.replayed)
	}
	if got := first(gHeader, "idempotent-replayed") == "true"; got != st.replayed {
		t.Errorf("gRPC: replayed %v, want %v", got, st.replayed)
	}
	if st.code != "" {
		compareErrors(t, st, body, err)
		return
	}
	if err != nil {
		t.Fatalf("gRPC: %v, want success like REST's %d %s", err, status, body)
	}
	// REST tells an existing transfer by 200 instead of 201; gRPC by a header.
	existing := method == "POST" && path == "/v1/transfers" && status == 200
	if got := first(gHeader, "tpwallet-existing") == "true"; got != existing {
		t.Errorf("gRPC: tpwallet-existing %v, want %v (REST answered %d)", got, existing, status)
	}
	compareObjects(t, st, body, resp)
	if st.rpc == "WebhookService/CreateWebhook" {
		var r struct{ ID, Secret string }
		json.Unmarshal(body, &r)
		g := resp.(*tpwalletv1.Webhook)
		if r.ID == "" || r.Secret == "" || g.Id == "" || g.Secret == "" {
			t.Fatalf("create webhook: REST id %q secret %q, gRPC id %q secret %q: both must be set", r.ID, r.Secret, g.Id, g.Secret)
		}
		rs.hookID, gs.hookID = r.ID, g.Id
	}
}

// expand replaces {hook} in v with the webhook endpoint the last create made on s, and
// {next} with the journal's head seq + 1.
func (s *stack) expand(t *testing.T, v string) string {
	t.Helper()
	if strings.Contains(v, "{next}") {
		h, err := s.svc.Store().Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		v = strings.ReplaceAll(v, "{next}", fmt.Sprint(h.Seq+1))
	}
	return strings.ReplaceAll(v, "{hook}", s.hookID)
}

// settleFollowers waits until every follower of s runs and has loaded its cursor, so
// that their statuses no longer depend on timing.
func settleFollowers(t *testing.T, s *stack) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		settled := true
		for _, st := range s.set.Statuses() {
			settled = settled && st.Running && st.Position.Seq > 0
		}
		if settled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("followers not running: %+v", s.set.Statuses())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// compareErrors checks REST's problem and gRPC's status say the same.
func compareErrors(t *testing.T, st step, body []byte, err error) {
	t.Helper()
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
		Errors []struct {
			Index  int    `json:"index"`
			Code   string `json:"code"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if e := json.Unmarshal(body, &p); e != nil {
		t.Fatalf("REST: not a problem: %s", body)
	}
	if p.Code != st.code {
		t.Errorf("REST: code %q, want %q", p.Code, st.code)
	}
	if want := httpapi.StatusOf(ledger.Code(st.code)); want != st.status {
		t.Errorf("the step expects HTTP %d for %s, but REST's table says %d", st.status, st.code, want)
	}
	if err == nil {
		t.Fatalf("gRPC: success, want %s like REST's %s", st.code, body)
	}
	gst := wantCode(t, err, st.code)
	if want := grpcapi.CodeOf(ledger.Code(st.code)); gst.Code() != want {
		t.Errorf("gRPC: code %v, want %v", gst.Code(), want)
	}
	if !st.anyDetail && gst.Message() != p.Detail {
		t.Errorf("detail: REST %q, gRPC %q", p.Detail, gst.Message())
	}
	var gErrs []*tpwalletv1.BatchError
	for _, d := range gst.Details() {
		if be, ok := d.(*tpwalletv1.BatchErrors); ok {
			gErrs = be.Errors
		}
	}
	if len(gErrs) != len(p.Errors) {
		t.Fatalf("batch errors: REST %+v, gRPC %v", p.Errors, gErrs)
	}
	for i, e := range p.Errors {
		g := gErrs[i]
		if int(g.Index) != e.Index || g.Code != e.Code || g.Detail != e.Detail {
			t.Errorf("batch error %d: REST %+v, gRPC %v", i, e, g)
		}
	}
	if st.code == "batch_failed" && len(p.Errors) == 0 {
		t.Errorf("batch_failed without per-item errors")
	}
}

// compareObjects checks that the REST body and the gRPC answer hold the same fields with
// the same values: both as JSON, with REST's nulls, and the zero values proto3 leaves out,
// dropped on both sides, and numbers compared as text (protojson writes 64-bit integers
// as strings).
func compareObjects(t *testing.T, st step, body []byte, resp proto.Message) {
	t.Helper()
	gj, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	r, g := normalize(t, body, st.ignore), normalize(t, gj, st.ignore)
	if st.sortItems {
		sortItems(r)
		sortItems(g)
	}
	if !reflect.DeepEqual(r, g) {
		t.Errorf("answers differ:\nREST %s\ngRPC %s", compact(r), compact(g))
	}
	if r == nil && len(body) > 0 && st.status != http.StatusNoContent && !st.empty {
		t.Errorf("REST's answer normalizes to nothing: %s", body)
	}
}

func normalize(t *testing.T, b []byte, ignore []string) any {
	t.Helper()
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return norm(v, ignore)
}

func norm(v any, ignore []string) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if contains(ignore, k) {
				continue
			}
			if n := norm(e, ignore); n != nil {
				out[k] = n
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		if len(x) == 0 {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = norm(e, ignore)
		}
		return out
	case json.Number:
		if x.String() == "0" {
			return nil
		}
		return x.String()
	case string:
		if x == "" {
			return nil
		}
		return x
	case bool:
		if !x {
			return nil
		}
		return x
	}
	return nil // null
}

// sortItems orders the items of a normalized page by their JSON.
func sortItems(v any) {
	if m, ok := v.(map[string]any); ok {
		if items, ok := m["items"].([]any); ok {
			slices.SortFunc(items, func(a, b any) int { return strings.Compare(compact(a), compact(b)) })
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// invoke calls the tpwallet.v1 RPC "Service/Method" with the request given as protojson.
func invoke(ctx context.Context, conn *grpc.ClientConn, rpc, msg string) (proto.Message, metadata.MD, error) {
	svc, name, _ := strings.Cut(rpc, "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName("tpwallet.v1." + svc))
	if err != nil {
		return nil, nil, err
	}
	m := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(name))
	if m == nil {
		return nil, nil, fmt.Errorf("no method %s", rpc)
	}
	newMsg := func(md protoreflect.MessageDescriptor) proto.Message {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
		if err != nil {
			panic(err)
		}
		return mt.New().Interface()
	}
	req, resp := newMsg(m.Input()), newMsg(m.Output())
	if msg != "" {
		if err := protojson.Unmarshal([]byte(msg), req); err != nil {
			return nil, nil, fmt.Errorf("request %s: %w", msg, err)
		}
	}
	var header metadata.MD
	err = conn.Invoke(ctx, "/tpwallet.v1."+svc+"/"+name, req, resp, grpc.Header(&header))
	return resp, header, err
}

// TestCodeTable checks that every api.md code has a gRPC code of the class of its HTTP
// status.
func TestCodeTable(t *testing.T) {
	classes := map[int][]codes.Code{
		400: {codes.InvalidArgument},
		401: {codes.Unauthenticated},
		403: {codes.PermissionDenied},
		404: {codes.NotFound},
		405: {codes.Unimplemented},
		409: {codes.AlreadyExists, codes.FailedPrecondition, codes.Aborted},
		413: {codes.ResourceExhausted},
		415: {codes.InvalidArgument},
		422: {codes.FailedPrecondition},
		429: {codes.ResourceExhausted},
		500: {codes.Internal},
		503: {codes.Unavailable},
	}
	for _, c := range ledger.Codes {
		hs := httpapi.StatusOf(c)
		g := grpcapi.CodeOf(c)
		ok := false
		for _, want := range classes[hs] {
			ok = ok || g == want
		}
		if !ok {
			t.Errorf("%s: HTTP %d but gRPC %v", c, hs, g)
		}
	}
	if g := grpcapi.CodeOf("no_such_code"); g != codes.Internal {
		t.Errorf("an unknown code: got %v, want Internal", g)
	}
}
