package natsbus

import (
	"log/slog"
	"time"

	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/store"
)

// DefaultBatch is the most events the follower hands the Publisher at once by default:
// enough to keep thousands of publishes in flight, and to take a large record (a batch
// request of up to 8,190 transfers) in one or two reads.
const DefaultBatch = 8192

// FollowerOptions configure NewFollower. The zero value gives the defaults.
type FollowerOptions struct {
	Batch int // events per delivery (default DefaultBatch)
	// MinBackoff and MaxBackoff bound the wait before a failed delivery is retried
	// (defaults 100 ms and 5 s: the connection comes back by itself, and events should
	// follow within seconds, not the 30 s of a follower's default).
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// NewFollower returns the journal follower named FollowerName that feeds pub: it reads
// src from its cursor in meta, and hub wakes it on commits.
func NewFollower(src events.Source, meta store.Meta, hub *events.Hub, pub *Publisher, o FollowerOptions) *events.Follower {
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	return &events.Follower{Name: FollowerName, Source: src, Meta: meta,
		Hub: hub, Sink: pub, Batch: o.Batch, MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff, Logger: o.Logger}
}
