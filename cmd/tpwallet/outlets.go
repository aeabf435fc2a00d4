package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/metrics"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/store"
)

// An outlet is an optional way for events to leave tpwallet (and commands to enter it),
// switched on by serve flags: each registers itself in outlets from an init function in its
// own file (nats.go, kafka.go).
type outlet interface {
	// flags adds the outlet's flags (and their TPWALLET_* variables) to serve's.
	flags(fs *flag.FlagSet)
	// start begins the outlet's work when its flags switch it on (else it does nothing).
	// The followers it adds to env.Followers run while this instance leads; what else it
	// runs (command consumers) runs on every instance. stop ends what start began.
	start(ctx context.Context, env *outletEnv) (stop func(), err error)
}

// outlets are the constructors of every outlet, filled by init functions.
var outlets []func() outlet

// outletEnv is what an outlet works with.
type outletEnv struct {
	Followers *events.Set
	Hub       *events.Hub
	Source    events.Source // the store's journal
	Meta      store.Meta
	API       *httpapi.Server // SubmitTransfer, for commands in
	Service   *service.Service
	Logger    *slog.Logger
	Metrics   *metrics.Metrics
}
