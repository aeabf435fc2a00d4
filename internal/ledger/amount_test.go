package ledger_test

import (
	"errors"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

const (
	maxDigits = "340282366920938463463374607431768211455" // 2^128−1
	twoTo128  = "340282366920938463463374607431768211456" // 2^128
)

var bigMax = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// bigOf returns a as a big.Int.
func bigOf(a ledger.Amount) *big.Int {
	hi, lo := a.Parts()
	b := new(big.Int).SetUint64(hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(lo))
}

// amountOf returns b as an Amount; b must be in [0, 2^128−1].
func amountOf(tb testing.TB, b *big.Int) ledger.Amount {
	tb.Helper()
	if b.Sign() < 0 || b.Cmp(bigMax) > 0 {
		tb.Fatalf("amountOf(%s): out of range", b)
	}
	lo := new(big.Int).And(b, new(big.Int).SetUint64(^uint64(0))).Uint64()
	hi := new(big.Int).Rsh(b, 64).Uint64()
	return ledger.AmountFromParts(hi, lo)
}

func mustParse(tb testing.TB, s string) ledger.Amount {
	tb.Helper()
	a, err := ledger.ParseAmount(s)
	if err != nil {
		tb.Fatalf("ParseAmount(%q): %v", s, err)
	}
	return a
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in      string
		want    string // decimal value when err is nil
		wantErr error
	}{
		{in: "0", want: "0"},
		{in: "1", want: "1"},
		{in: "1050", want: "1050"},
		{in: "18446744073709551615", want: "18446744073709551615"}, // 2^64−1
		{in: "18446744073709551616", want: "18446744073709551616"}, // 2^64
		{in: "10000000000000000000", want: "10000000000000000000"}, // 10^19
		{in: "100000000000000000000000000000000000000", want: "100000000000000000000000000000000000000"},
		{in: maxDigits, want: maxDigits},
		{in: "340282366920938463463374607431768211454", want: "340282366920938463463374607431768211454"},

		{in: "", wantErr: ledger.ErrAmountSyntax},
		{in: "01", wantErr: ledger.ErrAmountSyntax},
		{in: "00", wantErr: ledger.ErrAmountSyntax},
		{in: "+1", wantErr: ledger.ErrAmountSyntax},
		{in: "-1", wantErr: ledger.ErrAmountSyntax},
		{in: "-0", wantErr: ledger.ErrAmountSyntax},
		{in: "1e3", wantErr: ledger.ErrAmountSyntax},
		{in: "1E3", wantErr: ledger.ErrAmountSyntax},
		{in: "1.5", wantErr: ledger.ErrAmountSyntax},
		{in: "1.0", wantErr: ledger.ErrAmountSyntax},
		{in: " 1", wantErr: ledger.ErrAmountSyntax},
		{in: "1 ", wantErr: ledger.ErrAmountSyntax},
		{in: "0x10", wantErr: ledger.ErrAmountSyntax},
		{in: "1_000", wantErr: ledger.ErrAmountSyntax},
		{in: "1,000", wantErr: ledger.ErrAmountSyntax},
		{in: "١", wantErr: ledger.ErrAmountSyntax}, // Arabic-Indic one
		{in: "\"1\"", wantErr: ledger.ErrAmountSyntax},
		{in: "NaN", wantErr: ledger.ErrAmountSyntax},
		{in: "99999999999999999999999999999999999999x", wantErr: ledger.ErrAmountSyntax}, // 39 chars
		{in: "0" + maxDigits, wantErr: ledger.ErrAmountSyntax},                           // 40 chars, leading zero
		{in: strings.Repeat("0", 41), wantErr: ledger.ErrAmountSyntax},
		{in: "1" + strings.Repeat("0", 38) + "x", wantErr: ledger.ErrAmountSyntax}, // 40 chars, not all digits
		{in: "-" + maxDigits, wantErr: ledger.ErrAmountSyntax},

		{in: twoTo128, wantErr: ledger.ErrAmountRange},
		{in: "340282366920938463463374607431768211460", wantErr: ledger.ErrAmountRange},
		{in: strings.Repeat("9", 39), wantErr: ledger.ErrAmountRange},
		{in: "1" + strings.Repeat("0", 39), wantErr: ledger.ErrAmountRange}, // 40 digits
		{in: strings.Repeat("9", 40), wantErr: ledger.ErrAmountRange},
		{in: maxDigits + "0", wantErr: ledger.ErrAmountRange},
		{in: strings.Repeat("1", 100), wantErr: ledger.ErrAmountRange},
	}
	for _, tt := range tests {
		a, err := ledger.ParseAmount(tt.in)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseAmount(%q): got error %v, want %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !a.IsZero() {
				t.Errorf("ParseAmount(%q): got %s with the error, want 0", tt.in, a)
			}
			continue
		}
		if got := bigOf(a).String(); got != tt.want {
			t.Errorf("ParseAmount(%q): got value %s, want %s", tt.in, got, tt.want)
		}
		if got := a.String(); got != tt.in {
			t.Errorf("ParseAmount(%q).String(): got %q, want %q", tt.in, got, tt.in)
		}
	}
}

func TestParseAmountMax(t *testing.T) {
	a := mustParse(t, maxDigits)
	if a != ledger.AmountMax {
		t.Errorf("ParseAmount(2^128−1): got %v, want AmountMax", a)
	}
	if hi, lo := a.Parts(); hi != ^uint64(0) || lo != ^uint64(0) {
		t.Errorf("Parts: got %x %x, want all ones", hi, lo)
	}
}

func TestAmountStringRoundTrip(t *testing.T) {
	values := []string{
		"0", "1", "9", "10", "4294967296", "9999999999999999999", "10000000000000000000",
		"18446744073709551615", "18446744073709551616", "18446744073709551617",
		"99999999999999999999999999999999999999", "100000000000000000000000000000000000000",
		"184467440737095516160000000000000000000", // 2^64·10^19
		"170141183460469231731687303715884105728", // 2^127
		"170141183460469231731687303715884105727",
		maxDigits,
	}
	for _, s := range values {
		b, _ := new(big.Int).SetString(s, 10)
		a := amountOf(t, b)
		if got := a.String(); got != s {
			t.Errorf("String(): got %q, want %q", got, s)
		}
		if got := string(a.AppendDecimal([]byte("x="))); got != "x="+s {
			t.Errorf("AppendDecimal: got %q, want %q", got, "x="+s)
		}
		back, err := ledger.ParseAmount(a.String())
		if err != nil || back != a {
			t.Errorf("ParseAmount(%q): got %v, %v, want %v, nil", s, back, err, a)
		}
	}
	// Every power of two and its neighbours.
	for i := 0; i < 128; i++ {
		p := new(big.Int).Lsh(big.NewInt(1), uint(i))
		for _, d := range []int64{-1, 0, 1} {
			b := new(big.Int).Add(p, big.NewInt(d))
			if b.Sign() < 0 || b.Cmp(bigMax) > 0 {
				continue
			}
			if got, want := amountOf(t, b).String(), b.String(); got != want {
				t.Errorf("String(): got %q, want %q", got, want)
			}
		}
	}
}

func TestAmountAddSub(t *testing.T) {
	max := ledger.AmountMax
	u := ledger.AmountFromUint64
	tests := []struct {
		a, b    ledger.Amount
		sum     string // "" when Add overflows
		diff    string // a−b; "" when Sub underflows
		wantCmp int
	}{
		{a: u(0), b: u(0), sum: "0", diff: "0", wantCmp: 0},
		{a: u(5), b: u(3), sum: "8", diff: "2", wantCmp: 1},
		{a: u(3), b: u(5), sum: "8", diff: "", wantCmp: -1},
		{a: u(0), b: u(1), sum: "1", diff: "", wantCmp: -1},
		{a: u(^uint64(0)), b: u(1), sum: "18446744073709551616", diff: "18446744073709551614", wantCmp: 1},
		{a: ledger.AmountFromParts(1, 0), b: u(1), sum: "18446744073709551617", diff: "18446744073709551615", wantCmp: 1},
		{a: ledger.AmountFromParts(1, 0), b: u(^uint64(0)), sum: "36893488147419103231", diff: "1", wantCmp: 1},
		{a: ledger.AmountFromParts(0, 5), b: ledger.AmountFromParts(1, 0), sum: "18446744073709551621", diff: "", wantCmp: -1},
		{a: max, b: u(0), sum: maxDigits, diff: maxDigits, wantCmp: 1},
		{a: max, b: u(1), sum: "", diff: "340282366920938463463374607431768211454", wantCmp: 1},
		{a: max, b: max, sum: "", diff: "0", wantCmp: 0},
		{a: u(1), b: max, sum: "", diff: "", wantCmp: -1},
		{a: ledger.AmountFromParts(^uint64(0), 0), b: ledger.AmountFromParts(0, ^uint64(0)), sum: maxDigits,
			diff: "340282366920938463426481119284349108225", wantCmp: 1},
		{a: ledger.AmountFromParts(1<<63, 0), b: ledger.AmountFromParts(1<<63, 0), sum: "", diff: "0", wantCmp: 0},
	}
	for _, tt := range tests {
		sum, ok := tt.a.Add(tt.b)
		switch {
		case tt.sum == "" && ok:
			t.Errorf("%s + %s: got %s, ok, want overflow", tt.a, tt.b, sum)
		case tt.sum != "" && (!ok || sum.String() != tt.sum):
			t.Errorf("%s + %s: got %s, %v, want %s, true", tt.a, tt.b, sum, ok, tt.sum)
		}
		if sum2, ok2 := tt.b.Add(tt.a); sum2 != sum || ok2 != ok {
			t.Errorf("%s + %s: not commutative", tt.a, tt.b)
		}
		diff, ok := tt.a.Sub(tt.b)
		switch {
		case tt.diff == "" && ok:
			t.Errorf("%s − %s: got %s, ok, want underflow", tt.a, tt.b, diff)
		case tt.diff != "" && (!ok || diff.String() != tt.diff):
			t.Errorf("%s − %s: got %s, %v, want %s, true", tt.a, tt.b, diff, ok, tt.diff)
		}
		if got := tt.a.Cmp(tt.b); got != tt.wantCmp {
			t.Errorf("Cmp(%s, %s): got %d, want %d", tt.a, tt.b, got, tt.wantCmp)
		}
		if got := tt.b.Cmp(tt.a); got != -tt.wantCmp {
			t.Errorf("Cmp(%s, %s): got %d, want %d", tt.b, tt.a, got, -tt.wantCmp)
		}
		wantMin := tt.a
		if tt.wantCmp > 0 {
			wantMin = tt.b
		}
		if got := tt.a.Min(tt.b); got != wantMin {
			t.Errorf("Min(%s, %s): got %s, want %s", tt.a, tt.b, got, wantMin)
		}
	}
	if !(ledger.Amount{}).IsZero() || u(1).IsZero() || ledger.AmountFromParts(1, 0).IsZero() {
		t.Errorf("IsZero: got wrong answer for 0, 1 or 2^64")
	}
}

func TestBalance(t *testing.T) {
	max := ledger.AmountMax
	u := ledger.AmountFromUint64
	tests := []struct {
		credits, debits ledger.Amount
		want            string
	}{
		{u(0), u(0), "0"},
		{u(5), u(3), "2"},
		{u(3), u(5), "-2"},
		{u(7), u(7), "0"},
		{max, u(0), maxDigits},
		{u(0), max, "-" + maxDigits},
		{u(1), max, "-340282366920938463463374607431768211454"},
		{ledger.AmountFromParts(1, 0), u(1), "18446744073709551615"},
	}
	for _, tt := range tests {
		b := ledger.BalanceOf(tt.credits, tt.debits)
		if got := b.String(); got != tt.want {
			t.Errorf("BalanceOf(%s, %s): got %q, want %q", tt.credits, tt.debits, got, tt.want)
		}
		if b.Neg && b.Mag.IsZero() {
			t.Errorf("BalanceOf(%s, %s): got negative zero", tt.credits, tt.debits)
		}
		back, err := ledger.ParseBalance(b.String())
		if err != nil || back != b {
			t.Errorf("ParseBalance(%q): got %v, %v, want %v, nil", b.String(), back, err, b)
		}
	}

	bad := []struct {
		in   string
		want error
	}{
		{"-0", ledger.ErrAmountSyntax},
		{"-", ledger.ErrAmountSyntax},
		{"", ledger.ErrAmountSyntax},
		{"--1", ledger.ErrAmountSyntax},
		{"+1", ledger.ErrAmountSyntax},
		{"-01", ledger.ErrAmountSyntax},
		{"- 1", ledger.ErrAmountSyntax},
		{"1-", ledger.ErrAmountSyntax},
		{"-" + twoTo128, ledger.ErrAmountRange},
		{twoTo128, ledger.ErrAmountRange},
	}
	for _, tt := range bad {
		if _, err := ledger.ParseBalance(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("ParseBalance(%q): got %v, want %v", tt.in, err, tt.want)
		}
	}

	subs := []struct {
		b    string
		a    ledger.Amount
		want string // "" when the magnitude would pass 2^128−1
	}{
		{"5", u(3), "2"},
		{"5", u(5), "0"},
		{"0", u(5), "-5"},
		{"3", u(5), "-2"},
		{"-3", u(5), "-8"},
		{maxDigits, max, "0"},
		{"0", max, "-" + maxDigits},
		{"-1", max, ""},
		{"-" + maxDigits, u(1), ""},
		{"-" + maxDigits, u(0), "-" + maxDigits},
	}
	for _, tt := range subs {
		b, err := ledger.ParseBalance(tt.b)
		if err != nil {
			t.Fatalf("ParseBalance(%q): %v", tt.b, err)
		}
		got, ok := b.Sub(tt.a)
		switch {
		case tt.want == "" && ok:
			t.Errorf("%s − %s: got %s, ok, want overflow", tt.b, tt.a, got)
		case tt.want != "" && (!ok || got.String() != tt.want):
			t.Errorf("%s − %s: got %s, %v, want %s, true", tt.b, tt.a, got, ok, tt.want)
		}
		if ok && got.Neg && got.Mag.IsZero() {
			t.Errorf("%s − %s: got negative zero", tt.b, tt.a)
		}
	}
}

var canonical = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{
		"0", "1", "1050", "01", "00", "+1", "-1", "1e3", "1.5", " 1", "1 ", "", "0x1f", "١",
		"18446744073709551615", "18446744073709551616", maxDigits, twoTo128,
		strings.Repeat("9", 39), strings.Repeat("9", 40), "0" + maxDigits,
		"1" + strings.Repeat("0", 38) + "x", "99999999999999999999999999999999999999x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ledger.ParseAmount(s)
		// The reference: canonical digits, then the range check on the exact value.
		var want *big.Int
		wantErr := ledger.ErrAmountSyntax
		if canonical.MatchString(s) {
			want, _ = new(big.Int).SetString(s, 10)
			wantErr = nil
			if want.Cmp(bigMax) > 0 {
				want, wantErr = nil, ledger.ErrAmountRange
			}
		}
		if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("ParseAmount(%q): got error %v, want %v", s, err, wantErr)
		}
		if err != nil {
			return
		}
		if got := bigOf(a); got.Cmp(want) != 0 {
			t.Fatalf("ParseAmount(%q): got value %s, want %s", s, got, want)
		}
		if got := a.String(); got != s {
			t.Fatalf("ParseAmount(%q).String(): got %q, want %q", s, got, s)
		}
		// Balance accepts the same digits, and a '-' before them unless they are "0".
		if b, err := ledger.ParseBalance(s); err != nil || b.Neg || b.Mag != a {
			t.Fatalf("ParseBalance(%q): got %v, %v, want %v", s, b, err, a)
		}
		nb, err := ledger.ParseBalance("-" + s)
		if a.IsZero() {
			if err == nil {
				t.Fatalf("ParseBalance(\"-0\"): got %v, want an error", nb)
			}
		} else if err != nil || !nb.Neg || nb.Mag != a || nb.String() != "-"+s {
			t.Fatalf("ParseBalance(%q): got %v, %v", "-"+s, nb, err)
		}
	})
}
