package client

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
)

// Amount is an unsigned 128-bit integer in an asset's minor units ("1050" is 10.50 USD), as
// api.md writes amounts: a JSON string of decimal digits from "0" to 2^128−1. The zero value
// is 0. There is no float anywhere: convert to and from math/big for arithmetic beyond
// Add, Sub and Cmp.
type Amount struct {
	hi, lo uint64
}

// AmountMax is 2^128−1, the largest Amount.
var AmountMax = Amount{hi: ^uint64(0), lo: ^uint64(0)}

// NewAmount returns v as an Amount.
func NewAmount(v uint64) Amount { return Amount{lo: v} }

// ErrAmountSyntax is returned when parsing anything but the canonical decimal form.
var ErrAmountSyntax = errors.New("client: amount must be decimal digits without sign, point, exponent or leading zeros")

// ErrAmountRange is returned when parsing a value beyond what the type holds.
var ErrAmountRange = errors.New("client: amount beyond 2^128-1")

// ParseAmount parses the wire form of api.md: decimal digits, no sign, point, exponent or
// leading zero (except "0" itself). For every s it accepts, the result's String is s.
func ParseAmount(s string) (Amount, error) {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return Amount{}, ErrAmountSyntax
	}
	var a Amount
	overflow := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return Amount{}, ErrAmountSyntax
		}
		if overflow {
			continue // keep checking the syntax: a bad digit later is a syntax error
		}
		var ok bool
		if a, ok = a.mulAdd10(uint64(c - '0')); !ok {
			overflow = true
		}
	}
	if overflow {
		return Amount{}, ErrAmountRange
	}
	return a, nil
}

// MustParseAmount is ParseAmount for constants; it panics if s is not a valid Amount.
func MustParseAmount(s string) Amount {
	a, err := ParseAmount(s)
	if err != nil {
		panic(fmt.Sprintf("client.MustParseAmount(%q): %v", s, err))
	}
	return a
}

// mulAdd10 returns a*10+d; ok is false if that exceeds 2^128−1.
func (a Amount) mulAdd10(d uint64) (Amount, bool) {
	hiHi, hiLo := bits.Mul64(a.hi, 10)
	loHi, loLo := bits.Mul64(a.lo, 10)
	hi, carry := bits.Add64(hiLo, loHi, 0)
	if hiHi != 0 || carry != 0 {
		return Amount{}, false
	}
	lo, carry := bits.Add64(loLo, d, 0)
	hi, carry = bits.Add64(hi, 0, carry)
	return Amount{hi: hi, lo: lo}, carry == 0
}

// String returns a in decimal, the form api.md sends.
func (a Amount) String() string { return string(a.appendDecimal(nil)) }

func (a Amount) appendDecimal(b []byte) []byte {
	if a.hi == 0 {
		return appendUint(b, a.lo)
	}
	// Split a into base-10^19 digits: at most three, since 2^128 < 10^57.
	const base = 1e19
	var parts [3]uint64
	n := 0
	for a.hi != 0 || a.lo != 0 {
		qhi, r := bits.Div64(0, a.hi, base)
		qlo, r := bits.Div64(r, a.lo, base)
		parts[n], n = r, n+1
		a = Amount{hi: qhi, lo: qlo}
	}
	b = appendUint(b, parts[n-1])
	for i := n - 2; i >= 0; i-- {
		var pad [19]byte
		d := appendUint(pad[:0], parts[i])
		for range 19 - len(d) {
			b = append(b, '0')
		}
		b = append(b, d...)
	}
	return b
}

func appendUint(b []byte, v uint64) []byte {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, buf[i:]...)
}

// IsZero reports whether a is 0.
func (a Amount) IsZero() bool { return a.hi == 0 && a.lo == 0 }

// Cmp returns -1, 0 or +1 as a is less than, equal to or greater than b.
func (a Amount) Cmp(b Amount) int {
	switch {
	case a.hi != b.hi:
		if a.hi < b.hi {
			return -1
		}
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// Add returns a+b; ok is false (and sum meaningless) if it exceeds 2^128−1.
func (a Amount) Add(b Amount) (sum Amount, ok bool) {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	hi, carry := bits.Add64(a.hi, b.hi, carry)
	return Amount{hi: hi, lo: lo}, carry == 0
}

// Sub returns a−b; ok is false (and diff meaningless) if b > a.
func (a Amount) Sub(b Amount) (diff Amount, ok bool) {
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	hi, borrow := bits.Sub64(a.hi, b.hi, borrow)
	return Amount{hi: hi, lo: lo}, borrow == 0
}

// Uint64 returns a as a uint64; ok is false if it does not fit.
func (a Amount) Uint64() (v uint64, ok bool) { return a.lo, a.hi == 0 }

// Big returns a as a new big.Int.
func (a Amount) Big() *big.Int {
	x := new(big.Int).SetUint64(a.hi)
	x.Lsh(x, 64)
	return x.Or(x, new(big.Int).SetUint64(a.lo))
}

// AmountFromBig returns x as an Amount, or ErrAmountRange if x is negative or above 2^128−1.
func AmountFromBig(x *big.Int) (Amount, error) {
	if x.Sign() < 0 || x.BitLen() > 128 {
		return Amount{}, ErrAmountRange
	}
	lo := new(big.Int).And(x, new(big.Int).SetUint64(^uint64(0))).Uint64()
	hi := new(big.Int).Rsh(x, 64).Uint64()
	return Amount{hi: hi, lo: lo}, nil
}

// MarshalText returns the decimal form (so encoding/json writes a JSON string).
func (a Amount) MarshalText() ([]byte, error) { return a.appendDecimal(nil), nil }

// UnmarshalText parses the decimal form with ParseAmount's rules.
func (a *Amount) UnmarshalText(b []byte) error {
	v, err := ParseAmount(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// MarshalJSON writes a as a JSON string of decimal digits, as api.md requires.
func (a Amount) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 42), '"')
	return append(a.appendDecimal(b), '"'), nil
}

// UnmarshalJSON reads a JSON string of decimal digits; a JSON number is an error, as it is
// for the server.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s, err := jsonString(b)
	if err != nil {
		return err
	}
	return a.UnmarshalText([]byte(s))
}

// jsonString returns the content of a JSON string holding only digits and '-' (amounts
// never need escapes).
func jsonString(b []byte) (string, error) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", fmt.Errorf("client: an amount must be a JSON string, not %.40s", b)
	}
	return string(b[1 : len(b)-1]), nil
}

// SignedAmount is a balance in minor units: from −(2^128−1) to 2^128−1. Only posted and
// available balances are signed (negative for an allow_negative account, or an available
// balance below zero); everything a client sends is an Amount. The zero value is 0.
type SignedAmount struct {
	neg bool // never true when abs is 0
	abs Amount
}

// NewSignedAmount returns abs, negated when neg is true (−0 is 0).
func NewSignedAmount(neg bool, abs Amount) SignedAmount {
	return SignedAmount{neg: neg && !abs.IsZero(), abs: abs}
}

// ParseSignedAmount parses an Amount with an optional leading '-' ("-0" is refused).
func ParseSignedAmount(s string) (SignedAmount, error) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	a, err := ParseAmount(s)
	if err != nil {
		return SignedAmount{}, err
	}
	if neg && a.IsZero() {
		return SignedAmount{}, ErrAmountSyntax
	}
	return SignedAmount{neg: neg, abs: a}, nil
}

// Neg reports whether s is below zero.
func (s SignedAmount) Neg() bool { return s.neg }

// Abs returns the magnitude of s.
func (s SignedAmount) Abs() Amount { return s.abs }

// Amount returns s as an Amount; ok is false if s is negative.
func (s SignedAmount) Amount() (a Amount, ok bool) { return s.abs, !s.neg }

// IsZero reports whether s is 0.
func (s SignedAmount) IsZero() bool { return s.abs.IsZero() }

// Cmp returns -1, 0 or +1 as s is less than, equal to or greater than t.
func (s SignedAmount) Cmp(t SignedAmount) int {
	switch {
	case s.neg && !t.neg:
		return -1
	case !s.neg && t.neg:
		return 1
	case s.neg:
		return t.abs.Cmp(s.abs)
	}
	return s.abs.Cmp(t.abs)
}

// String returns s in decimal, with a leading '-' when negative.
func (s SignedAmount) String() string { return string(s.appendDecimal(nil)) }

func (s SignedAmount) appendDecimal(b []byte) []byte {
	if s.neg {
		b = append(b, '-')
	}
	return s.abs.appendDecimal(b)
}

// Big returns s as a new big.Int.
func (s SignedAmount) Big() *big.Int {
	x := s.abs.Big()
	if s.neg {
		x.Neg(x)
	}
	return x
}

// MarshalText returns the decimal form.
func (s SignedAmount) MarshalText() ([]byte, error) { return s.appendDecimal(nil), nil }

// UnmarshalText parses the decimal form with ParseSignedAmount's rules.
func (s *SignedAmount) UnmarshalText(b []byte) error {
	v, err := ParseSignedAmount(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalJSON writes s as a JSON string.
func (s SignedAmount) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 43), '"')
	return append(s.appendDecimal(b), '"'), nil
}

// UnmarshalJSON reads a JSON string; a JSON number is an error.
func (s *SignedAmount) UnmarshalJSON(b []byte) error {
	str, err := jsonString(b)
	if err != nil {
		return err
	}
	return s.UnmarshalText([]byte(str))
}
