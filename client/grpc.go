package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// grpcDomain is the ErrorInfo domain of tpwallet's errors (docs/grpc.md).
const grpcDomain = "tpwallet.dev"

// WithGRPCDialOptions adds options to the connection NewGRPC makes: transport credentials
// for TLS (the default is plaintext, as `serve --grpc-addr` listens), interceptors, a
// larger MaxCallRecvMsgSize for big journal pages. The REST transport ignores them.
func WithGRPCDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// NewGRPC returns a client of the gRPC API (docs/grpc.md) at target (e.g.
// "127.0.0.1:9090", a grpc.NewClient target) that authenticates with apiKey. It has the
// methods, types, errors, idempotency keys and retries of a REST client; the operations
// gRPC does not have (ListEvents and Events, the long polls of GET /v1/events) fail at
// once with an error that matches errors.ErrUnsupported. It connects lazily, on the
// first call; Close releases the connection.
func NewGRPC(target, apiKey string, opts ...Option) (*Client, error) {
	if target == "" {
		return nil, errors.New("client: grpc target is empty: want host:port")
	}
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent(o.userAgent),
		// The Client retries, with the call's idempotency key; gRPC's own retries (off
		// unless a service config turns them on) would hide attempts from the policy.
		grpc.WithDisableRetry(),
	}, o.dial...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("client: grpc target %q: %w", target, err)
	}
	g := &grpcTransport{conn: conn, key: apiKey,
		apiKeys: tpwalletv1.NewAPIKeyServiceClient(conn), assets: tpwalletv1.NewAssetServiceClient(conn),
		accounts: tpwalletv1.NewAccountServiceClient(conn), transfers: tpwalletv1.NewTransferServiceClient(conn),
		journal: tpwalletv1.NewJournalServiceClient(conn), webhooks: tpwalletv1.NewWebhookServiceClient(conn),
		followers: tpwalletv1.NewFollowerServiceClient(conn), health: healthpb.NewHealthClient(conn)}
	return &Client{t: g, policy: o.policy.withDefaults()}, nil
}

// grpcTransport is the transport of docs/grpc.md: each operation is the RPC of the same
// REST route, with the api key and idempotency key as metadata.
type grpcTransport struct {
	conn      *grpc.ClientConn
	key       string
	apiKeys   tpwalletv1.APIKeyServiceClient
	assets    tpwalletv1.AssetServiceClient
	accounts  tpwalletv1.AccountServiceClient
	transfers tpwalletv1.TransferServiceClient
	journal   tpwalletv1.JournalServiceClient
	webhooks  tpwalletv1.WebhookServiceClient
	followers tpwalletv1.FollowerServiceClient
	health    healthpb.HealthClient
}

func (g *grpcTransport) close() error { return g.conn.Close() }

// grpcMethod sends one attempt: req is the request message (made once per call), and the
// answer is decoded into out.
type grpcMethod struct {
	build  func(c *call) (proto.Message, error)
	invoke func(g *grpcTransport, ctx context.Context, req proto.Message, opts ...grpc.CallOption) (proto.Message, error)
	decode func(resp proto.Message, out any) error
}

func (g *grpcTransport) do(ctx context.Context, c *call) error {
	m, ok := grpcMethods[c.op]
	if !ok {
		return fmt.Errorf("tpwallet: %s: %w over gRPC (REST only, docs/grpc.md)", c.op.name, errors.ErrUnsupported)
	}
	if c.msg == nil {
		req, err := m.build(c)
		if err != nil {
			return fmt.Errorf("tpwallet: %s: encode the request: %w", c.op.name, err)
		}
		c.msg = req // every attempt sends this message, so the server hashes the same bytes
	}
	md := metadata.MD{}
	if g.key != "" {
		md.Set("authorization", "Bearer "+g.key)
	}
	if c.idemKey != "" {
		md.Set("idempotency-key", c.idemKey)
	}
	if c.requestID != "" {
		md.Set("x-request-id", c.requestID)
	}
	var header metadata.MD
	resp, err := m.invoke(g, metadata.NewOutgoingContext(ctx, md), c.msg.(proto.Message), grpc.Header(&header))
	if e := (*Error)(nil); errors.As(err, &e) { // a health check that is not SERVING
		c.got = answer{status: e.Status}
		return e
	}
	if err != nil {
		return g.fail(ctx, c, err)
	}
	c.got = answer{status: http.StatusOK, replayed: first(header, "idempotent-replayed") == "true"}
	if c.out == nil {
		return nil
	}
	if err := m.decode(resp, c.out); err != nil {
		return fmt.Errorf("tpwallet: %s: decode the answer: %w", c.op.name, err)
	}
	return nil
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// fail turns an RPC's error into what transport.do returns: an *Error for a status the
// server answered (it carries an ErrorInfo), a *transportError for a call that got no
// answer, the context's error when ctx ended.
func (g *grpcTransport) fail(ctx context.Context, c *call, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("tpwallet: %s: %w", c.op.name, ctx.Err())
	}
	st, ok := status.FromError(err)
	if !ok {
		return &transportError{err: err}
	}
	e := errorOfStatus(st)
	if e.Code == "" && (st.Code() == codes.Unavailable || st.Code() == codes.Canceled || st.Code() == codes.DeadlineExceeded) {
		// No ErrorInfo: gRPC itself failed (no connection, one that broke mid-call). The
		// server may have applied the request: only the idempotency key makes a retry safe.
		return &transportError{err: err}
	}
	c.got = answer{status: e.Status}
	return e
}

// errorOfStatus reads a status as REST's problem: the api.md code from ErrorInfo.reason,
// RetryInfo as RetryAfter, BatchErrors as Errors, ErrorInfo.metadata.leader as Leader,
// and the HTTP status REST answers with that code.
func errorOfStatus(st *status.Status) *Error {
	e := &Error{Detail: st.Message()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.Domain == grpcDomain {
				e.Code, e.Leader = Code(d.Reason), d.Metadata["leader"]
			}
		case *errdetails.RetryInfo:
			e.RetryAfter = d.GetRetryDelay().AsDuration()
		case *tpwalletv1.BatchErrors:
			for _, b := range d.Errors {
				e.Errors = append(e.Errors, BatchError{Index: int(b.Index), Code: Code(b.Code), Detail: b.Detail})
			}
		}
	}
	e.Status = httpStatusOf(e.Code, st.Code())
	e.Title = http.StatusText(e.Status)
	if e.Code != "" {
		e.Type = "https://tpwallet.dev/problems/" + string(e.Code)
	}
	return e
}

// httpStatusOf is the HTTP status of code (docs/api-errors.md), or, for a status without
// a tpwallet code, that of its gRPC code.
func httpStatusOf(code Code, gc codes.Code) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	switch gc {
	case codes.InvalidArgument, codes.OutOfRange:
		return 400
	case codes.Unauthenticated:
		return 401
	case codes.PermissionDenied:
		return 403
	case codes.NotFound:
		return 404
	case codes.AlreadyExists, codes.Aborted:
		return 409
	case codes.FailedPrecondition:
		return 422
	case codes.ResourceExhausted:
		return 413 // gRPC's own refusal of a message over its size limit: no retry mends it
	case codes.Unimplemented:
		return 501
	case codes.Unavailable:
		return 503
	case codes.DeadlineExceeded:
		return 504
	}
	return 500
}

// codeStatus is docs/api-errors.md's table: the HTTP status REST answers each code with.
var codeStatus = map[Code]int{
	CodeInvalidRequest: 400, CodeBatchTooLarge: 400, CodeUnauthenticated: 401, CodeForbidden: 403,
	CodeNotFound: 404, CodeAccountNotFound: 404, CodeTransferNotFound: 404, CodeWebhookNotFound: 404,
	CodeMethodNotAllowed: 405, CodeAccountExists: 409, CodeAssetExists: 409, CodeTransferExists: 409,
	CodeTransferNotPending: 409, CodeHoldExpired: 409, CodeIdempotencyInFlight: 409,
	CodeRequestTooLarge: 413, CodeUnsupportedMediaType: 415, CodeIdempotencyKeyReused: 422,
	CodeAssetUnknown: 422, CodeAccountFrozen: 422, CodeAccountClosed: 422, CodeInsufficientFunds: 422,
	CodeAssetMismatch: 422, CodeSameAccount: 422, CodeAmountOverflow: 422, CodeAmountExceedsHold: 422,
	CodeWebhookURLForbidden: 422, CodeBatchFailed: 422, CodeRateLimited: 429, CodeInternal: 500,
	CodeOverloaded: 503, CodeNotLeader: 503, CodeUnavailable: 503,
}
