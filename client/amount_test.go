package client_test

import (
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/tpwallet/tpwallet/client"
)

const max128 = "340282366920938463463374607431768211455" // 2^128−1

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"0", nil}, {"1", nil}, {"1050", nil}, {"18446744073709551615", nil}, {"18446744073709551616", nil},
		{"10000000000000000000", nil}, {"100000000000000000000000000000000000000", nil}, {max128, nil},
		{"", client.ErrAmountSyntax}, {"01", client.ErrAmountSyntax}, {"00", client.ErrAmountSyntax},
		{"+1", client.ErrAmountSyntax}, {"-1", client.ErrAmountSyntax}, {"1e3", client.ErrAmountSyntax},
		{"1.5", client.ErrAmountSyntax}, {" 1", client.ErrAmountSyntax}, {"1 ", client.ErrAmountSyntax},
		{"340282366920938463463374607431768211456", client.ErrAmountRange},
		{"999999999999999999999999999999999999999", client.ErrAmountRange},
		{"3402823669209384634633746074317682114550", client.ErrAmountRange},
		{"3402823669209384634633746074317682114550x", client.ErrAmountSyntax},
	} {
		a, err := client.ParseAmount(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("ParseAmount(%q) error = %v, want %v", tc.in, err, tc.want)
			continue
		}
		if err == nil {
			if got := a.String(); got != tc.in {
				t.Errorf("ParseAmount(%q).String() = %q", tc.in, got)
			}
			if got := a.Big().String(); got != tc.in {
				t.Errorf("ParseAmount(%q).Big() = %s", tc.in, got)
			}
		}
	}
	if client.AmountMax.String() != max128 {
		t.Errorf("AmountMax = %s", client.AmountMax)
	}
}

func TestAmountArithmetic(t *testing.T) {
	a, b := amt("18446744073709551615"), amt("1")
	sum, ok := a.Add(b)
	if !ok || sum.String() != "18446744073709551616" {
		t.Errorf("%s + %s = %s, %v", a, b, sum, ok)
	}
	if _, ok := client.AmountMax.Add(b); ok {
		t.Error("AmountMax + 1 did not overflow")
	}
	if d, ok := sum.Sub(b); !ok || d != a {
		t.Errorf("%s - 1 = %s, %v", sum, d, ok)
	}
	if _, ok := b.Sub(sum); ok {
		t.Error("1 - 2^64 did not underflow")
	}
	if a.Cmp(sum) != -1 || sum.Cmp(a) != 1 || a.Cmp(a) != 0 || !amt("0").IsZero() || b.IsZero() {
		t.Error("Cmp or IsZero is wrong")
	}
	if v, ok := a.Uint64(); !ok || v != 1<<64-1 {
		t.Errorf("Uint64 = %d, %v", v, ok)
	}
	if _, ok := sum.Uint64(); ok {
		t.Error("2^64 fits a uint64")
	}
	x, _ := new(big.Int).SetString(max128, 10)
	if got, err := client.AmountFromBig(x); err != nil || got != client.AmountMax {
		t.Errorf("AmountFromBig(max) = %s, %v", got, err)
	}
	if _, err := client.AmountFromBig(x.Add(x, big.NewInt(1))); !errors.Is(err, client.ErrAmountRange) {
		t.Errorf("AmountFromBig(2^128) error = %v", err)
	}
	if _, err := client.AmountFromBig(big.NewInt(-1)); !errors.Is(err, client.ErrAmountRange) {
		t.Errorf("AmountFromBig(-1) error = %v", err)
	}
}

func TestSignedAmount(t *testing.T) {
	for _, tc := range []struct {
		in  string
		neg bool
		ok  bool
	}{
		{"0", false, true}, {"-1", true, true}, {"-" + max128, true, true}, {max128, false, true},
		{"-0", false, false}, {"--1", false, false}, {"-", false, false}, {"+1", false, false}, {"-01", false, false},
	} {
		s, err := client.ParseSignedAmount(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSignedAmount(%q) error = %v", tc.in, err)
			continue
		}
		if err == nil && (s.String() != tc.in || s.Neg() != tc.neg || s.Big().String() != tc.in) {
			t.Errorf("ParseSignedAmount(%q) = %s (neg %v, big %s)", tc.in, s, s.Neg(), s.Big())
		}
	}
	m1, _ := client.ParseSignedAmount("-1")
	p1, _ := client.ParseSignedAmount("1")
	m2, _ := client.ParseSignedAmount("-2")
	if m1.Cmp(p1) != -1 || p1.Cmp(m1) != 1 || m2.Cmp(m1) != -1 || m1.Cmp(m1) != 0 {
		t.Error("SignedAmount.Cmp is wrong")
	}
	if _, ok := m1.Amount(); ok {
		t.Error("-1 converts to an Amount")
	}
	if z := client.NewSignedAmount(true, amt("0")); z.Neg() || z.String() != "0" {
		t.Errorf("−0 = %s", z)
	}
}

// TestAmountJSON: amounts travel as JSON strings both ways; a JSON number is refused.
func TestAmountJSON(t *testing.T) {
	var v struct {
		A client.Amount       `json:"a"`
		S client.SignedAmount `json:"s"`
	}
	in := `{"a":"` + max128 + `","s":"-` + max128 + `"}`
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil || string(out) != in {
		t.Errorf("round trip: %s, %v; want %s", out, err, in)
	}
	for _, bad := range []string{`{"a":1050}`, `{"a":"1e3"}`, `{"a":"-1"}`, `{"s":"-0"}`, `{"a":null}`, `{"a":"01"}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("Unmarshal(%s) = nil error", bad)
		}
	}
}

// FuzzParseAmount: whatever ParseAmount accepts it prints back unchanged, and it agrees
// with math/big about what is an amount.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"0", "1", "01", "1050", max128, "340282366920938463463374607431768211456", "-1", "1e3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := client.ParseAmount(s)
		x, ok := new(big.Int).SetString(s, 10)
		canonical := ok && x.Sign() >= 0 && x.String() == s && !strings.HasPrefix(s, "+")
		switch {
		case err == nil && !canonical:
			t.Fatalf("ParseAmount(%q) = %s, but it is not canonical decimal", s, a)
		case err == nil && a.String() != s:
			t.Fatalf("ParseAmount(%q).String() = %q", s, a)
		case err == nil && a.Big().Cmp(x) != 0:
			t.Fatalf("ParseAmount(%q).Big() = %s", s, a.Big())
		case err != nil && canonical && x.BitLen() <= 128:
			t.Fatalf("ParseAmount(%q): %v, but it is an amount", s, err)
		case errors.Is(err, client.ErrAmountRange) && !(canonical && x.BitLen() > 128):
			t.Fatalf("ParseAmount(%q): range error for what is no number beyond 2^128-1", s)
		}
	})
}
