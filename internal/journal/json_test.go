package journal_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

func TestFormatTime(t *testing.T) {
	for _, tc := range []struct {
		ns   int64
		want string
	}{
		{0, "1970-01-01T00:00:00.000000000Z"},
		{1, "1970-01-01T00:00:00.000000001Z"},
		{-1, "1969-12-31T23:59:59.999999999Z"},
		{t0 + 1, "2026-01-01T00:00:00.000000001Z"},
		{951782400e9, "2000-02-29T00:00:00.000000000Z"},
		{4107542399e9 + 999_999_999, "2100-02-28T23:59:59.999999999Z"},
		{-1 << 63, "1677-09-21T00:12:43.145224192Z"},
		{1<<63 - 1, "2262-04-11T23:47:16.854775807Z"},
	} {
		if got := journal.FormatTime(tc.ns); got != tc.want {
			t.Errorf("FormatTime(%d): got %s, want %s", tc.ns, got, tc.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		ns := int64(r.Uint64())
		if r.IntN(2) == 0 {
			ns = t0 + r.Int64N(100*365*86400e9) - 50*365*86400e9
		}
		want := time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000000000Z")
		if got := journal.FormatTime(ns); got != want {
			t.Fatalf("FormatTime(%d): got %s, want %s", ns, got, want)
		}
		back, err := journal.ParseTime(want)
		if err != nil || back != ns {
			t.Fatalf("ParseTime(%s): got %d, %v, want %d", want, back, err, ns)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int64
		err  bool
	}{
		{s: "2026-01-01T00:00:00Z", want: t0},
		{s: "2026-01-01T00:00:00.000000001Z", want: t0 + 1},
		{s: "2026-01-01T00:00:00.5Z", want: t0 + 5e8},
		{s: "2026-01-01T01:00:00+01:00", want: t0},
		{s: "2025-12-31T19:00:00.25-05:00", want: t0 + 25e7},
		{s: "1677-09-21T00:12:43.145224192Z", want: -1 << 63},
		{s: "2262-04-11T23:47:16.854775807Z", want: 1<<63 - 1},
		{s: "2262-04-11T23:47:16.854775808Z", err: true},
		{s: "1677-09-21T00:12:43.145224191Z", err: true},
		{s: "3000-01-01T00:00:00Z", err: true},
		{s: "", err: true},
		{s: "2026-01-01", err: true},
		{s: "2026-01-01T00:00:00", err: true},
		{s: "2026-01-01 00:00:00Z", err: true},
		{s: "1767225600", err: true},
		{s: "2026-01-01T00:00:00,5Z", err: true},
		{s: "2026-01-01T00:00:00+24:00", err: true},
		{s: "2026-01-01T00:00:00.Z", err: true},
		{s: "2026-01-01T24:00:00Z", err: true},
		{s: "2026-01-01t00:00:00.000000001z", want: t0 + 1},
		{s: "2026-01-01T00:00:00.0000000019Z", want: t0 + 1},
		{s: "2026-01-02T00:00:00+23:59", want: t0 + 60e9},
	} {
		got, err := journal.ParseTime(tc.s)
		if tc.err {
			if !errors.Is(err, journal.ErrTimeSyntax) && !errors.Is(err, journal.ErrTimeRange) {
				t.Errorf("ParseTime(%q): got %d, want an error", tc.s, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseTime(%q): got %d, %v, want %d", tc.s, got, err, tc.want)
		}
	}
	if _, err := journal.ParseTime("3000-01-01T00:00:00Z"); !errors.Is(err, journal.ErrTimeRange) {
		t.Errorf("ParseTime of year 3000: got %v, want ErrTimeRange", err)
	}
}

// TestStringEscaping pins the escaping of docs/journal.md (Python's ensure_ascii).
func TestStringEscaping(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"plain ASCII ~!@#$%^&*()_+{}[]|:;'<>,.?/", `"plain ASCII ~!@#$%^&*()_+{}[]|:;'<>,.?/"`},
		{`"\`, `"\"\\"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1a\x1f", `"\u0000\u0001\u001a\u001f"`},
		{"\x7f", `"\u007f"`},
		{"é", `"\u00e9"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"€", `"\u20ac"`},
		{"\uffff", `"\uffff"`},
		{"😀", `"\ud83d\ude00"`},
		{"\U0010ffff", `"\udbff\udfff"`},
		{"a\xffb", `"a\ufffdb"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`}, // an encoded surrogate is not UTF-8
		{"\xe2\x82", `"\ufffd\ufffd"`},           // truncated €
		{"\ufffd", `"\ufffd"`},
	} {
		tr := ledger.Transfer{Reference: tc.in}
		got := string(journal.AppendTransferJSON(nil, &tr))
		i := strings.Index(got, `"reference":`) + len(`"reference":`)
		j := strings.Index(got, `,"source":`)
		if got[i:j] != tc.want {
			t.Errorf("escape %q: got %s, want %s", tc.in, got[i:j], tc.want)
		}
	}
}

func TestTransferJSON(t *testing.T) {
	tr := &ledger.Transfer{ID: "tr_1", Source: "alice-usd", Destination: "bob-usd",
		Amount: amt(250), Asset: "USD", Kind: ledger.TransferP2P, Status: ledger.TransferPending,
		Reference: "order-42", Metadata: map[string]string{"b": "2", "a": "1"},
		CreatedAt: t0 + 1, AmountPosted: amt(0), ExpiresAt: t0 + 600e9 + 1, Hold: true,
		HoldTimeout: 600}
	want := `{"amount":"250","amount_posted":"0","asset":"USD",` +
		`"created_at":"2026-01-01T00:00:00.000000001Z","destination":"bob-usd",` +
		`"expires_at":"2026-01-01T00:10:00.000000001Z","id":"tr_1","kind":"p2p",` +
		`"metadata":{"a":"1","b":"2"},"posted_at":null,"reference":"order-42",` +
		`"source":"alice-usd","status":"pending"}`
	if got := string(journal.AppendTransferJSON(nil, tr)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	tr.Status, tr.PostedAt, tr.AmountPosted, tr.ExpiresAt, tr.Metadata = ledger.TransferPosted, t0+2, ledger.AmountMax, 0, nil
	want = `{"amount":"250","amount_posted":"340282366920938463463374607431768211455","asset":"USD",` +
		`"created_at":"2026-01-01T00:00:00.000000001Z","destination":"bob-usd",` +
		`"expires_at":null,"id":"tr_1","kind":"p2p",` +
		`"metadata":{},"posted_at":"2026-01-01T00:00:00.000000002Z","reference":"order-42",` +
		`"source":"alice-usd","status":"posted"}`
	if got := string(journal.AppendTransferJSON(nil, tr)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAccountJSON(t *testing.T) {
	a := &ledger.Account{ID: "alice-usd", Owner: "user:alice", Asset: "USD", Kind: ledger.KindUser,
		Status: ledger.StatusActive, Metadata: map[string]string{"tier": "kyc2"}, CreatedAt: t0 + 1,
		DebitsPosted: amt(5000), CreditsPosted: amt(6000), DebitsPending: amt(100)}
	want := `{"allow_negative":false,"asset":"USD","balance":{"available":"900",` +
		`"pending_credits":"0","pending_debits":"100","posted":"1000"},` +
		`"created_at":"2026-01-01T00:00:00.000000001Z","credits_posted":"6000",` +
		`"debits_posted":"5000","id":"alice-usd","kind":"user","metadata":{"tier":"kyc2"},` +
		`"owner":"user:alice","status":"active"}`
	if got := string(journal.AppendAccountJSON(nil, a)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, tc := range []struct {
		debits, credits, pending ledger.Amount
		posted, available        string
	}{
		{amt(100), amt(40), amt(0), "-60", "-60"},
		{amt(100), amt(100), amt(5), "0", "-5"},
		{amt(100), amt(103), amt(5), "3", "-2"},
		{ledger.AmountMax, amt(0), amt(0), "-340282366920938463463374607431768211455", "-340282366920938463463374607431768211455"},
		{ledger.AmountMax, amt(0), amt(1), "-340282366920938463463374607431768211455", "-340282366920938463463374607431768211456"},
		{ledger.AmountMax, amt(1), ledger.AmountMax, "-340282366920938463463374607431768211454", "-680564733841876926926749214863536422909"},
	} {
		a := &ledger.Account{DebitsPosted: tc.debits, CreditsPosted: tc.credits, DebitsPending: tc.pending}
		var got struct {
			Balance struct{ Posted, Available string }
		}
		if err := json.Unmarshal(journal.AppendAccountJSON(nil, a), &got); err != nil {
			t.Fatal(err)
		}
		if got.Balance.Posted != tc.posted || got.Balance.Available != tc.available {
			t.Errorf("debits %s credits %s pending %s: got posted %s available %s, want %s %s",
				tc.debits, tc.credits, tc.pending, got.Balance.Posted, got.Balance.Available, tc.posted, tc.available)
		}
	}
}

func TestChangeJSON(t *testing.T) {
	for _, tc := range []struct {
		c    ledger.Change
		want string
	}{
		{ledger.Change{Op: ledger.ChangeAssetCreate, Time: t0, Asset: &ledger.Asset{Code: "XAU", Scale: 3}},
			`{"asset":{"code":"XAU","scale":3},"op":"asset_create","timestamp":"2026-01-01T00:00:00.000000000Z"}`},
		{ledger.Change{Op: ledger.ChangeAccountFreeze, Time: t0, Account: &ledger.Account{ID: "a"}},
			`{"account":{"allow_negative":false,"asset":"","balance":{"available":"0","pending_credits":"0",` +
				`"pending_debits":"0","posted":"0"},"created_at":"1970-01-01T00:00:00.000000000Z",` +
				`"credits_posted":"0","debits_posted":"0","id":"a","kind":"","metadata":{},"owner":"",` +
				`"status":""},"op":"account_freeze","timestamp":"2026-01-01T00:00:00.000000000Z"}`},
		{ledger.Change{Op: ledger.ChangeVoid, Time: t0, Amount: amt(7), Transfer: &ledger.Transfer{ID: "x"},
			SourceAfter: ledger.Balance{Neg: true, Mag: amt(1)}},
			`{"amount":"7","op":"void","timestamp":"2026-01-01T00:00:00.000000000Z","transfer":` +
				`{"amount":"0","amount_posted":"0","asset":"","created_at":"1970-01-01T00:00:00.000000000Z",` +
				`"destination":"","expires_at":null,"id":"x","kind":"","metadata":{},"posted_at":null,` +
				`"reference":"","source":"","status":""}}`},
		{ledger.Change{Op: ledger.ChangePost, Time: t0, Amount: amt(7)},
			`{"amount":"7","op":"post","timestamp":"2026-01-01T00:00:00.000000000Z","transfer":null}`},
		{ledger.Change{Op: 200, Time: t0}, `{"op":"unknown","timestamp":"2026-01-01T00:00:00.000000000Z"}`},
	} {
		if got := string(journal.AppendChangeJSON(nil, &tc.c)); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestRecordJSON(t *testing.T) {
	r := &journal.Record{Seq: 7, Timestamp: t0, Changes: []ledger.Change{{Op: ledger.ChangeAssetCreate,
		Time: t0 + 1, Asset: &ledger.Asset{Code: "XAU", Scale: 3}}}}
	r.PrevHash[0], r.PrevHash[31] = 0xab, 0x01
	journal.Seal(r)
	hashed := `{"changes":[{"asset":{"code":"XAU","scale":3},"op":"asset_create",` +
		`"timestamp":"2026-01-01T00:00:00.000000001Z"}],` +
		`"prev_hash":"ab00000000000000000000000000000000000000000000000000000000000001",` +
		`"seq":7,"timestamp":"2026-01-01T00:00:00.000000000Z"}`
	if got := string(journal.AppendHashedJSON(nil, r)); got != hashed {
		t.Errorf("hashed JSON:\ngot  %s\nwant %s", got, hashed)
	}
	if got, want := r.Hash, journal.Hash(sha256.Sum256([]byte(hashed))); got != want {
		t.Errorf("hash: got %s, want %s", got, want)
	}
	served := strings.Replace(hashed, `],"prev_hash"`, `],"hash":"`+r.Hash.String()+`","prev_hash"`, 1)
	if got := string(journal.AppendRecordJSON(nil, r)); got != served {
		t.Errorf("served JSON:\ngot  %s\nwant %s", got, served)
	}
	empty := &journal.Record{}
	if got, want := string(journal.AppendHashedJSON(nil, empty)),
		`{"changes":[],"prev_hash":"`+strings.Repeat("0", 64)+`","seq":0,"timestamp":"1970-01-01T00:00:00.000000000Z"}`; got != want {
		t.Errorf("empty record: got %s, want %s", got, want)
	}
}

// TestRecordHashStreams checks RecordHash (which streams) against SHA-256 of
// AppendHashedJSON, for records big enough to be flushed several times.
func TestRecordHashStreams(t *testing.T) {
	g := randomValues{rand.New(rand.NewPCG(3, 4))}
	for _, n := range []int{0, 1, 100, 300, 2000} {
		r := g.record()
		r.Changes = make([]ledger.Change, n)
		for i := range r.Changes {
			r.Changes[i] = g.change()
		}
		want := journal.Hash(sha256.Sum256(journal.AppendHashedJSON(nil, r)))
		if got := journal.RecordHash(r); got != want {
			t.Errorf("%d changes: RecordHash %s, SHA-256 of AppendHashedJSON %s", n, got, want)
		}
	}
}

func TestJSONAllocations(t *testing.T) {
	tr := &ledger.Transfer{ID: "tr_1", Source: "a", Destination: "b", Amount: ledger.AmountMax,
		Asset: "USD", Kind: ledger.TransferP2P, Status: ledger.TransferPosted, Reference: "ré\"f",
		Metadata: map[string]string{"k3": "v", "k1": "é", "k2": "😀"}, CreatedAt: t0, PostedAt: t0}
	a := &ledger.Account{ID: "a", Metadata: map[string]string{"x": "1", "y": "2"},
		DebitsPosted: amt(5), DebitsPending: amt(3)}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { journal.AppendTransferJSON(buf[:0], tr) }); n != 0 {
		t.Errorf("AppendTransferJSON: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { journal.AppendAccountJSON(buf[:0], a) }); n != 0 {
		t.Errorf("AppendAccountJSON: %v allocations, want 0", n)
	}
	r := &journal.Record{Seq: 1, Changes: []ledger.Change{{Op: ledger.ChangeCreate, Transfer: tr}}}
	journal.RecordHash(r)
	// RecordHash takes its buffer from a sync.Pool, which the race detector empties at
	// random: there, at most the buffer itself may be allocated.
	want := 0.0
	if raceEnabled {
		want = 1
	}
	if n := testing.AllocsPerRun(100, func() { journal.RecordHash(r) }); n > want {
		t.Errorf("RecordHash: %v allocations, want at most %v", n, want)
	}
}

// Mirrors of the api.md objects, for reading the JSON back with encoding/json.
type (
	jsonRecord struct {
		Changes   []jsonChange `json:"changes"`
		Hash      string       `json:"hash"`
		PrevHash  string       `json:"prev_hash"`
		Seq       uint64       `json:"seq"`
		Timestamp string       `json:"timestamp"`
	}
	jsonChange struct {
		Op        string        `json:"op"`
		Timestamp string        `json:"timestamp"`
		Amount    *string       `json:"amount"`
		Transfer  *jsonTransfer `json:"transfer"`
		Account   *jsonAccount  `json:"account"`
		Asset     *ledger.Asset `json:"asset"`
	}
	jsonTransfer struct {
		Amount, AmountPosted, Asset, CreatedAt, Destination string
		ExpiresAt                                           *string
		ID, Kind                                            string
		Metadata                                            map[string]string
		PostedAt                                            *string
		Reference, Source, Status                           string
	}
	jsonAccount struct {
		AllowNegative bool `json:"allow_negative"`
		Asset         string
		Balance       struct {
			Available      string `json:"available"`
			PendingCredits string `json:"pending_credits"`
			PendingDebits  string `json:"pending_debits"`
			Posted         string `json:"posted"`
		}
		CreatedAt     string `json:"created_at"`
		CreditsPosted string `json:"credits_posted"`
		DebitsPosted  string `json:"debits_posted"`
		ID            string
		Kind          string
		Metadata      map[string]string
		Owner         string
		Status        string
	}
)

// UnmarshalJSON reads the snake_case keys strictly (encoding/json matches keys without
// regard to case, so unknown keys are what DisallowUnknownFields catches).
func (t *jsonTransfer) UnmarshalJSON(b []byte) error {
	var raw struct {
		Amount       string            `json:"amount"`
		AmountPosted string            `json:"amount_posted"`
		Asset        string            `json:"asset"`
		CreatedAt    string            `json:"created_at"`
		Destination  string            `json:"destination"`
		ExpiresAt    *string           `json:"expires_at"`
		ID           string            `json:"id"`
		Kind         string            `json:"kind"`
		Metadata     map[string]string `json:"metadata"`
		PostedAt     *string           `json:"posted_at"`
		Reference    string            `json:"reference"`
		Source       string            `json:"source"`
		Status       string            `json:"status"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&raw); err != nil {
		return err
	}
	*t = jsonTransfer(raw)
	return nil
}

func mustAmount(tb testing.TB, s string) ledger.Amount {
	tb.Helper()
	a, err := ledger.ParseAmount(s)
	if err != nil {
		tb.Fatalf("amount %q: %v", s, err)
	}
	return a
}

func mustTime(tb testing.TB, s *string) int64 {
	tb.Helper()
	if s == nil {
		return 0
	}
	ns, err := journal.ParseTime(*s)
	if err != nil {
		tb.Fatalf("time %q: %v", *s, err)
	}
	if *s != journal.FormatTime(ns) {
		tb.Fatalf("time %q is not in the canonical form %s", *s, journal.FormatTime(ns))
	}
	return ns
}

// fromJSON rebuilds a Record from its served JSON. Fields that are not served (Transfer.Hold,
// Transfer.HoldTimeout, Change.SourceAfter/DestinationAfter) stay zero.
func fromJSON(tb testing.TB, b []byte) *journal.Record {
	tb.Helper()
	var jr jsonRecord
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&jr); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	r := &journal.Record{Seq: jr.Seq, Timestamp: mustTime(tb, &jr.Timestamp),
		Changes: make([]ledger.Change, len(jr.Changes))}
	for i, s := range []string{jr.Hash, jr.PrevHash} {
		h, err := hex.DecodeString(s)
		if err != nil || len(h) != 32 || s != strings.ToLower(s) {
			tb.Fatalf("hash %q is not 64 lower-case hex digits", s)
		}
		copy([]*journal.Hash{&r.Hash, &r.PrevHash}[i][:], h)
	}
	for i, jc := range jr.Changes {
		c := &r.Changes[i]
		op, ok := ledger.ParseChangeOp(jc.Op)
		if !ok {
			tb.Fatalf("op %q", jc.Op)
		}
		c.Op, c.Time, c.Asset = op, mustTime(tb, &jc.Timestamp), jc.Asset
		if jc.Amount != nil {
			c.Amount = mustAmount(tb, *jc.Amount)
		}
		if jt := jc.Transfer; jt != nil {
			c.Transfer = &ledger.Transfer{ID: jt.ID, Source: jt.Source, Destination: jt.Destination,
				Amount: mustAmount(tb, jt.Amount), Asset: jt.Asset, Kind: ledger.TransferKind(jt.Kind),
				Status: ledger.TransferStatus(jt.Status), Reference: jt.Reference, Metadata: jt.Metadata,
				CreatedAt: mustTime(tb, &jt.CreatedAt), PostedAt: mustTime(tb, jt.PostedAt),
				AmountPosted: mustAmount(tb, jt.AmountPosted), ExpiresAt: mustTime(tb, jt.ExpiresAt)}
		}
		if ja := jc.Account; ja != nil {
			c.Account = &ledger.Account{ID: ja.ID, Owner: ja.Owner, Asset: ja.Asset,
				Kind: ledger.AccountKind(ja.Kind), AllowNegative: ja.AllowNegative,
				Status: ledger.AccountStatus(ja.Status), Metadata: ja.Metadata,
				CreatedAt: mustTime(tb, &ja.CreatedAt), DebitsPosted: mustAmount(tb, ja.DebitsPosted),
				CreditsPosted:  mustAmount(tb, ja.CreditsPosted),
				DebitsPending:  mustAmount(tb, ja.Balance.PendingDebits),
				CreditsPending: mustAmount(tb, ja.Balance.PendingCredits)}
			if got, want := ja.Balance.Posted, c.Account.Posted().String(); got != want {
				tb.Errorf("account %s: posted %s, want %s", ja.ID, got, want)
			}
		}
	}
	return r
}

// served strips from r what the JSON does not carry.
func served(r *journal.Record) *journal.Record {
	c := *r
	c.Changes = make([]ledger.Change, len(r.Changes))
	for i, ch := range r.Changes {
		ch.SourceAfter, ch.DestinationAfter = ledger.Balance{}, ledger.Balance{}
		if ch.Transfer != nil {
			t := *ch.Transfer
			t.Hold, t.HoldTimeout = false, 0
			ch.Transfer = &t
		}
		c.Changes[i] = ch
	}
	return &c
}

// TestRecordJSONRoundTrip reads the served JSON back with encoding/json and checks every
// value, over the rich chain and random records with valid UTF-8 strings and kinds.
func TestRecordJSONRoundTrip(t *testing.T) {
	recs := richChain(t).recs
	g := randomValues{rand.New(rand.NewPCG(5, 6))}
	for range 300 {
		r := g.record()
		for _, c := range r.Changes {
			m := metadataOf(c)
			for k, v := range m {
				if !utf8.ValidString(k) || !utf8.ValidString(v) {
					delete(m, k)
				}
			}
			validUTF8(c)
		}
		recs = append(recs, r)
	}
	for _, r := range recs {
		b := journal.AppendRecordJSON(nil, r)
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
		for _, c := range b {
			if c >= utf8.RuneSelf || c < 0x20 {
				t.Fatalf("JSON has byte %#x outside printable ASCII: %s", c, b)
			}
		}
		got, want := fromJSON(t, b), served(r)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("record %d does not round-trip:\ngot  %s\nwant %s", r.Seq,
				journal.AppendRecordJSON(nil, got), b)
		}
	}
}

func metadataOf(c ledger.Change) map[string]string {
	switch {
	case c.Transfer != nil:
		return c.Transfer.Metadata
	case c.Account != nil:
		return c.Account.Metadata
	}
	return nil
}

// validUTF8 replaces the strings of c that are not valid UTF-8, which JSON cannot carry.
func validUTF8(c ledger.Change) {
	fix := func(s *string) { *s = strings.ToValidUTF8(*s, "?") }
	if t := c.Transfer; t != nil {
		for _, s := range []*string{&t.ID, &t.Source, &t.Destination, &t.Asset, &t.Reference} {
			fix(s)
		}
	}
	if a := c.Account; a != nil {
		for _, s := range []*string{&a.ID, &a.Owner, &a.Asset} {
			fix(s)
		}
	}
	if a := c.Asset; a != nil {
		fix(&a.Code)
	}
}

// TestInvalidUTF8Keys checks that metadata keys that are not UTF-8 are written as a reader
// sees them: sorted as text, one of any keys that read the same.
func TestInvalidUTF8Keys(t *testing.T) {
	tr := &ledger.Transfer{Metadata: map[string]string{"\xff": "a", "\xfe": "b", "z": "c", "\xff\xff": "d", "y\x80": "e"}}
	b := journal.AppendTransferJSON(nil, tr)
	want := `"metadata":{"y\ufffd":"e","z":"c","\ufffd":"a","\ufffd\ufffd":"d"}`
	if !bytes.Contains(b, []byte(want)) {
		t.Errorf("got %s, want it to contain %s", b, want)
	}
}

// pythonCanonical is the auditor's check from docs/journal.md, run over JSON lines: for
// each record it prints the SHA-256 Python computes and the canonical bytes it hashed. The
// last line is hex of a UTF-8 string; Python prints json.dumps of it.
const pythonCanonical = `
import hashlib, json, sys
lines = sys.stdin.read().split("\n")
for line in lines[:-1]:
    rec = json.loads(line)
    r = rec.copy()
    h = r.pop("hash")
    canon = json.dumps(r, sort_keys=True, separators=(",", ":"))
    print(hashlib.sha256(canon.encode()).hexdigest(), "ok" if h == hashlib.sha256(canon.encode()).hexdigest() else "bad")
    print(canon)
print(json.dumps(bytes.fromhex(lines[-1]).decode("utf-8")))
`

// TestPythonComputesTheSameHash runs the auditor's Python over records with tricky strings
// and checks that Python's canonical JSON and hash are ours; and that Python escapes every
// code point as we do. It fails if python3 is missing: the hash is defined by Python's
// output.
func TestPythonComputesTheSameHash(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to check the canonical JSON against Python: %v", err)
	}
	recs := richChain(t).recs
	g := randomValues{rand.New(rand.NewPCG(7, 8))}
	for range 200 {
		r := g.record() // arbitrary bytes in strings and keys, including invalid UTF-8
		journal.Seal(r)
		recs = append(recs, r)
	}
	var in bytes.Buffer
	for _, r := range recs {
		in.Write(journal.AppendRecordJSON(nil, r))
		in.WriteByte('\n')
	}
	var all []byte
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if utf8.ValidRune(r) {
			all = utf8.AppendRune(all, r)
		}
	}
	all = append(all, "\x7f\"\\/"...)
	in.WriteString(hex.EncodeToString(all))

	cmd := exec.Command(python, "-c", pythonCanonical)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.Bytes())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for _, r := range recs {
		if !sc.Scan() {
			t.Fatalf("python3 printed too little")
		}
		line := sc.Text()
		want := r.Hash.String() + " ok"
		if !sc.Scan() {
			t.Fatalf("python3 printed too little")
		}
		if line != want {
			t.Errorf("record %d: python3 says %s, want %s", r.Seq, line, want)
		}
		if canon, ours := sc.Text(), string(journal.AppendHashedJSON(nil, r)); canon != ours {
			t.Errorf("record %d: python3's canonical JSON differs:\npython %s\nours   %s", r.Seq, canon, ours)
		}
	}
	if !sc.Scan() {
		t.Fatalf("python3 printed too little")
	}
	tr := ledger.Transfer{Reference: string(all)}
	b := journal.AppendTransferJSON(nil, &tr)
	i := bytes.Index(b, []byte(`"reference":`)) + len(`"reference":`)
	j := bytes.Index(b, []byte(`,"source":`))
	if got, want := string(b[i:j]), sc.Text(); got != want {
		for k := 0; k < len(got) && k < len(want); k++ {
			if got[k] != want[k] {
				t.Fatalf("escaping of all code points differs from Python at byte %d: ours %.40s, python %.40s",
					k, got[k:], want[k:])
			}
		}
		t.Fatalf("escaping of all code points differs from Python in length: ours %d, python %d", len(got), len(want))
	}
}
