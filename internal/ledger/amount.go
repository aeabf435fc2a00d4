package ledger

import (
	"errors"
	"math/bits"
	"strconv"
)

// Amount is an unsigned 128-bit integer in an asset's minor units. The zero value is 0.
// Arithmetic is checked: Add and Sub report overflow instead of wrapping.
type Amount struct {
	hi, lo uint64
}

// AmountMax is 2^128−1, the largest Amount.
var AmountMax = Amount{hi: ^uint64(0), lo: ^uint64(0)}

// AmountFromUint64 returns v as an Amount.
func AmountFromUint64(v uint64) Amount { return Amount{lo: v} }

// AmountFromParts returns hi·2^64 + lo.
func AmountFromParts(hi, lo uint64) Amount { return Amount{hi: hi, lo: lo} }

// Parts returns the high and low 64 bits of a.
func (a Amount) Parts() (hi, lo uint64) { return a.hi, a.lo }

// IsZero reports whether a is 0.
func (a Amount) IsZero() bool { return a.hi == 0 && a.lo == 0 }

// Cmp returns -1, 0 or +1 as a is less than, equal to or greater than b.
func (a Amount) Cmp(b Amount) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

// Add returns a+b; ok is false (and the sum meaningless) if it exceeds 2^128−1.
func (a Amount) Add(b Amount) (sum Amount, ok bool) {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	hi, carry := bits.Add64(a.hi, b.hi, carry)
	return Amount{hi: hi, lo: lo}, carry == 0
}

// Sub returns a−b; ok is false (and the difference meaningless) if b > a.
func (a Amount) Sub(b Amount) (diff Amount, ok bool) {
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	hi, borrow := bits.Sub64(a.hi, b.hi, borrow)
	return Amount{hi: hi, lo: lo}, borrow == 0
}

// Min returns the smaller of a and b.
func (a Amount) Min(b Amount) Amount {
	if a.Cmp(b) <= 0 {
		return a
	}
	return b
}

// ErrAmountSyntax is returned by ParseAmount for anything but the canonical decimal form.
var ErrAmountSyntax = errors.New("amount must be a string of decimal digits without sign, point, exponent or leading zeros")

// ErrAmountRange is returned by ParseAmount for a value above 2^128−1.
var ErrAmountRange = errors.New("amount exceeds 2^128-1")

// ParseAmount parses the api.md wire form: decimal digits, no sign, no point, no exponent,
// no leading zeros except "0" itself. For every s it accepts, ParseAmount(s).String() == s.
func ParseAmount(s string) (Amount, error) {
	if len(s) == 0 || len(s) > 39 { // 2^128−1 has 39 digits
		if len(s) > 39 && allDigits(s) && s[0] != '0' {
			return Amount{}, ErrAmountRange
		}
		return Amount{}, ErrAmountSyntax
	}
	if s[0] == '0' && len(s) > 1 {
		return Amount{}, ErrAmountSyntax
	}
	var a Amount
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return Amount{}, ErrAmountSyntax
		}
		// a = a*10 + d, checked.
		hiHi, hiLo := bits.Mul64(a.hi, 10)
		loHi, loLo := bits.Mul64(a.lo, 10)
		hi, carry := bits.Add64(hiLo, loHi, 0)
		if hiHi != 0 || carry != 0 {
			return Amount{}, rangeOrSyntax(s[i+1:])
		}
		var ok bool
		a, ok = Amount{hi: hi, lo: loLo}.Add(AmountFromUint64(uint64(c - '0')))
		if !ok {
			return Amount{}, rangeOrSyntax(s[i+1:])
		}
	}
	return a, nil
}

func rangeOrSyntax(rest string) error {
	if allDigits(rest) {
		return ErrAmountRange
	}
	return ErrAmountSyntax
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String returns a in decimal, the api.md wire form.
func (a Amount) String() string {
	var buf [40]byte
	return string(a.AppendDecimal(buf[:0]))
}

// AppendDecimal appends a in decimal to dst.
func (a Amount) AppendDecimal(dst []byte) []byte {
	if a.hi == 0 {
		return strconv.AppendUint(dst, a.lo, 10)
	}
	// Divide by 10^19 (the largest power of ten below 2^64) until the value fits in 64 bits.
	const e19 = 10_000_000_000_000_000_000
	var parts [3]uint64
	n := 0
	for a.hi != 0 {
		qhi := a.hi / e19
		r := a.hi % e19
		qlo, rem := bits.Div64(r, a.lo, e19)
		parts[n] = rem
		n++
		a = Amount{hi: qhi, lo: qlo}
	}
	dst = strconv.AppendUint(dst, a.lo, 10)
	for i := n - 1; i >= 0; i-- {
		var tmp [19]byte
		v := parts[i]
		for j := 18; j >= 0; j-- {
			tmp[j] = byte('0' + v%10)
			v /= 10
		}
		dst = append(dst, tmp[:]...)
	}
	return dst
}

// Balance is a signed 129-bit value: credits minus debits of an account. Only accounts with
// allow_negative may hold a negative Balance.
type Balance struct {
	Neg bool   // true when the value is below zero; never true with a zero Mag
	Mag Amount // the absolute value
}

// BalanceOf returns credits − debits.
func BalanceOf(credits, debits Amount) Balance {
	if credits.Cmp(debits) >= 0 {
		d, _ := credits.Sub(debits)
		return Balance{Mag: d}
	}
	d, _ := debits.Sub(credits)
	return Balance{Neg: true, Mag: d}
}

// String returns b in decimal with a leading '-' when negative.
func (b Balance) String() string {
	var buf [41]byte
	return string(b.AppendDecimal(buf[:0]))
}

// AppendDecimal appends b in decimal, '-' first when negative.
func (b Balance) AppendDecimal(dst []byte) []byte {
	if b.Neg {
		dst = append(dst, '-')
	}
	return b.Mag.AppendDecimal(dst)
}

// ParseBalance parses the signed form String prints.
func ParseBalance(s string) (Balance, error) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	a, err := ParseAmount(s)
	if err != nil {
		return Balance{}, err
	}
	if neg && a.IsZero() {
		return Balance{}, ErrAmountSyntax
	}
	return Balance{Neg: neg, Mag: a}, nil
}

// Sub returns b − a for a non-negative a; ok is false if the result's magnitude would pass
// 2^128−1.
func (b Balance) Sub(a Amount) (Balance, bool) {
	if b.Neg {
		m, ok := b.Mag.Add(a)
		return Balance{Neg: true, Mag: m}, ok
	}
	if b.Mag.Cmp(a) >= 0 {
		m, _ := b.Mag.Sub(a)
		return Balance{Mag: m}, true
	}
	m, _ := a.Sub(b.Mag)
	return Balance{Neg: true, Mag: m}, true
}
