package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/limits"
	"github.com/tpwallet/tpwallet/internal/metrics"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

// Options configure the HTTP handler.
type Options struct {
	Logger  *slog.Logger
	OpenAPI []byte // served at /openapi.yaml
	// MaxInFlight bounds the /v1 requests being served at once; beyond it requests are
	// answered 503 overloaded at once (0: no bound).
	MaxInFlight int
	// RateLimit is the requests per second each API key may send (0: no limit), with
	// bursts of RateBurst (default: one second's worth); beyond it 429 rate_limited.
	RateLimit float64
	RateBurst int
	// Limits, when set, is used instead of MaxInFlight, RateLimit and RateBurst: serve
	// shares one between REST and gRPC, so that the bounds hold across both.
	Limits *limits.Limits
	// Metrics records every request (nil: none). MetricsHandler, when set, is served at
	// GET /metrics without authentication (serve sets it unless --admin-addr is set).
	Metrics        *metrics.Metrics
	MetricsHandler http.Handler
	// TracerProvider makes the server span of each request and its children (default: the
	// otel global, which tracing.Setup installs). A noop.TracerProvider turns tracing off:
	// no span, no traceparent read, no trace ids in the log.
	TracerProvider trace.TracerProvider
	// Hub tells GET /v1/events of new commits at once (nil: it polls the store).
	Hub *events.Hub
	// Followers are the journal's followers GET /v1/followers reports on (nil: none).
	Followers *events.Set
	// Webhooks serves /v1/webhooks (nil: those routes answer 404 not_found).
	Webhooks *webhook.Manager
}

// Server is the REST API of api.md over a service.
type Server struct {
	svc      *service.Service
	log      *slog.Logger
	routes   *http.ServeMux
	spec     []byte
	limits   *limits.Limits
	metrics  *metrics.Metrics
	tracer   trace.Tracer // nil: tracing off
	hub      *events.Hub
	follow   *events.Set
	webhooks *webhook.Manager
}

type ctxKey int

const (
	principalKey ctxKey = iota
)

// New returns the API handler.
func New(svc *service.Service, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, log: o.Logger, routes: http.NewServeMux(), spec: o.OpenAPI,
		limits: o.limiter(), metrics: o.Metrics, hub: o.Hub,
		follow: o.Followers, webhooks: o.Webhooks}
	tp := o.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if _, off := tp.(noop.TracerProvider); !off {
		s.tracer = tp.Tracer(tracerName)
	}
	for _, rt := range s.table() {
		s.routes.Handle(rt.pattern, s.guard(rt.scope, rt.handler))
	}
	if o.MetricsHandler != nil {
		s.routes.Handle("GET /metrics", o.MetricsHandler)
	}
	return s
}

type route struct {
	pattern string
	scope   service.Scope // "" for unauthenticated routes
	handler http.HandlerFunc
}

// Patterns lists every route the server has, "METHOD /path", for the OpenAPI check.
func (s *Server) Patterns() []string {
	var out []string
	for _, rt := range s.table() {
		out = append(out, rt.pattern)
	}
	return append(out, "GET /metrics") // when Options.MetricsHandler is set
}

func (s *Server) table() []route {
	return []route{
		{"GET /healthz", "", s.healthz},
		{"GET /readyz", "", s.readyz},
		{"GET /openapi.yaml", "", s.openapi},

		{"POST /v1/api-keys", service.ScopeAdmin, s.createAPIKey},
		{"GET /v1/api-keys", service.ScopeAdmin, s.listAPIKeys},
		{"DELETE /v1/api-keys/{id}", service.ScopeAdmin, s.deleteAPIKey},

		{"GET /v1/assets", service.ScopeRead, s.listAssets},
		{"POST /v1/assets", service.ScopeAdmin, s.createAsset},

		{"POST /v1/accounts", service.ScopeWrite, s.createAccount},
		{"GET /v1/accounts", service.ScopeRead, s.listAccounts},
		{"GET /v1/accounts/{id}", service.ScopeRead, s.getAccount},
		{"POST /v1/accounts/{id}/freeze", service.ScopeAdmin, s.freeze},
		{"POST /v1/accounts/{id}/unfreeze", service.ScopeAdmin, s.unfreeze},
		{"GET /v1/accounts/{id}/entries", service.ScopeRead, s.entries},
		{"GET /v1/accounts/{id}/balance", service.ScopeRead, s.balanceAt},

		{"POST /v1/transfers", service.ScopeWrite, s.createTransfer},
		{"POST /v1/transfers/batch", service.ScopeWrite, s.batch},
		{"GET /v1/transfers", service.ScopeRead, s.listTransfers},
		{"GET /v1/transfers/{id}", service.ScopeRead, s.getTransfer},
		{"POST /v1/transfers/{id}/post", service.ScopeWrite, s.post},
		{"POST /v1/transfers/{id}/increase", service.ScopeWrite, s.increase},
		{"POST /v1/transfers/{id}/void", service.ScopeWrite, s.void},

		{"GET /v1/journal", service.ScopeRead, s.journal},
		{"GET /v1/journal/head", service.ScopeRead, s.journalHead},

		{"GET /v1/events", service.ScopeRead, s.listEvents},
		{"GET /v1/followers", service.ScopeAdmin, s.listFollowers},

		{"POST /v1/webhooks", service.ScopeAdmin, s.createWebhook},
		{"GET /v1/webhooks", service.ScopeAdmin, s.listWebhooks},
		{"GET /v1/webhooks/{id}", service.ScopeAdmin, s.getWebhook},
		{"DELETE /v1/webhooks/{id}", service.ScopeAdmin, s.deleteWebhook},
		{"GET /v1/webhooks/{id}/deliveries", service.ScopeAdmin, s.webhookDeliveries},
		{"GET /v1/webhooks/{id}/dead-letters", service.ScopeAdmin, s.webhookDeadLetters},
		{"POST /v1/webhooks/{id}/replay", service.ScopeAdmin, s.replayWebhook},
	}
}

// ServeHTTP sets the request id, starts the request's server span, authenticates every /v1
// request before routing, routes, and turns panics into 500 internal without a stack trace
// in the body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	sw := &statusWriter{ResponseWriter: w}
	log := s.log.With("request_id", id)
	// The route is known before authentication, so that the span is named for it from the
	// start (samplers see the name) even when the request is refused.
	_, pattern := s.routes.Handler(r)
	var span trace.Span
	if s.tracer != nil {
		r, span = s.startSpan(r, pattern)
		if sc := span.SpanContext(); sc.IsValid() {
			log = log.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
		}
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				if span != nil {
					span.End()
				}
				panic(v)
			}
			log.Error("handler panic", "panic", v, "method", r.Method, "path", r.URL.Path)
			if sw.status == 0 {
				writeProblem(sw, problemOf(ledger.CodeInternal, "an internal error occurred; the request id identifies it in the logs"))
			}
		}
		d := time.Since(start)
		s.metrics.HTTP(routeLabel(r.Pattern), methodLabel(r.Method), sw.status, d)
		log.Debug("request", "method", r.Method, "route", r.Pattern, "status", sw.status,
			"duration_ms", float64(d.Microseconds())/1000)
		if span != nil {
			endSpan(span, sw)
		}
	}()
	if r.URL.Path == "/v1" || strings.HasPrefix(r.URL.Path, "/v1/") {
		if !s.limits.Enter() {
			writeProblem(sw, problemOf(ledger.CodeOverloaded, "too many requests in flight; retry shortly"))
			return
		}
		defer s.limits.Leave()
		secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			writeProblem(sw, problemOf(ledger.CodeUnauthenticated, "send Authorization: Bearer <api key>"))
			return
		}
		p, err := s.svc.Authenticate(strings.TrimSpace(secret))
		if err != nil {
			writeProblem(sw, problemFromError(err))
			return
		}
		if !s.limits.Allow(p.KeyID) {
			writeProblem(sw, problemOf(ledger.CodeRateLimited, "this API key sends more requests than it may; retry after Retry-After seconds"))
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey, p))
	}
	if pattern == "" {
		s.notRouted(sw, r)
		return
	}
	// ServeMux.Handler only finds the handler; ServeHTTP also sets r.Pattern and the
	// {id} path values that handlers read with r.PathValue.
	s.routes.ServeHTTP(sw, r)
}

// routeLabel is the path of a mux pattern ("GET /v1/transfers/{id}" → "/v1/transfers/{id}"),
// or "unmatched": never the request's path, which holds ids.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

// methodLabel keeps the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch,
		http.MethodHead, http.MethodOptions:
		return m
	}
	return "other"
}

// notRouted answers 405 when the path exists for another method, else 404.
func (s *Server) notRouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := s.routes.Handler(r2); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, problemOf(ledger.CodeMethodNotAllowed, "this path takes "+strings.Join(allow, ", ")))
		return
	}
	writeProblem(w, problemOf(ledger.CodeNotFound, "no such route"))
}

// guard checks the principal's scope for authenticated routes.
func (s *Server) guard(scope service.Scope, h http.HandlerFunc) http.Handler {
	if scope == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principal(r)
		if p == nil || !p.Can(scope) {
			writeProblem(w, problemOf(ledger.CodeForbidden, "this API key lacks the "+string(scope)+" scope"))
			return
		}
		h(w, r)
	})
}

func principal(r *http.Request) *service.Principal {
	p, _ := r.Context().Value(principalKey).(*service.Principal)
	return p
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type statusWriter struct {
	http.ResponseWriter
	status int
	code   ledger.Code // of the problem written, if one was (for the span)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (Flush, write deadlines), as
// the event stream needs.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeRaw(w, http.StatusOK, []byte(`{"status":"ok"}`), false)
}

// readyz answers 200 on the leader while it takes writes; 503 not_leader (role standby,
// with the leader's address when known) on a standby; 503 unavailable after a failed commit.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.Ready(); err != nil {
		p := problemFromError(err)
		if p.Code == ledger.CodeNotLeader {
			p.Role = "standby"
		} else {
			p = problemOf(ledger.CodeUnavailable, "the ledger stopped taking writes after a failed commit")
			p.Role = "leader"
		}
		writeProblem(w, p)
		return
	}
	writeRaw(w, http.StatusOK, []byte(`{"status":"ready","role":"leader"}`), false)
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(s.spec)
}

// limiter returns o.Limits, or limits of its own from MaxInFlight, RateLimit and RateBurst.
func (o *Options) limiter() *limits.Limits {
	if o.Limits != nil {
		return o.Limits
	}
	return limits.New(o.MaxInFlight, o.RateLimit, o.RateBurst)
}
