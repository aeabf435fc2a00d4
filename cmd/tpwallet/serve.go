package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	tpwallet "github.com/tpwallet/tpwallet"
	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/ha"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/limits"
	"github.com/tpwallet/tpwallet/internal/metrics"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/store"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
	"github.com/tpwallet/tpwallet/internal/tracing"
)

// serveConfig is what `tpwallet serve` reads from flags and TPWALLET_* variables.
type serveConfig struct {
	Addr           string
	DataDir        string
	Store          string
	LogFormat      string
	LogLevel       string
	IdempotencyTTL time.Duration
	ShutdownWait   time.Duration
	// Slow clients: how long a connection may take to send its headers and whole request,
	// to take an answer, and to sit idle between requests.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// Load the server turns away before it costs anything.
	MaxInFlight int
	RateLimit   float64
	RateBurst   int
	// AdminAddr, when set, serves /metrics and pprof there instead of /metrics on Addr.
	AdminAddr string
	// GRPCAddr, when set, serves the gRPC API there (grpc.go).
	GRPCAddr string
	// PostgreSQL only: the leader lease.
	NodeID    string
	Advertise string
	LeaseTTL  time.Duration
	Webhooks  webhookConfig
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", envOr("TPWALLET_ADDR", "127.0.0.1:8080"), "listen address (env TPWALLET_ADDR)")
	fs.StringVar(&c.DataDir, "data", envOr("TPWALLET_DATA", "data"), "Pebble data directory (env TPWALLET_DATA)")
	fs.StringVar(&c.Store, "store", envOr("TPWALLET_STORE", ""), storeFlagHelp)
	fs.StringVar(&c.LogFormat, "log-format", envOr("TPWALLET_LOG_FORMAT", "text"), "log format: json or text (env TPWALLET_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("TPWALLET_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env TPWALLET_LOG_LEVEL)")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-ttl", envDuration("TPWALLET_IDEMPOTENCY_TTL", 7*24*time.Hour),
		"how long Idempotency-Key answers are kept (env TPWALLET_IDEMPOTENCY_TTL)")
	fs.DurationVar(&c.ShutdownWait, "shutdown-timeout", envDuration("TPWALLET_SHUTDOWN_TIMEOUT", 30*time.Second),
		"how long a graceful shutdown waits for requests in flight (env TPWALLET_SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", envDuration("TPWALLET_READ_HEADER_TIMEOUT", 5*time.Second),
		"a connection that has not sent its request headers after this is closed (env TPWALLET_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", envDuration("TPWALLET_READ_TIMEOUT", 30*time.Second),
		"a request not received whole (headers and body) after this is dropped (env TPWALLET_READ_TIMEOUT)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", envDuration("TPWALLET_WRITE_TIMEOUT", 60*time.Second),
		"an answer not written after this (from the end of the request headers) is dropped (env TPWALLET_WRITE_TIMEOUT)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", envDuration("TPWALLET_IDLE_TIMEOUT", 120*time.Second),
		"a keep-alive connection idle this long is closed (env TPWALLET_IDLE_TIMEOUT)")
	fs.StringVar(&c.AdminAddr, "admin-addr", envOr("TPWALLET_ADMIN_ADDR", ""),
		"serve /metrics and /debug/pprof/ on this address only (keep it private); unset: /metrics on --addr, no pprof (env TPWALLET_ADMIN_ADDR)")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", envOr("TPWALLET_GRPC_ADDR", ""),
		"serve the gRPC API (docs/grpc.md) on this address, e.g. 127.0.0.1:9090; unset: no gRPC (env TPWALLET_GRPC_ADDR)")
	fs.IntVar(&c.MaxInFlight, "max-inflight", envInt("TPWALLET_MAX_INFLIGHT", 4096),
		"/v1 requests served at once; more are answered 503 overloaded (0: no bound) (env TPWALLET_MAX_INFLIGHT)")
	fs.Float64Var(&c.RateLimit, "rate-limit", envFloat("TPWALLET_RATE_LIMIT", 0),
		"requests per second each API key may send; more are answered 429 rate_limited (0: no limit) (env TPWALLET_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", envInt("TPWALLET_RATE_BURST", 0),
		"requests an API key may send at once above --rate-limit (default: one second's worth) (env TPWALLET_RATE_BURST)")
	fs.StringVar(&c.NodeID, "node-id", envOr("TPWALLET_NODE_ID", ""),
		"PostgreSQL store: this instance's id in the leader lease, unique per instance (default hostname/listen address) (env TPWALLET_NODE_ID)")
	fs.StringVar(&c.Advertise, "advertise", envOr("TPWALLET_ADVERTISE", ""),
		"PostgreSQL store: the URL clients reach this instance at, which standbys name in not_leader answers (default http://<listen address>) (env TPWALLET_ADVERTISE)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", envDuration("TPWALLET_LEASE_TTL", 5*time.Second),
		"PostgreSQL store: how long the leader lease lasts unrenewed; a standby takes over within about 1.2x this after the leader dies (env TPWALLET_LEASE_TTL)")
	c.Webhooks.flags(fs)
}

// validate refuses limits and timeouts that would silently mean something else.
func (c *serveConfig) validate() error {
	switch {
	case c.MaxInFlight < 0:
		return errors.New("--max-inflight must be 0 (no bound) or more")
	case c.RateLimit < 0 || c.RateBurst < 0:
		return errors.New("--rate-limit and --rate-burst must be 0 (off / default) or more")
	case c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0:
		return errors.New("--read-header-timeout, --read-timeout, --write-timeout and --idle-timeout must be positive")
	}
	return c.Webhooks.validate()
}

func envFloat(name string, def float64) float64 {
	if v := os.Getenv(name); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad log level %q", level)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	}
	return nil, fmt.Errorf("bad log format %q: use json or text", format)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpwallet serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c serveConfig
	c.flags(fs)
	outs := make([]outlet, len(outlets))
	for i, newOutlet := range outlets {
		outs[i] = newOutlet()
		outs[i].flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage of tpwallet serve (flag > environment > default):")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "  TPWALLET_ADMIN_KEY (environment only)\n    \tmade an admin API key at start; without it a fresh data directory gets a generated one, printed once")
		fmt.Fprintln(fs.Output(), "  OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables (environment only)\n    \tOpenTelemetry traces over OTLP; off without an endpoint (docs/operations.md, Traces)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if err := c.validate(); err != nil {
		return err
	}
	log, err := newLogger(stderr, c.LogFormat, c.LogLevel)
	if err != nil {
		return err
	}
	stopTracing, err := startTracing(ctx, log)
	if err != nil {
		return err
	}
	defer stopTracing() // last: after the requests in flight have ended their spans
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	var app *app
	adminKey := os.Getenv("TPWALLET_ADMIN_KEY")
	m := metrics.New()
	if isPostgres(c.Store) {
		app, err = openGroup(ctx, &c, ln.Addr().String(), adminKey, stdout, log, m)
	} else {
		app, err = openApp(ctx, c.Store, c.DataDir, c.IdempotencyTTL, log, m)
		if err == nil {
			err = app.ensureAdminKey(ctx, adminKey, stdout)
		}
	}
	if err != nil {
		if app != nil {
			app.close()
		}
		return err
	}
	defer app.close()
	var metricsOnMain http.Handler
	if c.AdminAddr == "" {
		metricsOnMain = m.Handler()
	} else {
		stopAdmin, err := serveAdmin(c.AdminAddr, m, log)
		if err != nil {
			return err
		}
		defer stopAdmin()
	}
	hooks, err := openWebhooks(ctx, &c.Webhooks, app, log, m)
	if err != nil {
		return err
	}
	defer hooks.Close()
	// One in-flight bound and one bucket per API key for REST and gRPC together.
	lim := limits.New(c.MaxInFlight, c.RateLimit, c.RateBurst)
	api := httpapi.New(app.svc, httpapi.Options{Logger: log, OpenAPI: tpwallet.OpenAPI, Limits: lim,
		Metrics: m, MetricsHandler: metricsOnMain, Hub: app.hub, Followers: app.followers, Webhooks: hooks})
	env := &outletEnv{Followers: app.followers, Hub: app.hub, Source: app.svc.Store(), Meta: app.meta,
		API: api, Service: app.svc, Logger: log, Metrics: m}
	var stops []func() // the outlets', run in reverse before the app closes
	stopOutlets := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		stops = nil
	}
	defer stopOutlets()
	for _, o := range outs {
		stop, err := o.start(ctx, env)
		if err != nil {
			return err
		}
		stops = append(stops, stop)
	}
	app.startFollowers(ctx)
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	_, stopGRPC, err := startGRPC(&c, app, lim, hooks, log)
	if err != nil {
		return err
	}
	defer stopGRPC(context.Background())
	go app.sweep(ctx, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "store", storeName(c.Store, c.DataDir))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownWait)
	defer cancel()
	var grpcStopped sync.WaitGroup
	grpcStopped.Go(func() { stopGRPC(sctx) })
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	grpcStopped.Wait()
	stopOutlets()
	if err := app.close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// startTracing sets up OpenTelemetry from the OTEL_* variables (docs/operations.md, Traces);
// stop flushes the spans not yet exported, waiting at most traceFlushWait for the collector.
func startTracing(ctx context.Context, log *slog.Logger) (stop func(), err error) {
	shutdown, err := tracing.Setup(ctx, log)
	if err != nil {
		return nil, err
	}
	return func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), traceFlushWait)
		defer cancel()
		if err := shutdown(fctx); err != nil {
			log.Warn("traces not all exported at shutdown", "err", err)
		}
	}, nil
}

// traceFlushWait bounds how long a stopping server waits for the trace collector.
const traceFlushWait = 5 * time.Second

// maxHeaderBytes bounds a request's headers; larger ones are answered 431.
const maxHeaderBytes = 64 << 10

// app is an open store with its engine and service. On PostgreSQL the engine comes and
// goes with the leader lease (stop ends the lease loop).
type app struct {
	eng    *engine.Engine // nil on PostgreSQL: the node holds it while leader
	svc    *service.Service
	stop   func() error
	closed bool

	// The journal's followers (events outlets, webhooks) run while this instance leads.
	hub       *events.Hub
	followers *events.Set
	meta      store.Meta
	leading   func() bool // nil: always (Pebble)
}

// newEvents makes the hub and the (stopped) follower set of an app over st.
func (a *app) newEvents(st engine.Store, m *metrics.Metrics) {
	a.hub = events.NewHub()
	a.followers = events.NewSet(a.hub)
	a.meta = st.(store.Meta)
	if m != nil {
		m.Register(a.followers)
	}
}

// startFollowers runs the followers if this instance leads (on PostgreSQL the lease
// node's Changed hook starts and stops them from then on).
func (a *app) startFollowers(ctx context.Context) {
	if a.leading == nil || a.leading() {
		a.followers.Start(context.WithoutCancel(ctx))
	}
}

func openApp(ctx context.Context, storeURL, dir string, ttl time.Duration, log *slog.Logger, m *metrics.Metrics) (*app, error) {
	st, err := openStore(ctx, storeURL, dir, log)
	if err != nil {
		return nil, err
	}
	name := storeName(storeURL, dir)
	a := &app{}
	a.newEvents(st, m)
	eng, err := engine.Open(ctx, st, engine.Options{Logger: log, Observer: events.Observers(observer(m), a.hub)})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	a.hub.Committed(eng.HeadSeq())
	svc, err := service.New(ctx, eng, st, service.Options{IdempotencyTTL: ttl, Logger: log})
	if err != nil {
		eng.Close()
		return nil, err
	}
	registerEngineMetrics(m, svc)
	m.Role(true, 0) // the only writer of its data directory
	if ps, ok := st.(*pebblestore.Store); ok && m != nil {
		m.Register(metrics.FsyncCollector(ps.FsyncLatency))
	}
	a.eng, a.svc = eng, svc
	return a, nil
}

func (a *app) close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	a.followers.Stop() // before the store closes under them
	if a.stop != nil {
		return a.stop()
	}
	return a.eng.Close()
}

// openGroup opens a PostgreSQL store shared by a group of instances: the service starts as
// a standby and a lease node promotes it when this instance holds the leader lease (at
// once when no other instance does).
func openGroup(ctx context.Context, c *serveConfig, listen, adminKey string, stdout io.Writer, log *slog.Logger, m *metrics.Metrics) (*app, error) {
	if k := strings.TrimSpace(adminKey); k != "" && len(k) < 16 {
		return nil, errors.New("TPWALLET_ADMIN_KEY must be at least 16 characters")
	}
	if c.LeaseTTL < 100*time.Millisecond {
		return nil, errors.New("--lease-ttl must be at least 100ms")
	}
	// A transaction a paused instance left open is rolled back within a lease TTL, so
	// that its locks do not hold up the takeover.
	pg, err := pgstore.Open(ctx, c.Store, pgstore.Options{Logger: log, IdleInTransaction: c.LeaseTTL})
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store: %w", err)
	}
	svc, err := service.New(ctx, nil, pg, service.Options{IdempotencyTTL: c.IdempotencyTTL, Logger: log})
	if err != nil {
		pg.Close()
		return nil, err
	}
	a := &app{svc: svc, leading: svc.IsLeader}
	a.newEvents(pg, m)
	registerEngineMetrics(m, svc)
	nodeID, advertise := c.NodeID, c.Advertise
	if nodeID == "" {
		host, _ := os.Hostname()
		nodeID = host + "/" + listen
	}
	if advertise == "" {
		advertise = "http://" + listen
	}
	nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	node := ha.New(ha.Options{
		Lease:   pg,
		Service: svc,
		Open: func(ctx context.Context) (*engine.Engine, error) {
			eng, err := engine.Open(ctx, keepOpen{pg}, engine.Options{Logger: log,
				Observer: events.Observers(observer(m), a.hub)})
			if err == nil {
				a.hub.Committed(eng.HeadSeq())
			}
			return eng, err
		},
		Promoted: func(ctx context.Context) error { return a.ensureAdminKey(ctx, adminKey, stdout) },
		Holder:   nodeID,
		Address:  advertise,
		TTL:      c.LeaseTTL,
		Logger:   log,
		Changed: func(r ha.Role) {
			if r == ha.Leader {
				a.followers.Start(nctx)
			} else {
				a.followers.Stop()
			}
			m.Role(r == ha.Leader, pg.Epoch())
			if r == ha.Standby && nctx.Err() == nil { // not the release at shutdown
				m.LeaseLost()
			}
		},
	})
	done := node.Start(nctx)
	if !svc.IsLeader() {
		log.Info("standby: another instance holds the leader lease", "leader", svc.Leader())
	}
	a.stop = func() error {
		cancel()
		<-done
		return pg.Close()
	}
	return a, nil
}

// observer is m as the engine's Observer (a nil interface when m is nil).
func observer(m *metrics.Metrics) engine.Observer {
	if m == nil {
		return nil
	}
	return m
}

// registerEngineMetrics exports the queue of whichever engine the service writes through
// (none on a standby).
func registerEngineMetrics(m *metrics.Metrics, svc *service.Service) {
	if m == nil {
		return
	}
	m.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tpwallet_engine_queue_depth",
		Help: "Submissions waiting for the engine's writer."}, func() float64 {
		if e := svc.Engine(); e != nil {
			return float64(e.Queued())
		}
		return 0
	}))
	m.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tpwallet_engine_queue_capacity",
		Help: "Bound of the engine's queue; a write beyond it is answered 503 overloaded."},
		func() float64 { return engine.QueueDepthMax }))
}

// serveAdmin serves /metrics and pprof on addr (--admin-addr); stop closes it.
func serveAdmin(addr string, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--admin-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go srv.Serve(ln)
	log.Info("admin listening (metrics, pprof)", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// keepOpen lends the engine a store it must not close: on PostgreSQL the store outlives
// each engine the lease node opens.
type keepOpen struct{ *pgstore.Store }

func (keepOpen) Close() error { return nil }

// ensureAdminKey makes TPWALLET_ADMIN_KEY an admin key, or on a data directory without keys
// generates one and prints it once.
func (a *app) ensureAdminKey(ctx context.Context, secret string, stdout io.Writer) error {
	if secret = strings.TrimSpace(secret); secret != "" {
		_, err := a.svc.EnsureAdminKey(ctx, secret)
		return err
	}
	if a.svc.HasKeys() {
		return nil
	}
	k, err := a.svc.CreateAPIKey(ctx, "admin", []string{string(service.ScopeAdmin)})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "admin API key (shown once, only its hash is stored): %s\n", k.Secret)
	return nil
}

// sweep deletes expired idempotency answers every hour.
func (a *app) sweep(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := a.svc.SweepIdempotency(ctx); err != nil {
				log.Warn("idempotency sweep failed", "err", err)
			} else if n > 0 {
				log.Info("idempotency sweep", "deleted", n)
			}
		}
	}
}
