package main_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/lincheck"
)

var (
	linLong = flag.Bool("lin-long", false,
		"TestLinearizability*: the long version (more groups, clients, operations and kill cycles)")
	linSeed = flag.Uint64("lin-seed", 0,
		"TestLinearizability*: seed of the clients' choices (0: from the clock; timing is never replayed)")
)

// linSize is the shape of one linearizability run.
type linSize struct {
	groups   int // independent sets of accounts and transfers, each a porcupine partition
	clients  int // concurrent clients per group
	accounts int // per group; account 0 may go below zero and funds the others
	ops      int // operations per group, before the final reads
	kills    int // SIGKILLs under load (the kill test adds one more when the load is done)
}

func linSizes(kills bool) linSize {
	s := linSize{groups: 4, clients: 4, accounts: 3, ops: 600}
	if *linLong {
		s = linSize{groups: 8, clients: 6, accounts: 4, ops: 5000}
	}
	if kills {
		s.kills = 4
		if *linLong {
			s.kills = 25
		}
	}
	return s
}

const linFunding = 100 // what each account but account 0 holds as the history starts

// TestLinearizability runs concurrent clients against one tpwallet serve — transfers,
// holds, partial and final posts, voids, reads of accounts and transfers — records every
// operation with its invocation and response times, and checks with porcupine that one
// sequential order of them explains every answer (internal/lincheck's model). The long
// version:
//
//	go test ./cmd/tpwallet -run 'TestLinearizability' -lin-long -timeout 60m -v
func TestLinearizability(t *testing.T) {
	linearizability(t, linSizes(false))
}

// TestLinearizabilityKill is TestLinearizability while the server is SIGKILLed and
// restarted on the same data directory, several times under load and once more when the
// load is done: operations in flight at a kill have unknown outcomes (a create is retried
// with the same id once the server is back), and the final reads come after the last
// restart, so an acknowledged write that a restart lost fails the check.
func TestLinearizabilityKill(t *testing.T) {
	linearizability(t, linSizes(true))
}

// TestLinearizabilityPostgres is TestLinearizabilityKill on the PostgreSQL store: its
// reads are separate statements, each seeing whole commits only.
func TestLinearizabilityPostgres(t *testing.T) {
	linearizability(t, linSizes(true), "--store", freshDatabase(t), "--lease-ttl", "1s")
}

func linearizability(t *testing.T, size linSize, storeArgs ...string) {
	seed := *linSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d; %d groups × %d clients, %d accounts and %d operations per group, %d kills under load",
		seed, size.groups, size.clients, size.accounts, size.ops, size.kills)
	began := time.Now()
	dir := t.TempDir()
	rec := lincheck.NewRecorder()
	srv := &linServer{t: t, dir: dir, args: storeArgs, p: startServe(t, dir, storeArgs...), up: make(chan struct{}), gone: make(chan struct{}),
		died: map[*proc]int64{}, now: rec.Now}
	close(srv.up)
	start := linSetup(t, srv.p, size)

	run := &linRun{t: t, srv: srv, rec: rec, size: size}
	total := size.groups * size.ops
	killAt := map[int64]chan struct{}{}
	var kills []chan struct{}
	for k := 1; k <= size.kills; k++ {
		c := make(chan struct{})
		killAt[int64(k*total/(size.kills+1))] = c
		kills = append(kills, c)
	}
	run.killAt = killAt
	var wg sync.WaitGroup
	loadDone := make(chan struct{})
	defer func() { // also when a kill or restart fails: the clients must stop before t does
		close(srv.gone)
		wg.Wait()
	}()
	for g := range size.groups {
		grp := &linGroup{id: g}
		grp.left.Store(int64(size.ops))
		run.groups = append(run.groups, grp)
		for c := range size.clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run.client(grp, rand.New(rand.NewPCG(seed, uint64(g*size.clients+c))))
			}()
		}
	}
	go func() { wg.Wait(); close(loadDone) }()
	killed := 0
	for _, k := range kills {
		select {
		case <-k:
			srv.restart()
			killed++
		case <-loadDone:
		}
	}
	<-loadDone
	if size.kills > 0 {
		srv.restart() // nothing in flight: whatever was acknowledged must be back
	}
	run.finalReads()
	loadTook := time.Since(began)
	if t.Failed() {
		return
	}

	rep, err := lincheck.Check(start, run.rec.Operations(), 10*time.Minute, "")
	if err != nil {
		t.Error(err)
	}
	t.Logf("%d operations (%d unknown outcomes), %d kills under load, load and reads %v; %s",
		rep.Operations, run.rec.UnknownCount(), killed, loadTook.Round(time.Millisecond), rep)
	t.Logf("answers: %s", run.tally())
	if rep.Result != porcupine.Ok {
		t.Fatalf("the history is not linearizable: %s\n%s", rep, rep.Explanation)
	}
	if killed != size.kills {
		t.Errorf("%d kills under load, want %d", killed, size.kills)
	}
	if size.kills == 0 && run.rec.UnknownCount() != 0 {
		t.Errorf("%d operations without an answer from a server that was never killed", run.rec.UnknownCount())
	}
	run.checkCoverage()
}

// linSetup creates each group's accounts and funds all but account 0 from account 0, and
// returns the accounts as the histories start.
func linSetup(t *testing.T, p *proc, size linSize) []lincheck.Account {
	start := make([]lincheck.Account, size.accounts)
	start[0].AllowNegative = true
	for g := range size.groups {
		for a := range size.accounts {
			p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": linAccount(g, a), "asset": "USD",
				"allow_negative": a == 0}, nil, 201)
			if a > 0 {
				p.mustCall(t, "POST", "/v1/transfers", map[string]any{"id": fmt.Sprintf("g%d-fund-%d", g, a),
					"source": linAccount(g, 0), "destination": linAccount(g, a),
					"amount": strconv.Itoa(linFunding), "kind": "topup"}, nil, 201)
			}
		}
	}
	for a := 1; a < size.accounts; a++ {
		start[0].Balance.DebitsPosted += linFunding
		start[a].Balance.CreditsPosted = linFunding
	}
	return start
}

func linAccount(g, a int) string { return fmt.Sprintf("g%d-a%d", g, a) }

// linServer is the server the clients talk to, across kills and restarts.
type linServer struct {
	t    *testing.T
	dir  string
	args []string     // the store flags of serve
	now  func() int64 // the recorder's clock
	mu   sync.Mutex
	p    *proc
	up   chan struct{}   // closed while p serves; a new, open one from a kill to the restart
	died map[*proc]int64 // when each killed process was reaped: it changed nothing after
	gone chan struct{}   // closed when the test ends: clients waiting for a restart give up
}

// diedAt returns when p was reaped, or -1 if it was not killed.
func (s *linServer) diedAt(p *proc) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.died[p]; ok {
		return at
	}
	return -1
}

// current returns the serving process, waiting while it restarts; nil when the test ends.
func (s *linServer) current() *proc {
	for {
		s.mu.Lock()
		up, p := s.up, s.p
		s.mu.Unlock()
		select {
		case <-up:
			return p
		default:
		}
		select {
		case <-up:
		case <-s.gone:
			return nil
		}
	}
}

// restarting reports whether a kill explains an error talking to p: p has been or is
// being replaced.
func (s *linServer) restarting(p *proc) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.up:
		return s.p != p
	default:
		return true
	}
}

// restart SIGKILLs the server and starts a new one on the same data directory. Clients
// that see an error from then on wait for the new one (current).
func (s *linServer) restart() {
	s.mu.Lock()
	old := s.p
	s.up = make(chan struct{}) // before the kill: a client that sees it sees this first
	s.mu.Unlock()
	old.kill(s.t)
	died := s.now()
	if old.cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		s.t.Errorf("server exited before the kill:\n%s", old.out)
	}
	p := startServe(s.t, s.dir, s.args...)
	s.mu.Lock()
	s.died[old] = died
	s.p = p
	close(s.up)
	s.mu.Unlock()
}

// linGroup is one partition: its accounts, the transfers its clients created or tried to.
type linGroup struct {
	id   int
	left atomic.Int64 // operations still to start
	mu   sync.Mutex
	n    int // transfers named so far: indexes 0 … n−1
}

func (g *linGroup) transferID(i int) string { return fmt.Sprintf("g%d-t%d", g.id, i) }

// choose picks the next operation: about 35% creates (half of them holds), 15% posts, 8%
// voids, 22% account reads and 20% transfer reads. Posts, voids and reads mostly name one
// of the latest transfers, which other clients are likely using too.
func (g *linGroup) choose(rng *rand.Rand, accounts int) lincheck.Input {
	g.mu.Lock()
	defer g.mu.Unlock()
	in := lincheck.Input{Group: g.id}
	pick := func() {
		in.Transfer = rng.IntN(g.n)
		if rng.IntN(4) > 0 {
			in.Transfer = max(0, g.n-1-rng.IntN(8))
		}
		in.ID = g.transferID(in.Transfer)
	}
	r := rng.IntN(100)
	switch {
	case r < 35 || g.n == 0:
		in.Op, in.Transfer, in.ID = lincheck.OpCreate, g.n, g.transferID(g.n)
		g.n++
		in.Source = rng.IntN(accounts)
		in.Dest = (in.Source + 1 + rng.IntN(accounts-1)) % accounts
		in.Amount = 1 + rng.Int64N(40)
		in.Hold = rng.IntN(2) == 0
	case r < 50:
		in.Op = lincheck.OpPost
		pick()
		if rng.IntN(2) == 0 {
			in.Amount = 1 + rng.Int64N(30)
			in.NotFinal = rng.IntN(3) == 0
		}
	case r < 58:
		in.Op = lincheck.OpVoid
		pick()
	case r < 80:
		in.Op, in.Account = lincheck.OpReadAccount, rng.IntN(accounts)
	default:
		in.Op = lincheck.OpReadTransfer
		pick()
	}
	return in
}

// linRun is one run's clients, recorder and counts.
type linRun struct {
	t      *testing.T
	srv    *linServer
	rec    *lincheck.Recorder
	size   linSize
	groups []*linGroup
	killAt map[int64]chan struct{} // read-only once the clients run
	done   atomic.Int64            // operations answered or given up, across groups

	mu     sync.Mutex
	counts map[string]int // "op outcome" → how many
}

// client runs operations of g until the group's budget is spent.
func (r *linRun) client(g *linGroup, rng *rand.Rand) {
	id := r.rec.Client(g.id)
	for g.left.Add(-1) >= 0 {
		if !r.do(g, &id, g.choose(rng, r.size.accounts)) {
			return
		}
		if c, ok := r.killAt[r.done.Add(1)]; ok {
			close(c)
		}
	}
}

// do runs in until it has an answer, or its outcome is unknown and it is not a create (a
// create is sent again with the same id once the server is back: api.md makes that safe).
// A request the server refused to connect to was never sent, so it is left out and sent
// again. An operation in flight at a kill can have taken effect only before the process
// died, so its unknown outcome is bounded by that. It reports false when the client must
// stop.
func (r *linRun) do(g *linGroup, client *int, in lincheck.Input) bool {
	for attempt := 0; attempt < 20; attempt++ {
		p := r.srv.current()
		if p == nil {
			return false
		}
		call := r.rec.Begin(*client, in)
		out, err := r.send(p, in)
		switch {
		case err == nil && out.Outcome != lincheck.Unknown:
			call.End(out)
			r.count(in, out)
			return true
		case err == nil: // a 5xx from a live server: it may still apply the operation
			call.End(out)
			r.count(in, out)
			*client = r.rec.Client(g.id) // the unknown operation stays open to the end
			if in.Op != lincheck.OpCreate {
				return true
			}
			continue
		case !r.srv.restarting(p):
			call.End(lincheck.Output{Outcome: lincheck.Unknown})
			r.t.Errorf("%s: %v, and no kill explains it", lincheck.DescribeInput(in), err)
			return false
		}
		refused := errors.Is(err, syscall.ECONNREFUSED)
		back := r.srv.current() != nil // wait for the restart
		switch {
		case refused:
			call.Drop() // never sent: send it to the next process
		case back:
			call.EndUnknownBy(r.srv.diedAt(p))
			r.count(in, lincheck.Output{Outcome: lincheck.Unknown})
			*client = r.rec.Client(g.id)
		default:
			call.End(lincheck.Output{Outcome: lincheck.Unknown})
		}
		if !back {
			return false
		}
		if !refused && in.Op != lincheck.OpCreate {
			return true
		}
	}
	r.t.Errorf("%s: no answer in 20 attempts", lincheck.DescribeInput(in))
	return false
}

// send sends in to p and decodes the answer. An error means the client learnt nothing.
func (r *linRun) send(p *proc, in lincheck.Input) (lincheck.Output, error) {
	method, path, body := "POST", "/v1/transfers/"+in.ID, map[string]any(nil)
	switch in.Op {
	case lincheck.OpCreate:
		path = "/v1/transfers"
		body = map[string]any{"id": in.ID, "source": linAccount(in.Group, in.Source),
			"destination": linAccount(in.Group, in.Dest), "amount": strconv.FormatInt(in.Amount, 10)}
		if in.Hold {
			body["hold"] = map[string]any{"timeout_seconds": 0} // never expires
		}
	case lincheck.OpPost:
		path += "/post"
		if in.Amount != 0 {
			body = map[string]any{"amount": strconv.FormatInt(in.Amount, 10)}
			if in.NotFinal {
				body["final"] = false
			}
		}
	case lincheck.OpVoid:
		path += "/void"
	case lincheck.OpReadAccount:
		method, path = "GET", "/v1/accounts/"+linAccount(in.Group, in.Account)
	case lincheck.OpReadTransfer:
		method = "GET"
	}
	var raw json.RawMessage
	status, err := p.call(method, path, body, &raw)
	if err != nil {
		return lincheck.Output{}, err
	}
	switch {
	case status >= 500:
		return lincheck.Output{Outcome: lincheck.Unknown}, nil
	case status >= 400:
		var prob struct {
			Code ledger.Code `json:"code"`
		}
		if err := json.Unmarshal(raw, &prob); err != nil || prob.Code == "" {
			r.t.Errorf("%s: status %d, not a problem: %s", lincheck.DescribeInput(in), status, raw)
		}
		return lincheck.Output{Outcome: lincheck.Rejected, Code: prob.Code}, nil
	case in.Op == lincheck.OpReadAccount:
		return lincheck.Output{Outcome: lincheck.OK, Balance: r.balance(in, raw)}, nil
	}
	want := 200
	if in.Op == lincheck.OpCreate {
		want = 201 // a new transfer; 200 is the existing one, sent again
	}
	if status != 200 && status != want {
		r.t.Errorf("%s: status %d: %s", lincheck.DescribeInput(in), status, raw)
	}
	return lincheck.Output{Outcome: lincheck.OK, Created: status == 201, Transfer: r.transfer(in, raw)}, nil
}

func (r *linRun) transfer(in lincheck.Input, raw []byte) lincheck.Transfer {
	var t struct {
		ID           string `json:"id"`
		Status       string `json:"status"`
		Amount       string `json:"amount"`
		AmountPosted string `json:"amount_posted"`
	}
	if err := json.Unmarshal(raw, &t); err != nil || t.ID != in.ID {
		r.t.Errorf("%s: answered %s", lincheck.DescribeInput(in), raw)
	}
	return lincheck.Transfer{Status: lincheck.ParseStatus(t.Status),
		Amount: r.amount(in, t.Amount), AmountPosted: r.amount(in, t.AmountPosted)}
}

func (r *linRun) balance(in lincheck.Input, raw []byte) lincheck.Balance {
	var a struct {
		Balance struct {
			Posted         string `json:"posted"`
			Available      string `json:"available"`
			PendingDebits  string `json:"pending_debits"`
			PendingCredits string `json:"pending_credits"`
		} `json:"balance"`
		DebitsPosted  string `json:"debits_posted"`
		CreditsPosted string `json:"credits_posted"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		r.t.Errorf("%s: answered %s", lincheck.DescribeInput(in), raw)
	}
	b := lincheck.Balance{DebitsPosted: r.amount(in, a.DebitsPosted), CreditsPosted: r.amount(in, a.CreditsPosted),
		DebitsPending: r.amount(in, a.Balance.PendingDebits), CreditsPending: r.amount(in, a.Balance.PendingCredits)}
	// The model compares the four totals; the two derived figures must agree with them.
	posted := b.CreditsPosted - b.DebitsPosted
	if r.amount(in, a.Balance.Posted) != posted || r.amount(in, a.Balance.Available) != posted-b.DebitsPending {
		r.t.Errorf("%s: posted and available disagree with the totals: %s", lincheck.DescribeInput(in), raw)
	}
	return b
}

// amount parses an api.md amount, with a leading "-" for a negative posted balance.
func (r *linRun) amount(in lincheck.Input, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		r.t.Errorf("%s: amount %q: %v", lincheck.DescribeInput(in), s, err)
	}
	return n
}

// finalReads reads every account and every transfer named, one after another, when
// nothing else runs: the state the history ends in, after the last restart.
func (r *linRun) finalReads() {
	for _, g := range r.groups {
		id := r.rec.Client(g.id)
		for a := range r.size.accounts {
			r.do(g, &id, lincheck.Input{Op: lincheck.OpReadAccount, Group: g.id, Account: a})
		}
		for i := range g.n {
			r.do(g, &id, lincheck.Input{Op: lincheck.OpReadTransfer, Group: g.id, Transfer: i, ID: g.transferID(i)})
		}
	}
}

var linOpNames = map[lincheck.Op]string{lincheck.OpCreate: "create", lincheck.OpPost: "post",
	lincheck.OpVoid: "void", lincheck.OpReadAccount: "read-account", lincheck.OpReadTransfer: "read-transfer"}

func (r *linRun) count(in lincheck.Input, out lincheck.Output) {
	k := linOpNames[in.Op] + " "
	switch out.Outcome {
	case lincheck.OK:
		k += "ok"
	case lincheck.Rejected:
		k += string(out.Code)
	default:
		k += "unknown"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	r.counts[k]++
}

func (r *linRun) tally() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(r.counts)
}

// checkCoverage fails a run that did not exercise what the check is for: every operation
// answered, holds refused for funds, posts and voids refused for state.
func (r *linRun) checkCoverage() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range []string{"create ok", "post ok", "void ok", "read-account ok", "read-transfer ok",
		"create insufficient_funds", "post transfer_not_pending", "void transfer_not_pending"} {
		if r.counts[k] == 0 {
			r.t.Errorf("no %q in the history: the run did not exercise it", k)
		}
	}
}
