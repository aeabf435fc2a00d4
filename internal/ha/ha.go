// Package ha runs one instance of a group sharing a PostgreSQL store: it holds or waits for
// the leader lease and switches the service between leader (an engine writes) and standby
// (reads only, writes answer not_leader naming the leader).
//
// A Node tries to take the lease every Interval while it is a standby, renews it every
// Interval while it holds it, and steps down — demoting the service, then closing the
// engine — when the lease is taken over, when it could not renew for a whole TTL, or when
// the engine stopped after a failed commit (the database went away, say). A node that
// stepped down is a standby like any other and may take the lease again, loading the state
// afresh: that is how it recovers once the database is back.
//
// Safety does not rest on these timers but on fencing (see pgstore): every commit checks,
// in its transaction, that the lease epoch is still the one its instance acquired.
package ha

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
)

// Lease is the leader lease of a shared store; *pgstore.Store is one.
type Lease interface {
	Acquire(ctx context.Context, holder, address string, ttl time.Duration) (pgstore.Lease, bool, error)
	Renew(ctx context.Context, ttl time.Duration) error
	Release(ctx context.Context) error
	Leader(ctx context.Context) (pgstore.Lease, error)
}

// Options configure a Node.
type Options struct {
	Lease   Lease
	Service *service.Service
	// Open opens an engine on the store once the lease is held (it loads the state).
	// Closing that engine must not close the store.
	Open func(ctx context.Context) (*engine.Engine, error)
	// Promoted runs after the service has become the leader (say, to make the admin key).
	Promoted func(ctx context.Context) error
	// Holder identifies this instance in the lease row; Address is where clients reach it.
	Holder, Address string
	// TTL is how long a lease lasts without renewal (default 5s); Interval how often the
	// node renews or tries to take it (default TTL/5).
	TTL, Interval time.Duration
	Logger        *slog.Logger
	// Changed, when set, is called after each change of role (from Start for the first
	// round, then from the node's goroutine).
	Changed func(Role)
}

// Role is what a node is.
type Role string

// The roles.
const (
	Standby Role = "standby"
	Leader  Role = "leader"
)

// Node is one instance's side of the election.
type Node struct {
	o Options

	role      Role
	eng       *engine.Engine
	renewedAt time.Time // start of the last successful acquire or renewal
	lastErr   string    // the last error logged, to log each change once
}

// New returns a node; Start runs it.
func New(o Options) *Node {
	if o.TTL <= 0 {
		o.TTL = 5 * time.Second
	}
	if o.Interval <= 0 {
		o.Interval = o.TTL / 5
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Node{o: o, role: Standby}
}

// Start makes a first attempt at the lease, so that a lone instance is the leader when
// Start returns, then keeps the node running until ctx ends. done is closed once the node
// has stepped down and released the lease.
func (n *Node) Start(ctx context.Context) (done <-chan struct{}) {
	n.step(ctx)
	d := make(chan struct{})
	go func() {
		defer close(d)
		n.run(ctx)
	}()
	return d
}

func (n *Node) run(ctx context.Context) {
	t := time.NewTicker(n.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			n.stop()
			return
		case <-t.C:
			n.step(ctx)
		}
	}
}

// step is one round: renew or step down as leader; try to take over as standby.
func (n *Node) step(ctx context.Context) {
	if n.role == Leader {
		n.lead(ctx)
		return
	}
	n.follow(ctx)
}

func (n *Node) lead(ctx context.Context) {
	if err := n.eng.Err(); err != nil {
		n.stepDown("", "the engine stopped after a failed commit", err)
		return
	}
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, n.o.Interval)
	err := n.o.Lease.Renew(rctx, n.o.TTL)
	cancel()
	switch {
	case err == nil:
		n.renewedAt = start
		n.clearErr()
	case errors.Is(err, pgstore.ErrLeaseLost):
		addr := ""
		if l, err := n.o.Lease.Leader(ctx); err == nil {
			addr = l.Address
		}
		n.stepDown(addr, "the lease was taken over", nil)
	case ctx.Err() != nil:
	case time.Since(n.renewedAt) >= n.o.TTL:
		n.stepDown("", "the lease could not be renewed before it lapsed", err)
	default:
		n.logErr("leader lease renewal failed; retrying", err)
	}
}

func (n *Node) follow(ctx context.Context) {
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, n.o.Interval)
	l, ok, err := n.o.Lease.Acquire(actx, n.o.Holder, n.o.Address, n.o.TTL)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			n.logErr("cannot reach the leader lease; staying standby", err)
		}
		return
	}
	if !ok {
		n.o.Service.SetLeader(l.Address)
		if err := n.o.Service.ReloadKeys(ctx); err != nil && ctx.Err() == nil {
			n.logErr("standby cannot reload API keys", err)
			return
		}
		n.clearErr()
		return
	}
	// The lease is ours with a new epoch: everything committed before is in the store.
	n.renewedAt = start
	eng, err := n.open(ctx)
	if err != nil {
		n.logErr("took the leader lease but cannot open the engine; releasing it", err)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.o.Interval)
		n.o.Lease.Release(rctx)
		cancel()
		return
	}
	if err := n.o.Service.Promote(ctx, eng); err != nil {
		n.logErr("took the leader lease but cannot promote; releasing it", err)
		eng.Close()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.o.Interval)
		n.o.Lease.Release(rctx)
		cancel()
		return
	}
	n.eng, n.role = eng, Leader
	n.clearErr()
	n.o.Logger.Info("became the leader", "epoch", l.Epoch, "head_seq", eng.HeadSeq())
	n.changed()
	if n.o.Promoted != nil {
		if err := n.o.Promoted(ctx); err != nil {
			n.logErr("after promotion", err)
		}
	}
}

// open opens the engine while renewing the lease, since loading a large store may take
// longer than the lease lasts.
func (n *Node) open(ctx context.Context) (*engine.Engine, error) {
	type opened struct {
		eng *engine.Engine
		err error
	}
	res := make(chan opened, 1)
	go func() {
		e, err := n.o.Open(ctx)
		res <- opened{e, err}
	}()
	t := time.NewTicker(n.o.Interval)
	defer t.Stop()
	for {
		select {
		case r := <-res:
			return r.eng, r.err
		case <-t.C:
			start := time.Now()
			if err := n.o.Lease.Renew(ctx, n.o.TTL); err == nil {
				n.renewedAt = start
			} else if errors.Is(err, pgstore.ErrLeaseLost) {
				// Commits of this engine would be fenced; let it finish and drop it.
				r := <-res
				if r.eng != nil {
					r.eng.Close()
				}
				return nil, err
			}
		}
	}
}

// stepDown demotes the service (new writes answer not_leader) and closes the engine: the
// writes it had queued finish, or are refused by fencing if another instance took over.
func (n *Node) stepDown(leader, why string, err error) {
	eng := n.o.Service.Demote(leader)
	if eng == nil {
		eng = n.eng
	}
	n.eng, n.role = nil, Standby
	args := []any{"reason", why}
	if err != nil {
		args = append(args, "err", err)
	}
	n.o.Logger.Warn("stepped down to standby", args...)
	if eng != nil {
		eng.Close()
	}
	n.changed()
}

func (n *Node) changed() {
	if n.o.Changed != nil {
		n.o.Changed(n.role)
	}
}

// stop steps down at shutdown and releases the lease, so a standby takes over at once.
func (n *Node) stop() {
	if n.role != Leader {
		return
	}
	eng := n.o.Service.Demote("")
	n.eng, n.role = nil, Standby
	if eng != nil {
		if err := eng.Close(); err != nil {
			n.o.Logger.Warn("engine close", "err", err)
		}
	}
	defer n.changed()
	ctx, cancel := context.WithTimeout(context.Background(), n.o.TTL)
	defer cancel()
	if err := n.o.Lease.Release(ctx); err != nil {
		n.o.Logger.Warn("could not release the leader lease; a standby takes over once it lapses", "err", err)
		return
	}
	n.o.Logger.Info("released the leader lease")
}

func (n *Node) logErr(msg string, err error) {
	if s := msg + ": " + err.Error(); s != n.lastErr {
		n.lastErr = s
		n.o.Logger.Warn(msg, "err", err)
	}
}

func (n *Node) clearErr() {
	if n.lastErr != "" {
		n.lastErr = ""
		n.o.Logger.Info("leader lease reachable again")
	}
}
