package journal_test

import (
	"errors"
	"flag"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

var seedFlag = flag.Uint64("seed", 0, "seed for the randomized verifier test (0: random)")

// verifyAll adds recs to a new Verifier and calls Finish.
func verifyAll(recs []*journal.Record) (*journal.Verifier, error) {
	v := journal.NewVerifier()
	for _, r := range recs {
		if err := v.Add(r); err != nil {
			return v, err
		}
	}
	return v, v.Finish()
}

// checkRebuilt compares what v rebuilt with the ledger's state.
func checkRebuilt(t *testing.T, v *journal.Verifier, st *ledger.State) {
	t.Helper()
	if got, want := len(v.Accounts()), st.AccountCount(); got != want {
		t.Fatalf("rebuilt %d accounts, want %d", got, want)
	}
	st.EachAccount(func(a *ledger.Account) {
		if got := v.Accounts()[a.ID]; got == nil || !reflect.DeepEqual(*got, *a) {
			t.Fatalf("account %s: rebuilt %+v, want %+v", a.ID, got, a)
		}
	})
	holds := st.Holds()
	if got, want := len(v.Holds()), len(holds); got != want {
		t.Fatalf("rebuilt %d holds, want %d", got, want)
	}
	for _, h := range holds {
		if got := v.Holds()[h.ID]; got == nil || !reflect.DeepEqual(*got, *h) {
			t.Fatalf("hold %s: rebuilt %+v, want %+v", h.ID, got, h)
		}
	}
	if got, want := v.Assets(), st.Assets(); !slices.Equal(got, want) {
		t.Fatalf("assets: rebuilt %v, want %v", got, want)
	}
}

func TestVerifyValidChain(t *testing.T) {
	c := richChain(t)
	v, err := verifyAll(c.recs)
	if err != nil {
		t.Fatal(err)
	}
	last := c.last()
	if got, want := v.Head(), (journal.Head{Seq: last.Seq, Hash: last.Hash}); got != want {
		t.Errorf("head: got %+v, want %+v", got, want)
	}
	checkRebuilt(t, v, c.st)

	s := v.Summary()
	changes, created := 0, 0
	for _, r := range c.recs {
		changes += len(r.Changes)
		for _, ch := range r.Changes {
			if ch.Op == ledger.ChangeCreate {
				created++
			}
		}
	}
	if s.Records != uint64(len(c.recs)) || s.Changes != uint64(changes) ||
		s.TransfersCreated != uint64(created) || s.Accounts != c.st.AccountCount() ||
		s.Holds != len(c.st.Holds()) || s.Head != v.Head() {
		t.Errorf("summary %+v: want %d records, %d changes, %d transfers", s, len(c.recs), changes, created)
	}
	totals := map[string]journal.AssetTotal{}
	for _, a := range s.Assets {
		totals[a.Code] = a
	}
	if got := totals["XAU"]; got.Accounts != 2 || got.CreditsPosted.Int64() != 12_345 ||
		got.DebitsPosted.Int64() != 12_345 || got.Scale != 3 {
		t.Errorf("XAU totals: %+v", got)
	}
	// ETH: "max" posted 2^128−1 and "whale-back" 1, so the volume is 2^128; "deep" holds 1.
	eth := totals["ETH"]
	want := new(big.Int).Lsh(big.NewInt(1), 128)
	if eth.CreditsPosted.Cmp(want) != 0 || eth.DebitsPosted.Cmp(want) != 0 ||
		eth.DebitsPending.Int64() != 1 || eth.CreditsPending.Int64() != 1 {
		t.Errorf("ETH totals: %+v, want posted %s and pending 1", eth, want)
	}
	if got := totals["JPY"]; got.Accounts != 0 || got.CreditsPosted.Sign() != 0 {
		t.Errorf("JPY totals: %+v", got)
	}
}

// TestVerifyRandomChains replays random histories the ledger made, comparing the rebuilt
// state with the ledger's after every record: the verifier must accept all of them.
func TestVerifyRandomChains(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (replay with -seed)", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	for run := range 20 {
		c := newChain(t)
		v := journal.NewVerifier()
		ids := []string{}
		accts := []string{"t-usd", "t-eur"}
		c.apply(1e6, one(openAccount("t-usd", "USD", true, nil)), one(openAccount("t-eur", "EUR", true, nil)))
		for step := range 150 {
			cmds := randomCommands(r, &accts, &ids)
			dt := int64(1 + r.IntN(1e6))
			if r.IntN(10) == 0 {
				dt = int64(r.IntN(5)) * 1e9 // lets holds with short timeouts expire
			}
			c.applyAny(dt, cmds...)
			for _, rec := range c.recs[v.Head().Seq:] {
				if err := v.Add(rec); err != nil {
					t.Fatalf("run %d step %d: %v", run, step, err)
				}
			}
			checkRebuilt(t, v, c.st)
		}
		if err := v.Finish(); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
}

// randomCommands makes one batch of random requests, most of them valid.
func randomCommands(r *rand.Rand, accts, ids *[]string) []ledger.Command {
	var cmds []ledger.Command
	anyAcct := func() string { return (*accts)[r.IntN(len(*accts))] }
	anyID := func() string {
		if len(*ids) == 0 || r.IntN(20) == 0 {
			return "nope"
		}
		return (*ids)[r.IntN(len(*ids))]
	}
	for n := 1 + r.IntN(6); len(cmds) < n; {
		var req ledger.Request
		switch k := r.IntN(20); {
		case k < 2:
			id := "acct-" + strconv.Itoa(len(*accts))
			asset := []string{"USD", "EUR"}[r.IntN(2)]
			req = openAccount(id, asset, r.IntN(4) == 0, map[string]string{"n": id})
			*accts = append(*accts, id)
		case k < 9:
			id := "tr-" + strconv.Itoa(len(*ids))
			*ids = append(*ids, id)
			src, dst := anyAcct(), anyAcct()
			if r.IntN(3) == 0 {
				src = []string{"t-usd", "t-eur"}[r.IntN(2)]
			}
			a := amt(uint64(1 + r.IntN(1000)))
			if r.IntN(2) == 0 {
				req = hold(id, src, dst, a, uint32(r.IntN(4)))
			} else {
				req = pay(id, src, dst, a)
			}
		case k < 12:
			req = post(anyID(), amt(uint64(r.IntN(300))), r.IntN(2) == 0)
		case k < 14:
			req = increase(anyID(), amt(uint64(1+r.IntN(100))))
		case k < 16:
			req = void(anyID())
		case k < 18:
			req = freeze(anyAcct())
		default:
			req = unfreeze(anyAcct())
		}
		cmds = append(cmds, ledger.Command{Requests: []ledger.Request{req}, Atomic: r.IntN(2) == 0})
	}
	return cmds
}

// tamper describes one corruption of the rich chain and where the verifier must find it.
type tamper struct {
	name string
	// edit changes recs and returns the seq where the corruption must be reported and a
	// word the error's What must contain.
	edit func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string)
}

// find returns the index of the first record with a change for which f is true.
func find(t *testing.T, recs []*journal.Record, f func(*ledger.Change) bool) (int, *ledger.Change) {
	t.Helper()
	for i, r := range recs {
		for j := range r.Changes {
			if f(&r.Changes[j]) {
				return i, &r.Changes[j]
			}
		}
	}
	t.Fatal("no such change")
	return 0, nil
}

func transferOp(op ledger.ChangeOp, id string) func(*ledger.Change) bool {
	return func(c *ledger.Change) bool { return c.Op == op && c.Transfer.ID == id }
}

// reseal recomputes the hashes and links from record i on, as a forger with write access
// to the store would; only the replay can then find the change.
func reseal(recs []*journal.Record, i int) {
	for ; i < len(recs); i++ {
		recs[i].Seq = uint64(i + 1)
		if i > 0 {
			recs[i].PrevHash = recs[i-1].Hash
		} else {
			recs[i].PrevHash = journal.Hash{}
		}
		journal.Seal(recs[i])
	}
}

func seqOf(i int) uint64 { return uint64(i + 1) }

var tampers = []tamper{
	{"changed amount", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeCreate, "tricky"))
		c.Amount = amt(2_499)
		return recs, seqOf(i), "hash"
	}},
	{"changed amount, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeCreate, "tricky"))
		c.Amount, c.Transfer.Amount, c.Transfer.AmountPosted = amt(2_499), amt(2_499), amt(2_499)
		reseal(recs, i)
		return recs, seqOf(i), "source_after"
	}},
	{"changed transfer amount only, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeCreate, "fund-alice"))
		c.Transfer.Amount = amt(1)
		reseal(recs, i)
		return recs, seqOf(i), "transfer amount"
	}},
	{"changed metadata", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeCreate, "tricky"))
		c.Transfer.Metadata["quote"] = "she said \"bye\""
		return recs, seqOf(i), "hash"
	}},
	{"changed metadata of a hold, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeIncrease, "h1"))
		c.Transfer.Metadata = map[string]string{"added": "later"}
		reseal(recs, i)
		return recs, seqOf(i), "transfer metadata"
	}},
	{"changed account metadata, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, func(c *ledger.Change) bool { return c.Op == ledger.ChangeAccountFreeze })
		c.Account.Metadata = map[string]string{}
		reseal(recs, i)
		return recs, seqOf(i), "account metadata"
	}},
	{"changed account balance, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, func(c *ledger.Change) bool { return c.Op == ledger.ChangeAccountUnfreeze })
		c.Account.CreditsPosted = amt(1_000_000)
		reseal(recs, i)
		return recs, seqOf(i), "account credits_posted"
	}},
	{"broken link", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		recs[5].PrevHash[7] ^= 1
		journal.Seal(recs[5])
		return recs, seqOf(5), "prev_hash"
	}},
	{"genesis prev_hash not zero", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		recs[0].PrevHash[31] = 1
		journal.Seal(recs[0])
		return recs, 1, "prev_hash"
	}},
	{"changed hash", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		recs[6].Hash[0] ^= 0x80
		return recs, seqOf(6), "hash"
	}},
	{"skipped seq", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		return slices.Delete(recs, 4, 5), seqOf(4), "seq"
	}},
	{"dropped record, renumbered and resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, _ := find(t, recs, transferOp(ledger.ChangeCreate, "h1"))
		recs = slices.Delete(recs, i, i+1)
		reseal(recs, i)
		return recs, seqOf(i), "not pending"
	}},
	{"duplicated record", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		return slices.Insert(recs, 3, recs[2]), seqOf(3), "seq"
	}},
	{"reordered records", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		recs[3], recs[4] = recs[4], recs[3]
		return recs, seqOf(3), "seq"
	}},
	{"reordered records, renumbered and resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, _ := find(t, recs, transferOp(ledger.ChangeCreate, "fund-alice"))
		recs[i], recs[i+1] = recs[i+1], recs[i] // "tricky" spends what "fund-alice" credited
		reseal(recs, i)
		return recs, seqOf(i), "insufficient funds"
	}},
	{"reordered independent records, renumbered and resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, _ := find(t, recs, transferOp(ledger.ChangeCreate, "gold")) // after a batch of USD transfers
		recs[i-1], recs[i] = recs[i], recs[i-1]
		reseal(recs, i-1)
		return recs, seqOf(i), "timestamp"
	}},
	{"wrong source_after", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangePost, "h1"))
		c.SourceAfter.Mag = amt(1) // not hashed: only the replay sees it
		return recs, seqOf(i), "source_after"
	}},
	{"wrong destination_after", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeCreate, "max"))
		c.DestinationAfter = ledger.Balance{Neg: true, Mag: ledger.AmountMax}
		return recs, seqOf(i), "destination_after"
	}},
	{"post more than held, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, func(c *ledger.Change) bool {
			return c.Op == ledger.ChangePost && c.Transfer.Status == ledger.TransferPosted
		})
		c.Amount = amt(901) // 1000 + 200 − 300 = 900 held
		reseal(recs, i)
		return recs, seqOf(i), "post amount"
	}},
	{"void releases the wrong amount, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeVoid, "h2"))
		c.Amount = amt(699)
		reseal(recs, i)
		return recs, seqOf(i), "amount released"
	}},
	{"expire turned into void, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeExpire, "h3"))
		c.Op, c.Transfer.Status = ledger.ChangeVoid, ledger.TransferVoided
		reseal(recs, i)
		return recs, seqOf(i), "hold expired"
	}},
	{"posted create turned into a hold, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeCreate, "gold"))
		c.Transfer.Status = ledger.TransferPending
		reseal(recs, i)
		return recs, seqOf(i), "transfer status"
	}},
	{"transfer created twice in a record, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, _ := find(t, recs, func(c *ledger.Change) bool {
			return c.Op == ledger.ChangeCreate && c.Transfer.Source == "alice" && c.Transfer.Amount == amt(5)
		})
		ch := recs[i].Changes
		ch[1].Transfer.ID = ch[0].Transfer.ID
		reseal(recs, i)
		return recs, seqOf(i), "created twice"
	}},
	{"change time not increasing, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, _ := find(t, recs, func(c *ledger.Change) bool { return c.Op == ledger.ChangeCreate && c.Transfer.Amount == amt(5) })
		recs[i].Changes[1].Time = recs[i].Changes[0].Time
		reseal(recs, i)
		return recs, seqOf(i), "time"
	}},
	{"asset created twice, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		c := recs[0].Changes[0]
		c.Time++
		recs[0].Changes = append(recs[0].Changes, c)
		reseal(recs, 0)
		return recs, 1, "asset created twice"
	}},
	{"account created twice, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, func(c *ledger.Change) bool { return c.Op == ledger.ChangeAccountCreate && c.Account.ID == "alice" })
		c.Account.ID = "treasury"
		reseal(recs, i)
		return recs, seqOf(i), "account created twice"
	}},
	{"account of an unknown asset, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, func(c *ledger.Change) bool { return c.Op == ledger.ChangeAccountCreate && c.Account.ID == "gold-vault" })
		c.Account.Asset = "XAG"
		reseal(recs, i)
		return recs, seqOf(i), "unknown asset"
	}},
	{"transfer across assets, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeCreate, "gold"))
		c.Transfer.Asset = "USD"
		reseal(recs, i)
		return recs, seqOf(i), "source account asset"
	}},
	{"hold expired early, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, c := find(t, recs, transferOp(ledger.ChangeCreate, "h3"))
		c.Transfer.HoldTimeout, c.Transfer.ExpiresAt = 100, c.Transfer.CreatedAt+100e9
		j, e := find(t, recs, transferOp(ledger.ChangeExpire, "h3"))
		e.Transfer.HoldTimeout, e.Transfer.ExpiresAt = 100, c.Transfer.ExpiresAt
		reseal(recs, i)
		return recs, seqOf(j), "expire before expires_at"
	}},
	{"transfer from a frozen account, resealed", func(t *testing.T, recs []*journal.Record) ([]*journal.Record, uint64, string) {
		i, _ := find(t, recs, func(c *ledger.Change) bool { return c.Op == ledger.ChangeAccountFreeze })
		j, _ := find(t, recs, func(c *ledger.Change) bool { return c.Op == ledger.ChangeAccountUnfreeze })
		recs = slices.Delete(recs, j, j+1) // bob stays frozen; the next batch pays bob
		reseal(recs, i)
		return recs, seqOf(j), "not active"
	}},
}

func TestVerifyTampering(t *testing.T) {
	orig := richChain(t).recs
	if _, err := verifyAll(orig); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tampers {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			recs, seq, what := tc.edit(t, copyRecords(t, orig))
			v, err := verifyAll(recs)
			var ce *journal.CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a CorruptionError", err)
			}
			if ce.Seq != seq || !strings.Contains(ce.What, what) {
				t.Errorf("got %v, want seq %d and %q", err, seq, what)
			}
			if !strings.Contains(err.Error(), "record "+strconv.FormatUint(seq, 10)+" ") {
				t.Errorf("error %q does not name record %d", err, seq)
			}
			if again := v.Add(recs[0]); again != err {
				t.Errorf("after an error Add returned %v, want the same error", again)
			}
			if fin := v.Finish(); fin != err {
				t.Errorf("after an error Finish returned %v, want the same error", fin)
			}
			if got := v.Head().Seq; got != seq-1 {
				t.Errorf("head after the error: got seq %d, want %d", got, seq-1)
			}
		})
	}
}

func TestCorruptionErrorMessage(t *testing.T) {
	err := &journal.CorruptionError{Seq: 42, What: "change 3 (post tr_1): source_after", Want: "10", Got: "-10"}
	if got, want := err.Error(), "journal: record 42 is corrupt: change 3 (post tr_1): source_after: want 10, got -10"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	err = &journal.CorruptionError{Seq: 1, What: "asset USD unbalanced"}
	if got, want := err.Error(), "journal: record 1 is corrupt: asset USD unbalanced"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestVerifyMemory checks that finished transfers are not kept: after many posted
// transfers and finished holds the verifier holds only the pending ones.
func TestVerifyMemory(t *testing.T) {
	c := newChain(t)
	c.apply(1e6, one(openAccount("t", "USD", true, nil)), one(openAccount("u", "USD", false, nil)))
	v := journal.NewVerifier()
	for i := range 50 {
		var reqs []ledger.Request
		for j := range 100 {
			id := strconv.Itoa(i*100 + j)
			reqs = append(reqs, pay("p"+id, "t", "u", amt(1)), hold("h"+id, "t", "u", amt(2), 0))
		}
		c.apply(1e6, atomic(reqs...))
		var voids []ledger.Request
		for j := range 99 { // one hold of each batch stays pending
			voids = append(voids, void("h"+strconv.Itoa(i*100+j)))
		}
		c.apply(1e6, atomic(voids...))
	}
	for _, r := range c.recs {
		if err := v.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(v.Holds()); got != 50 {
		t.Errorf("holds: got %d, want 50", got)
	}
	if s := v.Summary(); s.TransfersCreated != 10_000 {
		t.Errorf("transfers created: got %d, want 10000", s.TransfersCreated)
	}
	checkRebuilt(t, v, c.st)
}

// TestVerifyAddHashed: AddHashed replays like Add and ends at the same head, trusting the
// caller's hash check; everything else (links, the changes) is still checked.
func TestVerifyAddHashed(t *testing.T) {
	c := richChain(t)
	a, b := journal.NewVerifier(), journal.NewVerifier()
	for _, r := range c.recs {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
		if err := b.AddHashed(r); err != nil {
			t.Fatal(err)
		}
	}
	if a.Head() != b.Head() || a.Summary().TransfersCreated != b.Summary().TransfersCreated {
		t.Fatalf("AddHashed: head %v, want %v", b.Head(), a.Head())
	}
	// A broken link is still caught.
	recs := copyRecords(t, c.recs)
	recs[1].PrevHash[0] ^= 1
	v := journal.NewVerifier()
	var err error
	for _, r := range recs {
		if err = v.AddHashed(r); err != nil {
			break
		}
	}
	var ce *journal.CorruptionError
	if !errors.As(err, &ce) || ce.Seq != 2 {
		t.Fatalf("AddHashed over a broken link: got %v, want a CorruptionError at record 2", err)
	}
}
