package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/tpwallet/tpwallet/internal/grpcapi"
	"github.com/tpwallet/tpwallet/internal/limits"
	"github.com/tpwallet/tpwallet/internal/webhook"
)

// startGRPC serves the gRPC API (docs/grpc.md) on c.GRPCAddr, when set, under lim (REST's
// limits too: one in-flight bound and one rate per key across both), with REST's webhook
// manager hooks (nil: none) and the app's followers, and returns the address it listens
// on. stop stops it gracefully within ctx (streams end, unary calls finish); it may be
// called more than once.
func startGRPC(c *serveConfig, a *app, lim *limits.Limits, hooks *webhook.Manager, log *slog.Logger) (addr string, stop func(ctx context.Context), err error) {
	if c.GRPCAddr == "" {
		return "", func(context.Context) {}, nil
	}
	ln, err := net.Listen("tcp", c.GRPCAddr)
	if err != nil {
		return "", nil, fmt.Errorf("--grpc-addr: %w", err)
	}
	srv := grpcapi.New(a.svc, grpcapi.Options{Logger: log, Limits: lim,
		IdleTimeout: c.IdleTimeout, Hub: a.hub, Followers: a.followers, Webhooks: hooks})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			log.Error("grpc server stopped", "err", err)
		}
	}()
	log.Info("grpc listening", "addr", ln.Addr().String())
	var once sync.Once
	return ln.Addr().String(), func(ctx context.Context) {
		once.Do(func() {
			srv.Stop(ctx)
			<-done
		})
	}, nil
}
