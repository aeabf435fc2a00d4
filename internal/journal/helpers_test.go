package journal_test

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// t0 is 2026-01-01T00:00:00Z in Unix ns.
const t0 = int64(1767225600) * 1e9

// chain applies commands to a ledger.State and seals one record per batch that changed
// something, as the engine does.
type chain struct {
	tb   testing.TB
	st   *ledger.State
	now  int64
	recs []*journal.Record
}

func newChain(tb testing.TB) *chain {
	return &chain{tb: tb, st: ledger.NewState(), now: t0}
}

// apply runs one batch at now+step and returns it; every request must succeed.
func (c *chain) apply(step int64, cmds ...ledger.Command) ledger.Batch {
	c.tb.Helper()
	b := c.applyAny(step, cmds...)
	for i, res := range b.Results {
		for j, r := range res {
			if r.Code != ledger.CodeOK {
				c.tb.Fatalf("batch %d: command %d request %d: %s: %s", len(c.recs), i, j, r.Code, r.Detail)
			}
		}
	}
	return b
}

// applyAny runs one batch at now+step whatever its results.
func (c *chain) applyAny(step int64, cmds ...ledger.Command) ledger.Batch {
	c.tb.Helper()
	c.now += step
	b := c.st.Apply(c.now, cmds)
	if err := c.st.CheckInvariants(); err != nil {
		c.tb.Fatalf("ledger invariants: %v", err)
	}
	if len(b.Changes) > 0 {
		head := journal.Head{}
		if n := len(c.recs); n > 0 {
			head = journal.Head{Seq: c.recs[n-1].Seq, Hash: c.recs[n-1].Hash}
		}
		r := &journal.Record{Seq: head.Seq + 1, PrevHash: head.Hash, Timestamp: b.Time, Changes: b.Changes}
		journal.Seal(r)
		c.recs = append(c.recs, r)
	}
	return b
}

// last returns the latest record.
func (c *chain) last() *journal.Record { return c.recs[len(c.recs)-1] }

func one(reqs ...ledger.Request) ledger.Command { return ledger.Command{Requests: reqs} }

func atomic(reqs ...ledger.Request) ledger.Command {
	return ledger.Command{Requests: reqs, Atomic: true}
}

func amt(v uint64) ledger.Amount { return ledger.AmountFromUint64(v) }

func openAccount(id, asset string, allowNegative bool, md map[string]string) ledger.Request {
	return ledger.Request{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: id,
		Owner: "owner:" + id, Asset: asset, AllowNegative: allowNegative, Metadata: md}}
}

func pay(id, src, dst string, a ledger.Amount) ledger.Request {
	return ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{ID: id,
		Source: src, Destination: dst, Amount: a}}
}

func hold(id, src, dst string, a ledger.Amount, timeoutSeconds uint32) ledger.Request {
	return ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{ID: id,
		Source: src, Destination: dst, Amount: a, Hold: true, HoldTimeout: timeoutSeconds}}
}

func post(id string, a ledger.Amount, final bool) ledger.Request {
	return ledger.Request{Op: ledger.OpPost, TransferID: id, Amount: a, AmountSet: !a.IsZero(),
		NotFinal: !final}
}

func increase(id string, a ledger.Amount) ledger.Request {
	return ledger.Request{Op: ledger.OpIncrease, TransferID: id, Amount: a}
}

func void(id string) ledger.Request { return ledger.Request{Op: ledger.OpVoid, TransferID: id} }

func freeze(id string) ledger.Request { return ledger.Request{Op: ledger.OpFreeze, AccountID: id} }

func unfreeze(id string) ledger.Request {
	return ledger.Request{Op: ledger.OpUnfreeze, AccountID: id}
}

// trickyMetadata has keys and values that exercise every escaping rule.
var trickyMetadata = map[string]string{
	"quote":     `she said "hi"`,
	"backslash": `C:\path\to\file \\ \u0041`,
	"controls":  "nl\n cr\r tab\t bs\b ff\f soh\x01 us\x1f del\x7f", // NUL is refused by the ledger; json_test covers its escape
	"non-ascii": "café Ünïcödé 日本語 ₿",
	"emoji":     "💸🏦 and 🧑‍🤝‍🧑",
	"separator": "line\u2028para\u2029end",
	"slash":     "a/b</script>",
	"é-key":     "accented key",
	"日":         "cjk key",
	"😀":         "astral key",
	"bom":       "\ufeffzero\u200bwidth",
	"max":       "\U0010ffff\uffff\ue000",
}

// richChain builds a chain with every kind of change: asset and account creation, posted
// transfers, holds posted in parts, increased, voided and expired, freezes, atomic and
// non-atomic batches, amounts at 2^128−1 and negative balances. Each step is its own record.
func richChain(tb testing.TB) *chain {
	c := newChain(tb)
	c.apply(1e6, one(ledger.Request{Op: ledger.OpCreateAsset, Asset: ledger.Asset{Code: "XAU", Scale: 3}}))
	c.apply(1e6, one(openAccount("treasury", "USD", true, nil)),
		one(openAccount("alice", "USD", false, map[string]string{"tier": "kyc2"})),
		one(openAccount("bob", "USD", false, trickyMetadata)),
		one(openAccount("gold-vault", "XAU", true, nil)),
		one(openAccount("gold-alice", "XAU", false, nil)))
	c.apply(1e6, one(pay("fund-alice", "treasury", "alice", amt(100_000))))
	c.apply(1e6, one(ledger.Request{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{
		ID: "tricky", Source: "alice", Destination: "bob", Amount: amt(2_500),
		Kind: ledger.TransferP2M, Reference: "order \"42\"\n\u2028😀", Metadata: trickyMetadata}}))
	c.apply(1e6, one(hold("h1", "alice", "bob", amt(1_000), 600)))
	c.apply(1e6, one(post("h1", amt(300), false)))
	c.apply(1e6, one(increase("h1", amt(200))))
	c.apply(1e6, one(post("h1", amt(400), true))) // releases the remaining 500
	c.apply(1e6, one(hold("h2", "alice", "bob", amt(700), 0)))
	c.apply(1e6, one(void("h2")))
	c.apply(1e6, one(hold("h3", "treasury", "bob", amt(50), 1)))
	c.apply(2e9) // no command: only the expiry of h3
	c.apply(1e6, one(freeze("bob")))
	if b := c.applyAny(1e6, one(pay("", "alice", "bob", amt(1)))); b.Results[0][0].Code != ledger.CodeAccountFrozen {
		tb.Fatalf("transfer to a frozen account: got %q, want account_frozen", b.Results[0][0].Code)
	}
	c.apply(1e6, one(unfreeze("bob")))
	c.apply(1e6, atomic(pay("", "treasury", "alice", amt(10)), pay("", "alice", "bob", amt(5)),
		hold("", "bob", "alice", amt(3), 3600)))
	c.applyAny(1e6, ledger.Command{Requests: []ledger.Request{pay("", "alice", "bob", amt(1)),
		pay("", "alice", "bob", amt(1<<60)), pay("", "bob", "alice", amt(2))}}) // the middle one fails
	c.apply(1e6, one(pay("gold", "gold-vault", "gold-alice", amt(12_345))))
	c.apply(1e6, one(openAccount("eth-treasury", "ETH", true, nil)),
		one(openAccount("eth-whale", "ETH", false, nil)))
	c.apply(1e6, one(pay("max", "eth-treasury", "eth-whale", ledger.AmountMax)))
	c.apply(1e6, one(pay("whale-back", "eth-whale", "eth-treasury", amt(1))))
	c.apply(1e6, one(hold("deep", "eth-treasury", "eth-whale", amt(1), 0)))
	// eth-treasury now has posted −(2^128−2) and available −(2^128−1), the floor.
	c.apply(1e6, one(freeze("eth-treasury")))
	c.apply(1e6, one(unfreeze("eth-treasury")))
	return c
}

// randomValues makes random domain values for codec and JSON tests.
type randomValues struct{ r *rand.Rand }

func (g randomValues) amount() ledger.Amount {
	switch g.r.IntN(8) {
	case 0:
		return ledger.Amount{}
	case 1:
		return ledger.AmountMax
	case 2:
		return ledger.AmountFromParts(^uint64(0), ^uint64(0)-uint64(g.r.IntN(3)))
	case 3:
		return ledger.AmountFromParts(1, 0)
	case 4:
		return ledger.AmountFromUint64(^uint64(0))
	case 5:
		return ledger.AmountFromUint64(g.r.Uint64N(1e6))
	}
	return ledger.AmountFromParts(g.r.Uint64()>>g.r.IntN(64), g.r.Uint64())
}

func (g randomValues) balance() ledger.Balance {
	b := ledger.Balance{Mag: g.amount()}
	b.Neg = !b.Mag.IsZero() && g.r.IntN(2) == 0
	return b
}

func (g randomValues) time() int64 {
	switch g.r.IntN(6) {
	case 0:
		return 0
	case 1:
		return -1 << 63
	case 2:
		return 1<<63 - 1
	case 3:
		return -g.r.Int64()
	}
	return t0 + g.r.Int64N(1e18)
}

// string returns ASCII, UTF-8 with non-ASCII and astral code points, or arbitrary bytes.
func (g randomValues) string(maxLen int) string {
	n := g.r.IntN(maxLen + 1)
	b := make([]byte, 0, n)
	mode := g.r.IntN(3)
	for len(b) < n {
		switch mode {
		case 0:
			b = append(b, byte(0x20+g.r.IntN(0x5f)))
		case 1:
			choices := []rune{'a', '"', '\\', '\n', 0x01, 0x7f, 'é', 0x2028, 0xfffd, 0x1f600, 0x10ffff}
			b = utf8.AppendRune(b, choices[g.r.IntN(len(choices))])
		default:
			b = append(b, byte(g.r.IntN(256)))
		}
	}
	return string(b)
}

func (g randomValues) metadata() map[string]string {
	m := map[string]string{}
	for n := g.r.IntN(4) * g.r.IntN(9); len(m) < n; {
		m[g.string(64)] = g.string(100)
	}
	return m
}

func pick[T any](g randomValues, list []T) T { return list[g.r.IntN(len(list))] }

func (g randomValues) transfer() *ledger.Transfer {
	return &ledger.Transfer{ID: g.string(64), Source: g.string(64), Destination: g.string(64),
		Amount: g.amount(), Asset: g.string(16), Kind: pick(g, ledger.TransferKinds),
		Status: pick(g, ledger.TransferStatuses), Reference: g.string(256), Metadata: g.metadata(),
		CreatedAt: g.time(), PostedAt: g.time(), AmountPosted: g.amount(), ExpiresAt: g.time(),
		Hold: g.r.IntN(2) == 0, HoldTimeout: uint32(g.r.Int64N(ledger.HoldTimeoutMax + 1))}
}

func (g randomValues) account() *ledger.Account {
	return &ledger.Account{ID: g.string(64), Owner: g.string(256), Asset: g.string(16),
		Kind: pick(g, ledger.AccountKinds), AllowNegative: g.r.IntN(2) == 0,
		Status: pick(g, ledger.AccountStatuses), Metadata: g.metadata(), CreatedAt: g.time(),
		DebitsPosted: g.amount(), CreditsPosted: g.amount(), DebitsPending: g.amount(),
		CreditsPending: g.amount()}
}

func (g randomValues) change() ledger.Change {
	c := ledger.Change{Op: ledger.ChangeOp(1 + g.r.IntN(int(ledger.ChangeAssetCreate))), Time: g.time()}
	switch c.Op {
	case ledger.ChangeAccountCreate, ledger.ChangeAccountFreeze, ledger.ChangeAccountUnfreeze:
		c.Account = g.account()
	case ledger.ChangeAssetCreate:
		c.Asset = &ledger.Asset{Code: g.string(16), Scale: uint8(g.r.IntN(256))}
	default:
		c.Transfer, c.Amount = g.transfer(), g.amount()
		c.SourceAfter, c.DestinationAfter = g.balance(), g.balance()
	}
	return c
}

func (g randomValues) record() *journal.Record {
	r := &journal.Record{Seq: g.r.Uint64() >> g.r.IntN(64), Timestamp: g.time(),
		Changes: make([]ledger.Change, g.r.IntN(6))}
	for i := range r.PrevHash {
		r.PrevHash[i], r.Hash[i] = byte(g.r.IntN(256)), byte(g.r.IntN(256))
	}
	for i := range r.Changes {
		r.Changes[i] = g.change()
	}
	return r
}

func (g randomValues) entry() journal.Entry {
	return journal.Entry{TransferID: g.string(64), Direction: journal.Direction(1 + g.r.IntN(2)),
		Amount: g.amount(), Kind: pick(g, ledger.TransferKinds), PostedAfter: g.balance()}
}

// copyRecords deep-copies records through the binary codec.
func copyRecords(tb testing.TB, recs []*journal.Record) []*journal.Record {
	tb.Helper()
	out := make([]*journal.Record, len(recs))
	for i, r := range recs {
		c, err := journal.DecodeRecord(journal.AppendRecord(nil, r))
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = c
	}
	return out
}
