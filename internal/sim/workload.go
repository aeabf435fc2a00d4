package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// idemScope is the scope of every idempotency answer the workload stores.
const idemScope = "sim"

// The accounts the workload uses: two banks that may go negative, users in USD, a few in
// EUR (transfers between the two get asset_mismatch), and one in an asset it creates.
var (
	banks    = []string{"bank", "bank-eur"}
	usd      = []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}
	eur      = []string{"e1", "e2", "e3"}
	accounts = slices.Concat(banks, usd, eur, []string{"s1", "nobody"}) // nobody is never created
)

// workload makes random submissions. It knows the model, to aim posts, voids and increases
// at pending holds, and remembers every transfer request it made, to retry some.
type workload struct {
	rng  *rand.Rand
	m    *model
	sent []ledger.TransferRequest // every transfer request, for retries
	n    int                      // transfers made: ids are t<n>
}

// next returns the submission of step, and a short description of it.
func (w *workload) next(step int) (*engine.Submission, string) {
	var cmd ledger.Command
	var what string
	switch r := w.rng.IntN(100); {
	case r < 3:
		cmd, what = one(w.createAccount(""))
	case r < 40:
		cmd, what = one(w.transfer(false, false))
	case r < 52:
		cmd, what = one(w.transfer(true, false))
	case r < 62:
		cmd, what = one(w.holdOp(ledger.OpPost))
	case r < 68:
		cmd, what = one(w.holdOp(ledger.OpVoid))
	case r < 73:
		cmd, what = one(w.holdOp(ledger.OpIncrease))
	case r < 77:
		cmd, what = one(w.status())
	case r < 80:
		cmd, what = one(w.retry())
	case r < 81:
		cmd, what = one(ledger.Request{Op: ledger.OpCreateAsset, Asset: ledger.Asset{Code: "SIM", Scale: 3}}, "create_asset SIM")
	default:
		cmd, what = w.batch()
	}
	sub := &engine.Submission{Command: cmd}
	if w.rng.IntN(3) == 0 {
		key := "k" + strconv.Itoa(step)
		sub.Idempotency = &engine.Idempotency{Scope: idemScope, Key: key,
			RequestHash: journal.Hash{byte(step), byte(step >> 8), byte(step >> 16)}, TTL: 1000 * time.Hour,
			Render: render}
		what += " key=" + key
	}
	return sub, what
}

func one(r ledger.Request, what string) (ledger.Command, string) {
	return ledger.Command{Requests: []ledger.Request{r}}, what
}

// render is the answer the workload stores for an idempotency key: what each request got.
func render(results []ledger.Result) (int, []byte, bool) {
	var b strings.Builder
	for i, r := range results {
		fmt.Fprintf(&b, "%d:%s", i, r.Code)
		switch {
		case r.Transfer != nil:
			fmt.Fprintf(&b, " %s %s %s/%s", r.Transfer.ID, r.Transfer.Status, r.Transfer.AmountPosted, r.Transfer.Amount)
		case r.Account != nil:
			fmt.Fprintf(&b, " %s %s", r.Account.ID, r.Account.Status)
		}
		b.WriteByte(';')
	}
	return 200, []byte(b.String()), true
}

// setup creates every account but s1 (its asset comes later) and nobody, in one submission.
func (w *workload) setup() *engine.Submission {
	var c ledger.Command
	for _, id := range accounts {
		if r, _ := w.createAccount(id); id != "s1" && id != "nobody" {
			c.Requests = append(c.Requests, r)
		}
	}
	return &engine.Submission{Command: c}
}

func (w *workload) pick(ids []string) string { return ids[w.rng.IntN(len(ids))] }

// createAccount opens account id, or a random one of the workload's if id is "".
func (w *workload) createAccount(id string) (ledger.Request, string) {
	if id == "" {
		id = w.pick(accounts[:len(accounts)-1])
	}
	a := ledger.AccountRequest{ID: id, Asset: "USD", Owner: "owner-" + id[:1],
		Kind: ledger.AccountKinds[w.rng.IntN(len(ledger.AccountKinds))]}
	switch {
	case id == "bank":
		a.AllowNegative, a.Kind = true, ledger.KindSystem
	case id == "bank-eur":
		a.Asset, a.AllowNegative, a.Kind = "EUR", true, ledger.KindSystem
	case id[0] == 'e':
		a.Asset = "EUR"
	case id == "s1":
		a.Asset = "SIM" // asset_unknown until the workload creates it
	}
	if w.rng.IntN(4) == 0 {
		a.Metadata = w.metadata(3, 40)
	}
	return ledger.Request{Op: ledger.OpCreateAccount, Account: a}, "create_account " + id
}

// transfer makes a new transfer: mostly from a bank to a user, else between users (some
// overdrawn, some across assets, some to accounts that do not exist).
func (w *workload) transfer(hold, big bool) (ledger.Request, string) {
	w.n++
	t := ledger.TransferRequest{ID: "t" + strconv.Itoa(w.n), Hold: hold}
	switch r := w.rng.IntN(10); {
	case r < 4:
		t.Source, t.Destination = "bank", w.pick(usd)
		t.Amount = ledger.AmountFromUint64(1 + w.rng.Uint64N(100_000))
	case r < 5:
		t.Source, t.Destination = "bank-eur", w.pick(eur)
		t.Amount = ledger.AmountFromUint64(1 + w.rng.Uint64N(100_000))
	default:
		t.Source, t.Destination = w.pick(accounts), w.pick(accounts)
		t.Amount = ledger.AmountFromUint64(1 + w.rng.Uint64N(20_000))
	}
	if hold && w.rng.IntN(3) > 0 {
		t.HoldTimeout = uint32(1 + w.rng.IntN(90))
	}
	if w.rng.IntN(5) == 0 {
		t.Kind = ledger.TransferKinds[w.rng.IntN(len(ledger.TransferKinds))]
		t.Reference = "ref-" + t.ID
	}
	if big {
		t.Metadata = w.metadata(4, 500)
	} else if w.rng.IntN(8) == 0 {
		t.Metadata = w.metadata(8, 400)
	}
	w.sent = append(w.sent, t)
	what := "transfer"
	if hold {
		what = fmt.Sprintf("hold(%ds)", t.HoldTimeout)
	}
	return ledger.Request{Op: ledger.OpTransfer, Transfer: t},
		fmt.Sprintf("%s %s %s->%s %s", what, t.ID, t.Source, t.Destination, t.Amount)
}

// holdOp posts (all, or part and maybe not final), voids or increases a pending hold, or
// now and then a transfer that is not pending.
func (w *workload) holdOp(op ledger.Op) (ledger.Request, string) {
	r := ledger.Request{Op: op}
	if p := w.m.pending(); len(p) > 0 && w.rng.IntN(6) > 0 {
		r.TransferID = w.pick(p)
	} else {
		r.TransferID = "t" + strconv.Itoa(1+w.rng.IntN(w.n+1))
	}
	held := uint64(1000)
	if t := w.m.transfers[r.TransferID]; t != nil {
		if h, _ := t.Held().Parts(); h > 0 {
			held = min(h, 1<<40)
		}
	}
	names := map[ledger.Op]string{ledger.OpPost: "post", ledger.OpVoid: "void", ledger.OpIncrease: "increase"}
	what := names[op] + " " + r.TransferID
	switch {
	case op == ledger.OpIncrease:
		r.Amount = ledger.AmountFromUint64(1 + w.rng.Uint64N(5_000))
		what += " +" + r.Amount.String()
	case op == ledger.OpPost && w.rng.IntN(2) == 0:
		r.AmountSet, r.NotFinal = true, w.rng.IntN(2) == 0
		r.Amount = ledger.AmountFromUint64(1 + w.rng.Uint64N(held))
		what += fmt.Sprintf(" %s final=%t", r.Amount, !r.NotFinal)
	}
	return r, what
}

func (w *workload) status() (ledger.Request, string) {
	id := w.pick(usd)
	if w.rng.IntN(2) == 0 {
		return ledger.Request{Op: ledger.OpFreeze, AccountID: id}, "freeze " + id
	}
	return ledger.Request{Op: ledger.OpUnfreeze, AccountID: id}, "unfreeze " + id
}

// retry sends an earlier transfer request again: the same (existing, or created now if the
// first never was) or, changed, a transfer_exists.
func (w *workload) retry() (ledger.Request, string) {
	if len(w.sent) == 0 {
		return w.transfer(false, false)
	}
	t := w.sent[w.rng.IntN(len(w.sent))]
	what := "retry " + t.ID
	if w.rng.IntN(4) == 0 {
		t.Amount = ledger.AmountFromUint64(1 + w.rng.Uint64N(100))
		what += " changed"
	}
	return ledger.Request{Op: ledger.OpTransfer, Transfer: t}, what
}

// batch is a batch of new transfers, atomic or not, some with large metadata: a record of
// more than one WAL block (32 KiB), written in several operations.
func (w *workload) batch() (ledger.Command, string) {
	n := 2 + w.rng.IntN(40)
	c := ledger.Command{Atomic: w.rng.IntN(3) == 0}
	big := w.rng.IntN(3) == 0
	for range n {
		r, _ := w.transfer(w.rng.IntN(4) == 0, big)
		c.Requests = append(c.Requests, r)
	}
	return c, fmt.Sprintf("batch of %d atomic=%t big=%t (t%d-t%d)", n, c.Atomic, big, w.n-n+1, w.n)
}

func (w *workload) metadata(keys, size int) map[string]string {
	m := make(map[string]string)
	for i := range 1 + w.rng.IntN(keys) {
		v := make([]byte, w.rng.IntN(size))
		for j := range v {
			v[j] = 'a' + byte(w.rng.IntN(26))
		}
		m["k"+strconv.Itoa(i)] = string(v)
	}
	return m
}
