package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tpwallet/tpwallet/internal/pgtest"
)

// tortureCluster runs pg_ctlcluster on the cluster tpwtorture (scripts/services.sh makes it).
func tortureCluster(t *testing.T, args ...string) {
	t.Helper()
	ents, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(ents) == 0 {
		t.Fatalf("no PostgreSQL installation in /etc/postgresql: %v", err)
	}
	vers := make([]string, 0, len(ents))
	for _, e := range ents {
		vers = append(vers, e.Name())
	}
	sort.Strings(vers)
	cmd := exec.Command("pg_ctlcluster", append([]string{"--skip-systemctl-redirect", vers[len(vers)-1], "tpwtorture"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctlcluster %v: %v\n%s", args, err, out)
	}
}

// TestDatabaseOutagePostgres stops PostgreSQL itself (immediate shutdown, as a crash) under
// load and starts it again: meanwhile tpwallet stays up and answers writes, reads and
// /readyz with 503; once the database is back it recovers by itself, without a restart,
// and nothing acknowledged is lost or doubled.
func TestDatabaseOutagePostgres(t *testing.T) {
	url := pgtest.NewDatabaseOn(t, pgtest.TortureURL)
	p := startServe(t, t.TempDir(), "--store", url, "--lease-ttl", "2s")
	var down atomic.Bool
	t.Cleanup(func() {
		if down.Load() {
			tortureCluster(t, "start")
		}
	})

	const users = 20
	fundUsers(t, p, users)

	l := &load{g: &group{procs: []*proc{p}}, users: users, all: map[string]*sent{}}
	stopped, stop := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var recovered atomic.Bool
	var afterRecovery atomic.Int64
	l.onAck = func(_ *proc, n int64) {
		if n == 200 {
			once.Do(func() {
				down.Store(true)
				tortureCluster(t, "stop", "-m", "immediate")
				close(stopped)
			})
		}
		if recovered.Load() && afterRecovery.Add(1) == 200 {
			closeOnce(stop)
		}
	}
	wg := l.run(t, 12, p, stop)
	<-stopped

	// The database is down: the process lives and says so with 503s.
	p.waitReady(t, func(status int, _ []byte) bool { return status == 503 })
	body := map[string]any{"id": "during-outage", "source": "u1", "destination": "u2", "amount": "1"}
	l.mu.Lock()
	l.all["during-outage"] = &sent{body: body} // outcome formally unknown: settled below
	l.mu.Unlock()
	var prob problemOut
	if code, err := p.call("POST", "/v1/transfers", body, &prob); err != nil || code != 503 {
		t.Errorf("write while the database is down: status %d (%+v) err %v, want 503", code, prob, err)
	}
	if code, err := p.call("GET", "/v1/accounts/u1", nil, &prob); err != nil || code != 503 || prob.Code != "unavailable" {
		t.Errorf("read while the database is down: status %d (%+v) err %v, want 503 unavailable", code, prob, err)
	}
	p.mustCall(t, "GET", "/healthz", nil, nil, 200)

	tortureCluster(t, "start")
	down.Store(false)
	p.waitReady(t, func(status int, _ []byte) bool { return status == 200 }) // by itself
	recovered.Store(true)
	wg.Wait()

	checkAcked(t, p, l.all, &l.mu)
	l.settle(t, p)
	checkAcked(t, p, l.all, &l.mu)
	checkLedger(t, p, users)
	p.stop(t)
	if !bytes.Contains(p.out.Bytes(), []byte("stepped down")) || !bytes.Contains(p.out.Bytes(), []byte("became the leader")) {
		t.Errorf("the log does not show the step-down and the recovery:\n%s", p.out)
	}
	out, err := exec.Command(binPath, "verify", "--store", url).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("ok")) {
		t.Fatalf("tpwallet verify: %v\n%s", err, out)
	}
}
