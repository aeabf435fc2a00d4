package lincheck

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Recorder records a history: each operation's input and output, with its invocation and
// response times on one monotonic clock. It is safe for concurrent use.
type Recorder struct {
	start time.Time

	mu      sync.Mutex
	ops     []porcupine.Operation
	clients map[int]int // per group, the next client id
	unknown int
	open    int // calls begun and not yet ended or dropped
}

// NewRecorder returns an empty Recorder whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), clients: map[int]int{}}
}

func (r *Recorder) now() int64 { return int64(time.Since(r.start)) } // monotonic

// Client returns a new client id within group: 0, 1, 2, … A client that got no answer
// must take a new id before its next operation, because the unanswered one stays open to
// the end of the history and a client's operations must not overlap.
func (r *Recorder) Client(group int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.clients[group]
	r.clients[group] = id + 1
	return id
}

// Call is an operation invoked and not yet answered.
type Call struct {
	r      *Recorder
	client int
	in     Input
	at     int64
	done   bool
}

// Begin records the invocation of in by client. Call it just before sending the request.
func (r *Recorder) Begin(client int, in Input) *Call {
	r.mu.Lock()
	r.open++
	r.mu.Unlock()
	return &Call{r: r, client: client, in: in, at: r.now()}
}

// End records the answer, just after it arrived. An Unknown read is left out: a read
// changes nothing, so not knowing its answer tells nothing.
func (c *Call) End(out Output) {
	ret := c.r.now()
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.finish()
	if out.Outcome == Unknown {
		if c.in.Op == OpReadAccount || c.in.Op == OpReadTransfer {
			return
		}
		c.r.unknown++
		ret = -1 // set past the end of the history by Operations
	}
	c.r.ops = append(c.r.ops, porcupine.Operation{ClientId: c.client, Input: c.in, Call: c.at,
		Output: out, Return: ret})
}

// Drop leaves the operation out of the history: use it only when the request certainly
// never reached the server (the connection was refused).
func (c *Call) Drop() {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.finish()
}

func (c *Call) finish() {
	if c.done {
		panic("lincheck: a call ended twice")
	}
	c.done = true
	c.r.open--
}

// Operations returns the history so far. An operation with an Unknown outcome returns
// after every other one: it may take effect at any time after its invocation, or never.
// It panics if a call has begun and not ended, since the history would then be incomplete.
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open != 0 {
		panic(fmt.Sprintf("lincheck: %d calls have not ended", r.open))
	}
	end := int64(0)
	for _, op := range r.ops {
		end = max(end, op.Call, op.Return)
	}
	ops := make([]porcupine.Operation, len(r.ops))
	for i, op := range r.ops {
		if op.Return < 0 {
			op.Return = end + 1
		}
		ops[i] = op
	}
	return ops
}

// UnknownCount is the number of operations recorded with an Unknown outcome.
func (r *Recorder) UnknownCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unknown
}

// Report is the outcome of Check.
type Report struct {
	Result     porcupine.CheckResult // Ok, Illegal, or Unknown when the check timed out
	Operations int
	Partitions int
	Took       time.Duration
	// Visualization is the path of porcupine's HTML visualization of the history, written
	// when Result is not Ok.
	Visualization string
	// Explanation says in text, for each group that is not linearizable, where the longest
	// order porcupine found gets stuck. Empty when Result is Ok.
	Explanation string
}

func (r Report) String() string {
	s := fmt.Sprintf("%s: %d operations in %d histories, checked in %v", r.Result,
		r.Operations, r.Partitions, r.Took.Round(time.Millisecond))
	if r.Visualization != "" {
		s += "; visualization: " + r.Visualization
	}
	return s
}

// Now returns the time on the recorder's clock, for EndUnknownBy.
func (r *Recorder) Now() int64 { return r.now() }

// EndUnknownBy records that the client learnt nothing of the operation, but that it cannot
// take effect after at (on the recorder's clock): the process that received it had died
// by then. It then returns at at, or at its call if at is earlier (it was sent to a dead
// process, so it took no effect), instead of at the end of the history.
func (c *Call) EndUnknownBy(at int64) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.finish()
	if c.in.Op == OpReadAccount || c.in.Op == OpReadTransfer {
		return
	}
	c.r.unknown++
	c.r.ops = append(c.r.ops, porcupine.Operation{ClientId: c.client, Input: c.in, Call: c.at,
		Output: Output{Outcome: Unknown}, Return: max(at, c.at)})
}

// Check checks history against the model of a ledger that starts as start, within timeout
// (0: none). When the history is not shown linearizable it explains why in text and writes
// porcupine's visualization to linearizability.html in dir; with dir "" in a new directory
// under os.TempDir, which outlives the test that failed.
func Check(start []Account, history []porcupine.Operation, timeout time.Duration, dir string) (Report, error) {
	m := Model(start)
	t0 := time.Now()
	res, info := porcupine.CheckOperationsVerbose(m, history, timeout)
	parts := m.Partition(history)
	rep := Report{Result: res, Operations: len(history), Partitions: len(parts), Took: time.Since(t0)}
	if res == porcupine.Ok {
		return rep, nil
	}
	rep.Explanation = explain(start, parts, info.PartialLinearizations())
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "tpwallet-lincheck-"); err != nil {
			return rep, fmt.Errorf("lincheck: visualization: %w", err)
		}
	}
	rep.Visualization = filepath.Join(dir, "linearizability.html")
	if err := porcupine.VisualizePath(m, info, rep.Visualization); err != nil {
		return rep, fmt.Errorf("lincheck: visualization: %w", err)
	}
	return rep, nil
}

// explain describes, for each partition that no order explains, the longest order found
// (its last operations and the state after it) and the operations that could come next,
// with the answer the model would give to each.
func explain(start []Account, parts [][]porcupine.Operation, partials [][][]int) string {
	var b strings.Builder
	for p, ops := range parts {
		var longest []int
		for _, l := range partials[p] {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == len(ops) {
			continue // linearizable
		}
		states := []*state{initial(start)}
		ordered := make([]bool, len(ops))
		for _, id := range longest {
			var next []*state
			for _, st := range states {
				next = append(next, step(start, st, ops[id].Input.(Input), ops[id].Output.(Output))...)
			}
			states = next
			ordered[id] = true
		}
		fmt.Fprintf(&b, "group %d: %d operations, at most %d of them in an order the model accepts.\n",
			ops[0].Input.(Input).Group, len(ops), len(longest))
		b.WriteString("The last operations of that order:\n")
		for _, id := range longest[max(0, len(longest)-8):] {
			b.WriteString(describeOp(ops[id], ""))
		}
		if len(states) > 1 { // unknown outcomes leave several: show the first
			fmt.Fprintf(&b, "The model may be in %d states after them (unknown outcomes); the first:\n", len(states))
		} else {
			b.WriteString("The model's state after them:\n")
		}
		st := states[0]
		b.WriteString(describeState(st))
		rest := []int{}
		for id := range ops {
			if !ordered[id] {
				rest = append(rest, id)
			}
		}
		slices.SortFunc(rest, func(i, j int) int { return cmp.Compare(ops[i].Return, ops[j].Return) })
		first := ops[rest[0]].Return // every operation called by then could be next
		slices.SortFunc(rest, func(i, j int) int { return cmp.Compare(ops[i].Call, ops[j].Call) })
		b.WriteString("None of the operations that could come next gets the answer the model gives:\n")
		n := 0
		for _, id := range rest {
			if ops[id].Call > first || n == 12 {
				break
			}
			want, _ := apply(start, st, ops[id].Input.(Input))
			b.WriteString(describeOp(ops[id], DescribeOutput(ops[id].Input.(Input), want)))
			n++
		}
	}
	return b.String()
}

// describeOp renders one operation with its times in ms since the history began, and the
// model's answer when want is not "".
func describeOp(op porcupine.Operation, want string) string {
	in, out := op.Input.(Input), op.Output.(Output)
	ret := fmt.Sprintf("%.3f", float64(op.Return)/1e6)
	if out.Outcome == Unknown {
		ret = "end"
	}
	s := fmt.Sprintf("  client %d [%.3f ms, %s]: %s → %s", op.ClientId, float64(op.Call)/1e6, ret,
		DescribeInput(in), DescribeOutput(in, out))
	if want != "" {
		s += " (the model: " + want + ")"
	}
	return s + "\n"
}
