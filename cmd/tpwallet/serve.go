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
	"os"
	"strings"
	"time"

	tpwallet "github.com/tpwallet/tpwallet"
	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/service"
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
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage of tpwallet serve (flag > environment > default):")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "  TPWALLET_ADMIN_KEY (environment only)\n    \tmade an admin API key at start; without it a fresh data directory gets a generated one, printed once")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	log, err := newLogger(stderr, c.LogFormat, c.LogLevel)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	app, err := openApp(ctx, c.Store, c.DataDir, c.IdempotencyTTL, log)
	if err != nil {
		return err
	}
	defer app.close()
	if err := app.ensureAdminKey(ctx, os.Getenv("TPWALLET_ADMIN_KEY"), stdout); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           httpapi.New(app.svc, httpapi.Options{Logger: log, OpenAPI: tpwallet.OpenAPI}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
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
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	if err := app.close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// app is an open data directory: store, engine and service.
type app struct {
	eng    *engine.Engine
	svc    *service.Service
	closed bool
}

func openApp(ctx context.Context, storeURL, dir string, ttl time.Duration, log *slog.Logger) (*app, error) {
	st, err := openStore(ctx, storeURL, dir, log)
	if err != nil {
		return nil, err
	}
	name := storeName(storeURL, dir)
	eng, err := engine.Open(ctx, st, engine.Options{Logger: log})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	svc, err := service.New(ctx, eng, st, service.Options{IdempotencyTTL: ttl, Logger: log})
	if err != nil {
		eng.Close()
		return nil, err
	}
	return &app{eng: eng, svc: svc}, nil
}

func (a *app) close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	return a.eng.Close()
}

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
