package ha_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/ha"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/pgtest"
	"github.com/tpwallet/tpwallet/internal/service"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
)

// faulty is the store an instance's engine writes through, with a commit failure and a
// lost connection to the lease on demand.
type faulty struct {
	*pgstore.Store
	failCommit  atomic.Bool // the next commits fail (as with the database gone)
	partitioned atomic.Bool // Renew and Acquire fail
}

var errInjected = errors.New("injected: connection refused")

func (f *faulty) Commit(ctx context.Context, c *journal.Commit) error {
	if f.failCommit.Load() {
		return errInjected
	}
	return f.Store.Commit(ctx, c)
}

func (f *faulty) Close() error { return nil } // the store outlives each engine

func (f *faulty) Renew(ctx context.Context, ttl time.Duration) error {
	if f.partitioned.Load() {
		return errInjected
	}
	return f.Store.Renew(ctx, ttl)
}

func (f *faulty) Acquire(ctx context.Context, holder, addr string, ttl time.Duration) (pgstore.Lease, bool, error) {
	if f.partitioned.Load() {
		return pgstore.Lease{}, false, errInjected
	}
	return f.Store.Acquire(ctx, holder, addr, ttl)
}

// instance is one member of a group: store, service, node, and its role changes.
type instance struct {
	st    *faulty
	svc   *service.Service
	roles chan ha.Role
	stop  context.CancelFunc
	done  <-chan struct{}
}

func start(t *testing.T, dsn, name string, ttl time.Duration) *instance {
	t.Helper()
	ctx := context.Background()
	pg, err := pgstore.Open(ctx, dsn, pgstore.Options{IdleInTransaction: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	f := &faulty{Store: pg}
	svc, err := service.New(ctx, nil, pg, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{st: f, svc: svc, roles: make(chan ha.Role, 16)}
	node := ha.New(ha.Options{
		Lease:   f,
		Service: svc,
		Open: func(ctx context.Context) (*engine.Engine, error) {
			return engine.Open(ctx, f, engine.Options{})
		},
		Holder:   name,
		Address:  "http://" + name,
		TTL:      ttl,
		Interval: 50 * time.Millisecond,
		Changed:  func(r ha.Role) { in.roles <- r },
	})
	nctx, cancel := context.WithCancel(ctx)
	in.stop, in.done = cancel, node.Start(nctx)
	t.Cleanup(func() { cancel(); <-in.done })
	return in
}

// want waits for the instance's next role change and checks it.
func (in *instance) want(t *testing.T, r ha.Role) {
	t.Helper()
	select {
	case got := <-in.roles:
		if got != r {
			t.Fatalf("role changed to %s, want %s", got, r)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no change of role to %s in 30s", r)
	}
}

func createAccount(svc *service.Service, id string) error {
	eng := svc.Engine()
	if eng == nil {
		return errors.New("not the leader")
	}
	_, err := eng.Submit(context.Background(), &engine.Submission{Command: ledger.Command{Requests: []ledger.Request{{
		Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: id, Asset: "USD"}}}}})
	return err
}

// TestRecoversAfterFailedCommit: a failed commit stops the engine; the node steps down,
// takes the lease again and reloads, and writes go on without the failed one.
func TestRecoversAfterFailedCommit(t *testing.T) {
	a := start(t, pgtest.NewDatabase(t), "a", time.Second)
	a.want(t, ha.Leader) // a lone instance leads once Start returns
	if !a.svc.IsLeader() {
		t.Fatal("not the leader after Start")
	}
	if err := createAccount(a.svc, "before"); err != nil {
		t.Fatal(err)
	}
	a.st.failCommit.Store(true)
	if err := createAccount(a.svc, "lost"); !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("write with the commit failing: %v, want ErrStopped", err)
	}
	a.st.failCommit.Store(false)
	a.want(t, ha.Standby)
	a.want(t, ha.Leader)
	if err := a.svc.Ready(); err != nil {
		t.Fatalf("Ready after recovery: %v", err)
	}
	if err := createAccount(a.svc, "after"); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	ctx := context.Background()
	for id, want := range map[string]bool{"before": true, "lost": false, "after": true} {
		_, err := a.svc.Store().Account(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("account %s present: %v, want %v (%v)", id, got, want, err)
		}
	}
}

// TestHandOver: a standby names the leader; the leader's graceful stop releases the lease
// and the standby takes over without waiting for it to lapse; a partitioned leader steps
// down by its own clock once it could not renew for a TTL, and the standby takes over.
func TestHandOver(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	const ttl = time.Hour // a graceful handover never waits for the lease to lapse ...
	a := start(t, dsn, "a", ttl)
	a.want(t, ha.Leader)
	b := start(t, dsn, "b", ttl)
	if b.svc.IsLeader() || b.svc.Leader() != "http://a" {
		t.Fatalf("second instance: leader %v, names %q", b.svc.IsLeader(), b.svc.Leader())
	}
	var nl *service.NotLeaderError
	if err := b.svc.Ready(); !errors.As(err, &nl) || nl.Leader != "http://a" {
		t.Fatalf("standby Ready: %v", err)
	}
	if err := createAccount(a.svc, "x"); err != nil {
		t.Fatal(err)
	}
	a.stop()
	<-a.done
	a.want(t, ha.Standby)
	b.want(t, ha.Leader) // ... only for b's next attempt
	if _, err := b.svc.Store().Account(context.Background(), "x"); err != nil {
		t.Fatalf("new leader lost x: %v", err)
	}

	// ... except this one: c, on a short TTL, is cut off from the database.
	dsn2 := pgtest.NewDatabase(t)
	c := start(t, dsn2, "c", 500*time.Millisecond)
	c.want(t, ha.Leader)
	d := start(t, dsn2, "d", 500*time.Millisecond)
	c.st.partitioned.Store(true)
	c.want(t, ha.Standby) // it could not renew for a TTL
	d.want(t, ha.Leader)  // the lease lapsed
	c.st.partitioned.Store(false)
	if err := createAccount(d.svc, "y"); err != nil {
		t.Fatal(err)
	}
	if c.svc.IsLeader() {
		t.Fatal("partitioned instance still leads")
	}
}
