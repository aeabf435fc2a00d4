package grpcapi

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/proto"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/limits"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/webhook"
	tpwalletv1 "github.com/tpwallet/tpwallet/proto/tpwallet/v1"
)

// Message size limits, REST's body limits (api.md): 1 MiB for a request, 16 MiB for a
// batch or a message of a transfer stream. gRPC itself refuses a message over 16 MiB
// (ResourceExhausted without an ErrorInfo); the interceptor refuses the others over 1 MiB
// with request_too_large.
const (
	messageMax      = 1 << 20
	batchMessageMax = 16 << 20
)

// Keepalive enforcement: a client may ping at most every keepaliveMinTime (more often,
// and the connection is closed with ENHANCE_YOUR_CALM), also without streams; the server
// pings a connection silent for keepalivePing and drops it if no answer comes within
// keepaliveTimeout, so dead peers do not hold streams and in-flight slots.
const (
	keepaliveMinTime = 10 * time.Second
	keepalivePing    = 30 * time.Second
	keepaliveTimeout = 10 * time.Second
	maxHeaderBytes   = 64 << 10 // as REST's request headers
)

// Metadata keys.
const (
	mdAuthorization  = "authorization"       // Bearer <api key>
	mdIdempotencyKey = "idempotency-key"     // on writes, REST's Idempotency-Key
	mdReplayed       = "idempotent-replayed" // answer header: "true" on a replayed answer
	mdExisting       = "tpwallet-existing"   // answer header: "true" when a transfer already existed
)

// Options configure the gRPC server.
type Options struct {
	Logger *slog.Logger
	// MaxInFlight bounds the RPCs served at once, a stream counting for its whole life;
	// beyond it calls are refused with Unavailable overloaded (0: no bound).
	MaxInFlight int
	// RateLimit is the calls (and transfer stream messages) per second each API key may
	// send (0: no limit), with bursts of RateBurst (default: one second's worth).
	RateLimit float64
	RateBurst int
	// Limits, when set, is used instead of MaxInFlight, RateLimit and RateBurst: serve
	// shares one between REST and gRPC, so that the bounds hold across both.
	Limits *limits.Limits
	// IdleTimeout closes connections without RPCs for this long (0: never).
	IdleTimeout time.Duration
	// Hub tells StreamEvents of new commits at once (nil: it polls the store).
	Hub *events.Hub
	// Followers are the journal's followers ListFollowers reports on (nil: none).
	Followers *events.Set
	// Webhooks serves WebhookService (nil: its RPCs answer not_found).
	Webhooks *webhook.Manager
}

// Server is the gRPC API of proto/tpwallet/v1 over a service.
type Server struct {
	svc      *service.Service
	log      *slog.Logger
	limits   *limits.Limits
	hub      *events.Hub
	follow   *events.Set
	webhooks *webhook.Manager
	grpc     *grpc.Server
	health   *healthService
	methods  map[string]method

	// stopping is cancelled when Stop begins: streams wind down and health turns
	// NOT_SERVING.
	stopping context.Context
	stop     context.CancelFunc
	stopOnce sync.Once

	// queued, when set (by tests), is called after each message of a transfer stream is
	// queued for the batcher.
	queued atomic.Pointer[func()]
}

// method is what the interceptors check for one RPC.
type method struct {
	scope service.Scope
	max   int // bound on the request message (unary) in bytes
}

// New returns the gRPC server: the eight tpwallet services, grpc.health.v1 (SERVING while
// the instance takes writes, as /readyz) and server reflection.
func New(svc *service.Service, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, log: o.Logger, limits: o.limiter(),
		hub: o.Hub, follow: o.Followers, webhooks: o.Webhooks, methods: methodTable()}
	s.stopping, s.stop = context.WithCancel(context.Background())
	s.grpc = grpc.NewServer(
		grpc.ForceServerCodecV2(newCodec()), // the proto codec, sending wire.go's answers as they are
		grpc.ChainUnaryInterceptor(s.unary),
		grpc.ChainStreamInterceptor(s.streams),
		grpc.MaxRecvMsgSize(batchMessageMax),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: o.IdleTimeout,
			Time: keepalivePing, Timeout: keepaliveTimeout}),
	)
	tpwalletv1.RegisterAPIKeyServiceServer(s.grpc, apiKeys{Server: s})
	tpwalletv1.RegisterAssetServiceServer(s.grpc, assets{Server: s})
	tpwalletv1.RegisterAccountServiceServer(s.grpc, accounts{Server: s})
	tpwalletv1.RegisterTransferServiceServer(s.grpc, transfers{Server: s})
	tpwalletv1.RegisterJournalServiceServer(s.grpc, journals{Server: s})
	tpwalletv1.RegisterEventServiceServer(s.grpc, eventStreams{Server: s})
	tpwalletv1.RegisterWebhookServiceServer(s.grpc, webhooks{Server: s})
	tpwalletv1.RegisterFollowerServiceServer(s.grpc, followers{Server: s})
	s.health = newHealth(s)
	reflection.Register(s.grpc)
	return s
}

// Serve accepts connections on ln until Stop; it returns nil after Stop.
func (s *Server) Serve(ln net.Listener) error {
	return s.grpc.Serve(ln)
}

// Stop stops the server gracefully: health turns NOT_SERVING, transfer streams stop
// taking messages and answer what they submitted, event streams end, and unary calls in
// flight finish. When ctx ends first, the rest is cut off.
func (s *Server) Stop(ctx context.Context) {
	s.stopOnce.Do(func() {
		s.stop()
		s.health.update() // NOT_SERVING, and Watch streams end
	})
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
}

// methodTable is every tpwallet RPC with its scope (api.md) and request bound; an RPC
// missing here is refused (TestEveryMethodGuarded).
func methodTable() map[string]method {
	read := method{scope: service.ScopeRead, max: messageMax}
	write := method{scope: service.ScopeWrite, max: messageMax}
	admin := method{scope: service.ScopeAdmin, max: messageMax}
	return map[string]method{
		tpwalletv1.APIKeyService_CreateAPIKey_FullMethodName: admin,
		tpwalletv1.APIKeyService_ListAPIKeys_FullMethodName:  admin,
		tpwalletv1.APIKeyService_DeleteAPIKey_FullMethodName: admin,

		tpwalletv1.AssetService_ListAssets_FullMethodName:  read,
		tpwalletv1.AssetService_CreateAsset_FullMethodName: admin,

		tpwalletv1.AccountService_CreateAccount_FullMethodName:   write,
		tpwalletv1.AccountService_GetAccount_FullMethodName:      read,
		tpwalletv1.AccountService_ListAccounts_FullMethodName:    read,
		tpwalletv1.AccountService_FreezeAccount_FullMethodName:   admin,
		tpwalletv1.AccountService_UnfreezeAccount_FullMethodName: admin,
		tpwalletv1.AccountService_ListEntries_FullMethodName:     read,
		tpwalletv1.AccountService_GetBalance_FullMethodName:      read,

		tpwalletv1.TransferService_CreateTransfer_FullMethodName:      write,
		tpwalletv1.TransferService_GetTransfer_FullMethodName:         read,
		tpwalletv1.TransferService_ListTransfers_FullMethodName:       read,
		tpwalletv1.TransferService_PostTransfer_FullMethodName:        write,
		tpwalletv1.TransferService_IncreaseTransfer_FullMethodName:    write,
		tpwalletv1.TransferService_VoidTransfer_FullMethodName:        write,
		tpwalletv1.TransferService_CreateTransferBatch_FullMethodName: {scope: service.ScopeWrite, max: batchMessageMax},
		tpwalletv1.TransferService_SubmitTransfers_FullMethodName:     {scope: service.ScopeWrite, max: batchMessageMax},

		tpwalletv1.JournalService_ListRecords_FullMethodName: read,
		tpwalletv1.JournalService_GetHead_FullMethodName:     read,

		tpwalletv1.EventService_StreamEvents_FullMethodName: read,

		tpwalletv1.WebhookService_CreateWebhook_FullMethodName:          admin,
		tpwalletv1.WebhookService_ListWebhooks_FullMethodName:           admin,
		tpwalletv1.WebhookService_GetWebhook_FullMethodName:             admin,
		tpwalletv1.WebhookService_DeleteWebhook_FullMethodName:          admin,
		tpwalletv1.WebhookService_ListWebhookDeliveries_FullMethodName:  admin,
		tpwalletv1.WebhookService_ListWebhookDeadLetters_FullMethodName: admin,
		tpwalletv1.WebhookService_ReplayWebhook_FullMethodName:          admin,

		tpwalletv1.FollowerService_ListFollowers_FullMethodName: admin,
	}
}

// public reports whether an RPC needs no API key: health checks (like /readyz) and
// reflection (like /openapi.yaml).
func public(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.v1.ServerReflection/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.v1alpha.ServerReflection/")
}

type ctxKey int

const principalKey ctxKey = 0

// principal is the caller the interceptor authenticated.
func principal(ctx context.Context) *service.Principal {
	p, _ := ctx.Value(principalKey).(*service.Principal)
	return p
}

// admit runs REST's checks before routing, in REST's order: the in-flight bound, the
// API key, its rate, and then the scope of the method. On success the caller must call
// s.limits.leave when the RPC ends.
func (s *Server) admit(ctx context.Context, fullMethod string) (context.Context, method, error) {
	m, ok := s.methods[fullMethod]
	if !ok {
		return nil, m, fail(ledger.CodeNotFound, "no such method")
	}
	if !s.limits.Enter() {
		return nil, m, fail(ledger.CodeOverloaded, "too many calls in flight; retry shortly")
	}
	p, err := s.authenticate(ctx)
	if err == nil && !s.limits.Allow(p.KeyID) {
		err = fail(ledger.CodeRateLimited, "this API key sends more requests than it may; retry after the RetryInfo delay")
	}
	if err == nil && !p.Can(m.scope) {
		err = fail(ledger.CodeForbidden, "this API key lacks the "+string(m.scope)+" scope")
	}
	if err != nil {
		s.limits.Leave()
		return nil, m, err
	}
	return context.WithValue(ctx, principalKey, p), m, nil
}

func (s *Server) authenticate(ctx context.Context) (*service.Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(mdAuthorization)
	var secret string
	var ok bool
	if len(v) == 1 {
		secret, ok = strings.CutPrefix(v[0], "Bearer ")
	}
	if !ok {
		return nil, fail(ledger.CodeUnauthenticated, "send authorization: Bearer <api key> metadata")
	}
	p, err := s.svc.Authenticate(strings.TrimSpace(secret))
	if err != nil {
		return nil, errorOf(err)
	}
	return p, nil
}

// unary guards every unary RPC: admit, then REST's body limit on the request message.
func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if public(info.FullMethod) {
		return h(ctx, req)
	}
	ctx, m, err := s.admit(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	defer s.limits.Leave()
	if msg, ok := req.(proto.Message); ok && proto.Size(msg) > m.max {
		return nil, fail(ledger.CodeRequestTooLarge, "the request exceeds "+strconv.Itoa(m.max)+" bytes")
	}
	return h(ctx, req)
}

// streams guards every stream: admit, holding an in-flight slot until the stream ends.
func (s *Server) streams(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if public(info.FullMethod) {
		return h(srv, ss)
	}
	ctx, _, err := s.admit(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	defer s.limits.Leave()
	return h(srv, &principalStream{ServerStream: ss, ctx: ctx})
}

// principalStream is a stream whose context carries the principal.
type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (p *principalStream) Context() context.Context { return p.ctx }

// The services; each is the Server with its generated service's defaults.
type (
	apiKeys struct {
		*Server
		tpwalletv1.UnimplementedAPIKeyServiceServer
	}
	assets struct {
		*Server
		tpwalletv1.UnimplementedAssetServiceServer
	}
	accounts struct {
		*Server
		tpwalletv1.UnimplementedAccountServiceServer
	}
	transfers struct {
		*Server
		tpwalletv1.UnimplementedTransferServiceServer
	}
	journals struct {
		*Server
		tpwalletv1.UnimplementedJournalServiceServer
	}
	eventStreams struct {
		*Server
		tpwalletv1.UnimplementedEventServiceServer
	}
	webhooks struct {
		*Server
		tpwalletv1.UnimplementedWebhookServiceServer
	}
	followers struct {
		*Server
		tpwalletv1.UnimplementedFollowerServiceServer
	}
)

// limiter returns o.Limits, or limits of its own from MaxInFlight, RateLimit and RateBurst.
func (o *Options) limiter() *limits.Limits {
	if o.Limits != nil {
		return o.Limits
	}
	return limits.New(o.MaxInFlight, o.RateLimit, o.RateBurst)
}
