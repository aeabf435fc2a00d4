package sim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

// Config sets the size of a run.
type Config struct {
	Steps int                              // workload steps (default StepsDefault)
	Logf  func(format string, args ...any) // when set, receives every step, fault and check
}

// StepsDefault is the steps of a run when Config.Steps is 0.
const StepsDefault = 200

// Percentages of the random choices of a run.
const (
	commitFaultPercent   = 8  // a commit gets a fault
	recoveryCrashPercent = 15 // a recovery crashes part way
	closeCrashPercent    = 40 // a clean shutdown crashes part way
)

// startTime is the engine clock at the start of every run: 2026-01-01T00:00:00Z.
const startTime = int64(1_767_225_600e9)

// answerTimeout bounds the wait for one engine answer: past it the engine hangs, a finding.
const answerTimeout = time.Minute

// Stats are the figures of a run, or of several added up.
type Stats struct {
	Runs             int
	Steps            int
	Submissions      int             // to the engine, probes after a fail-stop included
	Acked            int             // answered with results
	Records          uint64          // journal records at the end
	Changes          [changeOps]int  // changes in them, by ledger.ChangeOp
	Faults           [FaultKinds]int // struck, by kind
	Tears            [TearKinds]int  // unsynced file tails in crash images, by what became of them
	Crashes          int             // recoveries from a crash image
	Restarts         int             // clean shutdowns and restarts
	FailStops        int             // engines that refused every write after a failed commit
	DoubtFound       int             // requests in doubt that a recovery found whole
	DoubtGone        int             // requests in doubt that a recovery found nothing of
	Checks           int             // recoveries checked against the model
	TransfersChecked int             // transfers compared with the model, over all checks
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.Runs += o.Runs
	s.Steps += o.Steps
	s.Submissions += o.Submissions
	s.Acked += o.Acked
	s.Records += o.Records
	for i := range s.Changes {
		s.Changes[i] += o.Changes[i]
	}
	for i := range s.Faults {
		s.Faults[i] += o.Faults[i]
	}
	for i := range s.Tears {
		s.Tears[i] += o.Tears[i]
	}
	s.Crashes += o.Crashes
	s.Restarts += o.Restarts
	s.FailStops += o.FailStops
	s.DoubtFound += o.DoubtFound
	s.DoubtGone += o.DoubtGone
	s.Checks += o.Checks
	s.TransfersChecked += o.TransfersChecked
}

func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "runs %d, steps %d, submissions %d (%d acknowledged), journal records %d\n",
		s.Runs, s.Steps, s.Submissions, s.Acked, s.Records)
	b.WriteString("changes:")
	for op := ledger.ChangeCreate; int(op) < changeOps; op++ {
		fmt.Fprintf(&b, " %s %d,", op, s.Changes[op])
	}
	b.WriteString("\nfaults:")
	total := 0
	for f := Fault(1); f < FaultKinds; f++ {
		fmt.Fprintf(&b, " %s %d,", f, s.Faults[f])
		total += s.Faults[f]
	}
	fmt.Fprintf(&b, " total %d\nunsynced tails torn:", total)
	for t := Tear(0); t < TearKinds; t++ {
		fmt.Fprintf(&b, " %s %d,", t, s.Tears[t])
	}
	fmt.Fprintf(&b, "\ncrashes %d, clean restarts %d, fail-stops %d, requests in doubt found whole %d, not at all %d\n",
		s.Crashes, s.Restarts, s.FailStops, s.DoubtFound, s.DoubtGone)
	fmt.Fprintf(&b, "recoveries checked %d, transfers compared %d, acknowledged work lost 0", s.Checks, s.TransfersChecked)
	return b.String()
}

// Result is what a run that passed every check did.
type Result struct {
	Seed   int64
	Stats  Stats
	Head   journal.Head // the journal's head at the end
	Digest [32]byte     // over every step, file operation, fault, outcome and the head
}

// sim is one run. Only its goroutine submits, one request at a time, so that with the
// engine's clock in its hands, Pebble's compactions off and its memtable never full, every
// file operation comes in the same order for the same seed.
type sim struct {
	seed  int64
	cfg   Config
	rng   *rand.Rand // the workload's and the plans' choices: this goroutine only
	j     *injector
	m     *model
	w     *workload
	clock atomic.Int64 // engine time, Unix ns: the engine reads it, ticks advance it

	st    *pebblestore.Store
	e     *engine.Engine
	doubt *inDoubt

	step   int
	stats  Stats
	digest hash.Hash
}

// Run runs the simulation with seed: random workload steps against an engine on a
// simulated disk that faults and crashes, each recovery checked against what the clients
// were told. It returns an error at the first check that fails, naming the step; the same
// seed and Config replay the same run.
func Run(seed int64, cfg Config) (*Result, error) {
	if cfg.Steps <= 0 {
		cfg.Steps = StepsDefault
	}
	s := &sim{seed: seed, cfg: cfg, rng: rand.New(rand.NewPCG(uint64(seed), 0x51)),
		j: &injector{seed: seed}, m: newModel(), digest: sha256.New()}
	s.w = &workload{rng: s.rng, m: s.m}
	s.clock.Store(startTime)
	defer func() {
		if s.e != nil {
			s.closeEngine() // after a failed check: release the store
		}
	}()
	ctx := context.Background()
	if err := s.recover(ctx, vfs.NewCrashableMem()); err != nil {
		return nil, fmt.Errorf("seed %d, opening: %w", seed, err)
	}
	if err := s.submit(ctx, s.w.setup(), "create the accounts", plan{}, nil); err != nil {
		return nil, fmt.Errorf("seed %d, setup: %w", seed, err)
	}
	for s.step = 1; s.step <= cfg.Steps; s.step++ {
		if err := s.doStep(ctx); err != nil {
			return nil, fmt.Errorf("seed %d, step %d: %w", seed, s.step, err)
		}
	}
	s.step = cfg.Steps + 1
	if err := s.restart(ctx, false); err != nil {
		return nil, fmt.Errorf("seed %d, last restart: %w", seed, err)
	}
	if err := s.closeEngine(); err != nil {
		return nil, fmt.Errorf("seed %d, last close: %w", seed, err)
	}
	s.record(fmt.Sprintf("end head %d %s", s.m.head.Seq, s.m.head.Hash))
	s.stats.Runs, s.stats.Steps, s.stats.Records = 1, cfg.Steps, s.m.head.Seq
	s.stats.Changes = s.m.changes
	s.stats.Tears = s.j.tearCounts()
	res := &Result{Seed: seed, Stats: s.stats, Head: s.m.head}
	s.digest.Sum(res.Digest[:0])
	return res, nil
}

func (s *sim) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// record adds line, and the file operations since the last record, to the digest and the log.
func (s *sim) record(line string) {
	for _, op := range s.j.takeTrace() {
		s.digest.Write([]byte("  " + op + "\n"))
		s.logf("    %s", op)
	}
	s.digest.Write([]byte(line + "\n"))
	s.logf("%s", line)
}

func (s *sim) doStep(ctx context.Context) error {
	switch r := s.rng.IntN(100); {
	case r < 2:
		return s.restart(ctx, true)
	case r < 3:
		s.record(fmt.Sprintf("step %d idle crash", s.step))
		s.stats.Faults[IdleCrash]++
		return s.crash(ctx, s.j.crashImage())
	case r < 15:
		d := time.Duration(s.rng.Int64N(int64(40 * time.Second)))
		return s.submit(ctx, &engine.Submission{}, "tick +"+d.String(), s.commitPlan(),
			func() { s.clock.Add(int64(d)) })
	}
	sub, what := s.w.next(s.step)
	return s.submit(ctx, sub, what, s.commitPlan(), nil)
}

// commitPlan picks the fault, if any, for the next commit.
func (s *sim) commitPlan() plan {
	if s.rng.IntN(100) >= commitFaultPercent {
		return plan{}
	}
	faults := [...]Fault{CrashInCommit, CrashAfterCommit, SyncError, WriteError, DiskFull}
	p := plan{fault: faults[s.rng.IntN(len(faults))], window: winCommit, at: -1}
	// A commit writes its record to the WAL (from a few hundred bytes to a few hundred KiB),
	// then syncs it: strike at its first byte, at a random one, or past the end, at the sync.
	if p.fault == CrashInCommit || p.fault == WriteError || p.fault == DiskFull {
		switch r := s.rng.IntN(4); {
		case r == 0:
			p.at = 0
		case r == 1:
			p.at = 1 << 30
		default:
			p.at = s.rng.IntN(64 << 10)
		}
	}
	return p
}

// submit arms p, runs before (a tick moves the clock there: the writer's expiry timer may
// commit from then on), submits sub and handles the outcome: an acknowledgement joins the
// model; a crash fault crashes the process; an error fault must have stopped the engine,
// and then crashes it.
func (s *sim) submit(ctx context.Context, sub *engine.Submission, what string, p plan, before func()) error {
	s.j.arm(p)
	if before != nil {
		before()
	}
	rep, err := s.answer(ctx, sub)
	st := s.j.disarm()
	s.stats.Submissions++
	s.record(fmt.Sprintf("step %d %s plan=%s -> %s", s.step, what, p, outcome(rep, err)))
	if panics := s.j.takePanics(); len(panics) > 0 {
		return fmt.Errorf("the store panicked, no error fault had struck: %s", panics[0])
	}
	switch {
	case st.fired && st.commit == nil:
		return fmt.Errorf("plan %s struck outside a commit", p)
	case st.fired && p.fault.crash():
		// The process died at the crash point: whatever the engine answered, nobody heard.
		s.stats.Faults[p.fault]++
		s.doubt = &inDoubt{step: s.step, fault: p.fault, commit: st.commit, durable: p.fault == CrashAfterCommit}
		return s.crash(ctx, st.image)
	case st.fired:
		s.stats.Faults[p.fault]++
		if err := s.checkFailStop(ctx, p, err); err != nil {
			return err
		}
		s.doubt = &inDoubt{step: s.step, fault: p.fault, commit: st.commit}
		return s.crash(ctx, s.j.crashImage())
	case err != nil:
		return fmt.Errorf("%s: %w (no fault struck)", what, err)
	}
	s.stats.Acked++
	return s.ack(ctx, sub, rep)
}

// answer submits sub and waits for the engine's answer, at most answerTimeout.
func (s *sim) answer(ctx context.Context, sub *engine.Submission) (engine.Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	rep, err := s.e.Submit(ctx, sub)
	if errors.Is(err, context.DeadlineExceeded) {
		return rep, fmt.Errorf("the engine did not answer within %s: %w", answerTimeout, err)
	}
	return rep, err
}

// outcome describes an answer in words that depend only on the seed.
func outcome(rep engine.Reply, err error) string {
	switch {
	case errors.Is(err, engine.ErrStopped):
		return "stopped"
	case err != nil:
		return "error: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seq %d", rep.Seq)
	for _, r := range rep.Results {
		c := string(r.Code)
		if c == "" {
			c = "ok"
		}
		if r.Existing {
			c += "(existing)"
		}
		b.WriteString(" " + c)
	}
	return b.String()
}

// checkFailStop checks, after an error fault struck a commit, that the engine did not
// acknowledge the request (err is its answer), answers ErrStopped, and refuses every later
// write: an empty submission and a transfer, which must then never appear in the store.
func (s *sim) checkFailStop(ctx context.Context, p plan, err error) error {
	if err == nil {
		return fmt.Errorf("FAIL-STOP: the engine acknowledged a request whose commit failed (%s)", p)
	}
	if !errors.Is(err, engine.ErrStopped) {
		return fmt.Errorf("FAIL-STOP: after a failed commit (%s) the engine answered %v, want ErrStopped", p, err)
	}
	if s.e.Err() == nil {
		return fmt.Errorf("FAIL-STOP: after a failed commit (%s) engine.Err is nil", p)
	}
	id := fmt.Sprintf("probe%d", s.step)
	probes := []*engine.Submission{{}, {Command: ledger.Command{Requests: []ledger.Request{{Op: ledger.OpTransfer,
		Transfer: ledger.TransferRequest{ID: id, Source: "bank", Destination: "u1", Amount: ledger.AmountFromUint64(1)}}}}}}
	for _, sub := range probes {
		rep, err := s.answer(ctx, sub)
		s.stats.Submissions++
		s.record(fmt.Sprintf("step %d probe after the failed commit -> %s", s.step, outcome(rep, err)))
		if !errors.Is(err, engine.ErrStopped) {
			return fmt.Errorf("FAIL-STOP: a submission after a failed commit (%s) got %s, want ErrStopped", p, outcome(rep, err))
		}
	}
	s.m.refused = append(s.m.refused, id)
	s.stats.FailStops++
	return nil
}

// ack takes an acknowledged answer into the model: the records up to rep.Seq, read back from
// the store, which must hold the transfers the results name as they name them, and the
// idempotency answer, which must be the one rendered from the results.
func (s *sim) ack(ctx context.Context, sub *engine.Submission, rep engine.Reply) error {
	if rep.Seq < s.m.head.Seq {
		return fmt.Errorf("the reply names record %d, before the acknowledged head %d", rep.Seq, s.m.head.Seq)
	}
	var last *journal.Record
	for s.m.head.Seq < rep.Seq {
		recs, err := s.st.Journal(ctx, s.m.head.Seq, pebblestore.PageLimitMax)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return fmt.Errorf("the reply names record %d, the store ends at %d", rep.Seq, s.m.head.Seq)
		}
		for _, r := range recs {
			if r.Seq > rep.Seq {
				return fmt.Errorf("the store holds record %d past the reply's %d", r.Seq, rep.Seq)
			}
			if err := s.m.add(r); err != nil {
				return err
			}
			last = r
		}
	}
	for i, r := range rep.Results {
		if r.Code != ledger.CodeOK || r.Existing || r.Transfer == nil {
			continue
		}
		if last == nil || !hasTransfer(last, r.Transfer) {
			return fmt.Errorf("result %d: transfer %s as answered is not in record %d", i, r.Transfer.ID, rep.Seq)
		}
	}
	if id := sub.Idempotency; id != nil {
		_, want, _ := id.Render(rep.Results)
		got, err := s.st.Idempotency(ctx, id.Scope, id.Key, s.clock.Load())
		if err != nil {
			return fmt.Errorf("idempotency key %s after the reply: %w", id.Key, err)
		}
		if string(got.Body) != string(want) {
			return fmt.Errorf("idempotency key %s: stored %q, rendered from the reply %q", id.Key, got.Body, want)
		}
		s.m.idem[id.Key] = want
	}
	return nil
}

func hasTransfer(r *journal.Record, t *ledger.Transfer) bool {
	want := string(journal.AppendTransfer(nil, t))
	for i := range r.Changes {
		if c := r.Changes[i].Transfer; c != nil && c.ID == t.ID && string(journal.AppendTransfer(nil, c)) == want {
			return true
		}
	}
	return false
}

// crash ends the live process at a crash image: its engine is closed (what it does now
// reaches the live file system, never the image) and the store recovers from the image.
func (s *sim) crash(ctx context.Context, image *vfs.MemFS) error {
	s.stats.Crashes++
	failing := s.j.isFailing()
	if err := s.closeEngine(); err != nil && !failing {
		return fmt.Errorf("closing the engine of the crashed process: %w", err)
	}
	return s.recover(ctx, image)
}

// restart shuts down cleanly, maybe crashing part way (CrashInClose), and recovers.
func (s *sim) restart(ctx context.Context, fault bool) error {
	p := plan{}
	if fault && s.rng.IntN(100) < closeCrashPercent {
		p = plan{fault: CrashInClose, window: winClose, op: s.rng.IntN(2), at: -1}
	}
	s.j.arm(p)
	s.j.begin(winClose, nil)
	err := s.closeEngine()
	s.j.end()
	st := s.j.disarm()
	s.record(fmt.Sprintf("step %d restart plan=%s -> %v", s.step, p, err))
	if st.fired {
		s.stats.Faults[CrashInClose]++
		s.stats.Crashes++
		return s.recover(ctx, st.image)
	}
	if err != nil {
		return fmt.Errorf("clean close: %w", err)
	}
	s.stats.Restarts++
	// Everything is synced after a clean close: start from what a power loss now leaves.
	return s.recover(ctx, s.j.crashImage())
}

// closeEngine closes the engine and its store, turning a panic into an error.
func (s *sim) closeEngine() (err error) {
	e := s.e
	if e == nil {
		return nil
	}
	s.e, s.st = nil, nil
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("close panicked: %v", p)
		}
	}()
	return e.Close()
}

// recover opens the store on image as a new process would, maybe crashing part way
// (CrashInRecovery, then again from that image), checks it against the model, opens the
// engine on it and lets the first batch expire what fell due.
func (s *sim) recover(ctx context.Context, image *vfs.MemFS) error {
	for {
		s.j.restart(image)
		p := plan{}
		if s.rng.IntN(100) < recoveryCrashPercent {
			p = plan{fault: CrashInRecovery, window: winOpen, op: s.rng.IntN(26), at: -1}
		}
		s.j.arm(p)
		s.j.begin(winOpen, nil)
		r, err := s.open(ctx, image)
		s.j.end()
		st := s.j.disarm()
		s.record(fmt.Sprintf("step %d recover plan=%s -> head %d, %v", s.step, p, r.head.Seq, err))
		if st.fired {
			s.stats.Faults[CrashInRecovery]++
			s.stats.Crashes++
			if r.st != nil {
				r.st.Close() // the live process goes on unheard
			}
			image = st.image
			continue
		}
		if err != nil {
			return fmt.Errorf("RECOVERY: %w", err)
		}
		if err := s.checkRecovery(ctx, &r); err != nil {
			r.st.Close()
			return fmt.Errorf("after recovery: %w", err)
		}
		e, err := engine.Open(ctx, &store{Store: r.st, j: s.j}, engine.Options{Now: s.clock.Load})
		if err != nil {
			r.st.Close()
			return fmt.Errorf("RECOVERY: %w", err)
		}
		s.st, s.e = r.st, e
		// Holds that fell due while the store was down expire in the first batch, which the
		// writer's timer may start at once: absorb it before any fault is armed.
		return s.submit(ctx, &engine.Submission{}, "first batch", plan{}, nil)
	}
}

// open opens and loads the store on fs, turning a panic into an error.
func (s *sim) open(ctx context.Context, fs *vfs.MemFS) (r recovered, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("open panicked: %v", p)
		}
	}()
	r.now = s.clock.Load()
	r.st, err = pebblestore.Open(dataDir, pebblestore.Options{FS: newFS(fs, s.j),
		MemTableSize: memTableSize, DisableAutomaticCompactions: true})
	if err != nil {
		return r, err
	}
	r.state, r.head, err = r.st.Load(ctx)
	return r, err
}

// memTableSize is far above what a run writes, so that no memtable fills up: a flush would
// write files from a background goroutine at times no seed controls.
const memTableSize = 32 << 20

// store is the engine's Store in the simulation: it opens a commit window for the
// injector, strikes CrashAfterCommit, and turns a panic of the store (Pebble's Fatalf when
// a WAL write or sync fails) into an error, so that the engine must stop as a crashed
// process would; a panic no error fault explains is reported as a finding.
type store struct {
	*pebblestore.Store
	j *injector
}

func (s *store) Commit(ctx context.Context, c *journal.Commit) (err error) {
	s.j.begin(winCommit, c)
	defer s.j.end()
	defer func() {
		if p := recover(); p != nil {
			s.j.storePanicked(p)
			err = fmt.Errorf("sim: the store panicked: %v", p)
		}
	}()
	if err = s.Store.Commit(ctx, c); err == nil {
		s.j.afterCommit()
	}
	return err
}
