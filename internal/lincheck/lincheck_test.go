package lincheck_test

import (
	"os"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/lincheck"
)

// start is the group of the hand-made histories: a0 may go below zero, a1 holds 100, a2 0.
var start = []lincheck.Account{
	{AllowNegative: true, Balance: lincheck.Balance{DebitsPosted: 100}},
	{Balance: lincheck.Balance{CreditsPosted: 100}},
	{},
}

const never = 1 << 40 // the return time of an operation whose outcome is unknown

func op(client int, call, ret int64, in lincheck.Input, out lincheck.Output) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

func create(tr, src, dst int, amount int64, hold bool) lincheck.Input {
	return lincheck.Input{Op: lincheck.OpCreate, Transfer: tr, ID: "t" + string(rune('0'+tr)),
		Source: src, Dest: dst, Amount: amount, Hold: hold}
}

func post(tr int, amount int64, notFinal bool) lincheck.Input {
	return lincheck.Input{Op: lincheck.OpPost, Transfer: tr, ID: "t" + string(rune('0'+tr)),
		Amount: amount, NotFinal: notFinal}
}

func void(tr int) lincheck.Input {
	return lincheck.Input{Op: lincheck.OpVoid, Transfer: tr, ID: "t" + string(rune('0'+tr))}
}

func readAccount(a int) lincheck.Input {
	return lincheck.Input{Op: lincheck.OpReadAccount, Account: a}
}

func readTransfer(tr int) lincheck.Input {
	return lincheck.Input{Op: lincheck.OpReadTransfer, Transfer: tr, ID: "t" + string(rune('0'+tr))}
}

func ok(status lincheck.Status, amount, posted int64) lincheck.Output {
	return lincheck.Output{Outcome: lincheck.OK,
		Transfer: lincheck.Transfer{Status: status, Amount: amount, AmountPosted: posted}}
}

func created(status lincheck.Status, amount, posted int64) lincheck.Output {
	o := ok(status, amount, posted)
	o.Created = true
	return o
}

func balance(debits, credits, debitsPending, creditsPending int64) lincheck.Output {
	return lincheck.Output{Outcome: lincheck.OK, Balance: lincheck.Balance{DebitsPosted: debits,
		CreditsPosted: credits, DebitsPending: debitsPending, CreditsPending: creditsPending}}
}

func rejected(c ledger.Code) lincheck.Output {
	return lincheck.Output{Outcome: lincheck.Rejected, Code: c}
}

var unknown = lincheck.Output{Outcome: lincheck.Unknown}

const (
	pending = lincheck.StatusPending
	posted  = lincheck.StatusPosted
	voided  = lincheck.StatusVoided
)

// TestLinearizable checks histories that some order explains, including concurrent reads
// that see either side of a write, partial posts, rejections, and unknown outcomes that
// did or did not take effect.
func TestLinearizable(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
	}{
		{"sequential life of a hold", []porcupine.Operation{
			op(0, 0, 10, create(0, 1, 2, 30, true), created(pending, 30, 0)),
			op(0, 11, 20, readAccount(1), balance(0, 100, 30, 0)),
			op(0, 21, 30, post(0, 20, true), ok(pending, 30, 20)),
			op(0, 31, 40, readTransfer(0), ok(pending, 30, 20)),
			op(0, 41, 50, void(0), ok(voided, 30, 20)),
			op(0, 51, 60, readAccount(1), balance(20, 100, 0, 0)),
			op(0, 61, 70, readAccount(2), balance(0, 20, 0, 0)),
			op(0, 71, 80, post(0, 0, false), rejected(ledger.CodeTransferNotPending)),
			op(0, 81, 90, create(1, 1, 2, 81, false), rejected(ledger.CodeInsufficientFunds)),
			op(0, 91, 100, create(1, 1, 2, 80, false), created(posted, 80, 80)),
			op(0, 101, 110, post(1, 0, false), rejected(ledger.CodeTransferNotPending)),
			op(0, 111, 120, post(2, 0, false), rejected(ledger.CodeTransferNotFound)),
			op(0, 121, 130, create(2, 0, 2, 5, true), created(pending, 5, 0)),
			op(0, 131, 140, post(2, 6, false), rejected(ledger.CodeAmountExceedsHold)),
			op(0, 141, 150, post(2, 0, false), ok(posted, 5, 5)),
			op(0, 151, 160, readAccount(0), balance(105, 0, 0, 0)),
		}},
		{"concurrent reads see either side", []porcupine.Operation{
			op(0, 0, 100, create(0, 1, 2, 30, false), created(posted, 30, 30)),
			op(2, 10, 20, readAccount(2), balance(0, 0, 0, 0)),    // before
			op(1, 30, 40, readAccount(1), balance(30, 100, 0, 0)), // after
			op(1, 50, 60, readTransfer(0), ok(posted, 30, 30)),
		}},
		{"two holds race for the last funds", []porcupine.Operation{
			op(0, 0, 50, create(0, 1, 2, 70, true), rejected(ledger.CodeInsufficientFunds)),
			op(1, 10, 40, create(1, 1, 2, 70, true), created(pending, 70, 0)),
		}},
		{"unknown create applied, retried", []porcupine.Operation{
			op(0, 0, never, create(0, 1, 2, 10, false), unknown),
			op(1, 20, 30, readTransfer(0), ok(posted, 10, 10)),
			op(2, 40, 50, create(0, 1, 2, 10, false), ok(posted, 10, 10)), // the retry: 200
		}},
		{"unknown create never applied, retried", []porcupine.Operation{
			op(0, 0, never, create(0, 1, 2, 10, false), unknown),
			op(1, 20, 30, readTransfer(0), rejected(ledger.CodeTransferNotFound)),
			op(2, 40, 50, create(0, 1, 2, 10, false), created(posted, 10, 10)),
		}},
		{"unknown create cut short by a kill, not applied", []porcupine.Operation{
			op(0, 0, 50, create(0, 1, 2, 10, false), unknown), // the server died at 50
			op(1, 60, 70, readTransfer(0), rejected(ledger.CodeTransferNotFound)),
			op(1, 80, 90, readAccount(1), balance(0, 100, 0, 0)),
		}},
		{"unknown create cut short by a kill, applied", []porcupine.Operation{
			op(0, 0, 50, create(0, 1, 2, 10, false), unknown),
			op(1, 60, 70, readAccount(1), balance(10, 100, 0, 0)),
			op(1, 80, 90, readTransfer(0), ok(posted, 10, 10)),
		}},
		{"unknown void never applied", []porcupine.Operation{
			op(0, 0, 10, create(0, 1, 2, 10, true), created(pending, 10, 0)),
			op(1, 20, never, void(0), unknown),
			op(2, 30, 40, post(0, 0, false), ok(posted, 10, 10)),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := lincheck.Check(start, tc.ops, 0, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Result != porcupine.Ok {
				t.Fatalf("got %s, want Ok", rep)
			}
		})
	}
}

// TestNotLinearizable checks that histories no order explains are rejected, and that the
// rejection comes with a visualization.
func TestNotLinearizable(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
	}{
		{"a read misses an acknowledged transfer", []porcupine.Operation{
			op(0, 0, 10, create(0, 1, 2, 30, false), created(posted, 30, 30)),
			op(1, 20, 30, readAccount(1), balance(0, 100, 0, 0)),
		}},
		{"an acknowledged transfer is missing", []porcupine.Operation{
			op(0, 0, 10, create(0, 1, 2, 30, false), created(posted, 30, 30)),
			op(1, 20, 30, readTransfer(0), rejected(ledger.CodeTransferNotFound)),
		}},
		{"a balance no order explains", []porcupine.Operation{
			op(0, 0, 100, create(0, 1, 2, 30, false), created(posted, 30, 30)),
			op(1, 0, 100, create(1, 1, 2, 20, false), created(posted, 20, 20)),
			op(2, 10, 20, readAccount(2), balance(0, 40, 0, 0)),
		}},
		{"reads go back in time", []porcupine.Operation{
			op(0, 0, 100, create(0, 1, 2, 30, false), created(posted, 30, 30)),
			op(1, 10, 20, readAccount(1), balance(30, 100, 0, 0)),
			op(2, 30, 40, readAccount(2), balance(0, 0, 0, 0)),
		}},
		{"a retry applies again", []porcupine.Operation{
			op(0, 0, 10, create(0, 1, 2, 30, false), created(posted, 30, 30)),
			op(0, 20, 30, create(0, 1, 2, 30, false), created(posted, 30, 30)),
		}},
		{"an overdraft", []porcupine.Operation{
			op(0, 0, 10, create(0, 1, 2, 70, false), created(posted, 70, 70)),
			op(1, 5, 15, create(1, 1, 2, 70, true), created(pending, 70, 0)),
		}},
		{"a post after a void", []porcupine.Operation{
			op(0, 0, 10, create(0, 1, 2, 30, true), created(pending, 30, 0)),
			op(0, 20, 30, void(0), ok(voided, 30, 0)),
			op(1, 40, 50, post(0, 0, false), ok(posted, 30, 30)),
		}},
		{"a transfer seen, then lost", []porcupine.Operation{
			op(0, 0, never, create(0, 1, 2, 30, false), unknown),
			op(1, 10, 20, readTransfer(0), ok(posted, 30, 30)),
			op(1, 30, 40, readTransfer(0), rejected(ledger.CodeTransferNotFound)),
		}},
		{"a transfer applied after the server died", []porcupine.Operation{
			op(0, 0, 50, create(0, 1, 2, 30, false), unknown), // the server died at 50
			op(1, 60, 70, readTransfer(0), rejected(ledger.CodeTransferNotFound)),
			op(1, 80, 90, readTransfer(0), ok(posted, 30, 30)),
		}},
		{"a transfer seen before its balances", []porcupine.Operation{
			op(0, 0, 100, create(0, 1, 2, 30, false), created(posted, 30, 30)),
			op(1, 10, 20, readTransfer(0), ok(posted, 30, 30)),
			op(1, 30, 40, readAccount(1), balance(0, 100, 0, 0)),
		}},
		{"a hold expired", []porcupine.Operation{
			op(0, 0, 10, create(0, 1, 2, 30, true), created(pending, 30, 0)),
			op(1, 20, 30, readTransfer(0), ok(lincheck.StatusExpired, 30, 0)),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			rep, err := lincheck.Check(start, tc.ops, 0, dir)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Result != porcupine.Illegal {
				t.Fatalf("got %s, want Illegal", rep.Result)
			}
			b, err := os.ReadFile(rep.Visualization)
			if err != nil {
				t.Fatalf("visualization: %v", err)
			}
			if !strings.Contains(string(b), "create t0") {
				t.Errorf("the visualization does not describe the operations")
			}
			t.Logf("%s", rep.Explanation)
			if !strings.Contains(rep.Explanation, "(the model: ") {
				t.Errorf("the explanation names no answer of the model:\n%s", rep.Explanation)
			}
		})
	}
}

// TestPartition checks that groups are checked apart: each group is linearizable alone,
// though the same indexes in one group would not be.
func TestPartition(t *testing.T) {
	in0, in1 := create(0, 1, 2, 70, false), create(0, 1, 2, 70, false)
	in1.Group = 1
	ops := []porcupine.Operation{
		op(0, 0, 10, in0, created(posted, 70, 70)),
		op(0, 20, 30, in1, created(posted, 70, 70)),
	}
	rep, err := lincheck.Check(start, ops, 0, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Result != porcupine.Ok || rep.Partitions != 2 {
		t.Fatalf("got %s, want Ok in 2 histories", rep)
	}
}

// TestRecorder checks the recorded times and what is left out: an unknown write returns
// after every other operation, an unknown read and a dropped call are not recorded.
func TestRecorder(t *testing.T) {
	r := lincheck.NewRecorder()
	c0, c1 := r.Client(0), r.Client(0)
	if c0 != 0 || c1 != 1 || r.Client(1) != 0 {
		t.Fatalf("client ids %d, %d: want 0, 1, and 0 in another group", c0, c1)
	}
	cut := r.Begin(c1, create(2, 1, 2, 5, false))
	died := r.Now()
	cut.EndUnknownBy(died)
	lost := r.Begin(c0, create(0, 1, 2, 10, false))
	r.Begin(c1, readAccount(1)).End(unknown)
	r.Begin(c1, create(1, 1, 2, 10, false)).Drop()
	read := r.Begin(c1, readAccount(1))
	read.End(balance(10, 100, 0, 0))
	lost.End(unknown)
	r.Begin(c1, readTransfer(0)).End(ok(posted, 10, 10))

	ops := r.Operations()
	if len(ops) != 4 || r.UnknownCount() != 2 {
		t.Fatalf("got %d operations, %d unknown; want 4, 2 unknown", len(ops), r.UnknownCount())
	}
	last := int64(0)
	for _, o := range ops {
		if o.Return < o.Call {
			t.Errorf("%v returns at %d before its call at %d", o.Input, o.Return, o.Call)
		}
		if o.Output.(lincheck.Output).Outcome != lincheck.Unknown {
			last = max(last, o.Return)
		}
	}
	if c := ops[0]; c.Output.(lincheck.Output).Outcome != lincheck.Unknown || c.Return != died {
		t.Errorf("the create cut short returns at %d, want %d", c.Return, died)
	}
	if u := ops[2]; u.Output.(lincheck.Output).Outcome != lincheck.Unknown || u.Return <= last {
		t.Errorf("the unknown create returns at %d, want after %d", u.Return, last)
	}
	rep, err := lincheck.Check(start, ops, 0, t.TempDir())
	if err != nil || rep.Result != porcupine.Ok {
		t.Fatalf("got %s, %v; want Ok", rep, err)
	}
}

// TestRecorderIncomplete checks that a history with a call never ended is refused.
func TestRecorderIncomplete(t *testing.T) {
	r := lincheck.NewRecorder()
	r.Begin(0, readAccount(0))
	defer func() {
		if recover() == nil {
			t.Fatal("Operations returned a history with an open call")
		}
	}()
	r.Operations()
}

// TestParseStatus checks the api.md words and that anything else matches no model state.
func TestParseStatus(t *testing.T) {
	for s, want := range map[string]lincheck.Status{"pending": pending, "posted": posted,
		"voided": voided, "expired": lincheck.StatusExpired} {
		if got := lincheck.ParseStatus(s); got != want || got.String() != s {
			t.Errorf("ParseStatus(%q) = %v, want %v", s, got, want)
		}
	}
	for _, s := range []string{"", "none", "Posted"} {
		if got := lincheck.ParseStatus(s); got == lincheck.StatusNone || got == pending ||
			got == posted || got == voided || got == lincheck.StatusExpired {
			t.Errorf("ParseStatus(%q) = %v, want a status no transfer has", s, got)
		}
	}
}
