package lincheck

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Op is the kind of an operation.
type Op uint8

// The operations of a history.
const (
	OpCreate       Op = iota + 1 // POST /v1/transfers with a client id
	OpPost                       // POST /v1/transfers/{id}/post
	OpVoid                       // POST /v1/transfers/{id}/void
	OpReadAccount                // GET /v1/accounts/{id}
	OpReadTransfer               // GET /v1/transfers/{id}
)

// Input is an operation as the client invoked it. Accounts and transfers are named by their
// index within the group; ID is the transfer's id, for descriptions only.
type Input struct {
	Op       Op
	Group    int    // the partition: groups share no account and no transfer
	Transfer int    // OpCreate, OpPost, OpVoid, OpReadTransfer: the transfer's index, ≥ 0
	ID       string // the transfer's id, shown in failures
	Source   int    // OpCreate
	Dest     int    // OpCreate: the destination
	Account  int    // OpReadAccount
	Amount   int64  // OpCreate: > 0; OpPost: 0 posts all that is still held
	Hold     bool   // OpCreate: a pending transfer that never expires
	NotFinal bool   // OpPost: "final": false, the rest stays held
}

// Outcome says what the client learnt of an operation.
type Outcome uint8

// The outcomes.
const (
	OK       Outcome = iota + 1 // a 2xx answer
	Rejected                    // a 4xx answer with Code
	Unknown                     // no answer, or a 5xx: it may or may not have taken effect
)

// Status is a transfer's status; StatusNone means there is no such transfer.
type Status uint8

// The statuses of api.md. The model never produces StatusExpired (histories use holds
// without a timeout), so a server answering it fails the check.
const (
	StatusNone Status = iota
	StatusPending
	StatusPosted
	StatusVoided
	StatusExpired
	statusInvalid
)

var statusNames = [...]string{"none", "pending", "posted", "voided", "expired", "invalid"}

func (s Status) String() string { return statusNames[min(int(s), len(statusNames)-1)] }

// ParseStatus returns the Status of an api.md status string; any other string gives a
// Status that no model state has.
func ParseStatus(s string) Status {
	for i, n := range statusNames[StatusPending:StatusExpired] {
		if n == s {
			return Status(i) + StatusPending
		}
	}
	if s == "expired" {
		return StatusExpired
	}
	return statusInvalid
}

// Transfer is what an answer says of a transfer.
type Transfer struct {
	Status       Status
	Amount       int64
	AmountPosted int64
}

// Balance is an account's four totals; posted = CreditsPosted − DebitsPosted and
// available = posted − DebitsPending.
type Balance struct {
	DebitsPosted, CreditsPosted, DebitsPending, CreditsPending int64
}

// Output is what the client learnt. Only the fields that the operation and outcome give
// are compared: Code when Rejected; Created (201, not 200) for OpCreate; Transfer for OK
// transfer operations; Balance for an OK OpReadAccount.
type Output struct {
	Outcome  Outcome
	Code     ledger.Code
	Created  bool
	Transfer Transfer
	Balance  Balance
}

// Account is one account of a group as the history starts.
type Account struct {
	AllowNegative bool
	Balance       Balance
}

// state is one group's ledger. Step never changes a state: it copies what it changes.
type state struct {
	accounts  []Balance
	transfers []transfer // by index; missing and StatusNone entries are transfers not created
}

type transfer struct {
	status   Status
	src, dst int
	hold     bool  // created as a hold
	amount   int64 // authorised
	posted   int64 // amount_posted
}

func (t transfer) view() Transfer {
	return Transfer{Status: t.status, Amount: t.amount, AmountPosted: t.posted}
}

func (s *state) transfer(i int) transfer {
	if i < len(s.transfers) {
		return s.transfers[i]
	}
	return transfer{}
}

// with returns a copy of s in which transfer i is t and the accounts are changed by f.
func (s *state) with(i int, t transfer, f func(a []Balance)) *state {
	n := &state{accounts: slices.Clone(s.accounts),
		transfers: make([]transfer, max(len(s.transfers), i+1))}
	copy(n.transfers, s.transfers)
	n.transfers[i] = t
	f(n.accounts)
	return n
}

// Model returns the porcupine model of a ledger whose every group starts with the accounts
// of start (indexes 0 … len(start)−1) and no transfer. Its states are sets of ledger states
// (porcupine.NondeterministicModel): an operation with an Unknown outcome leads to both the
// state where it took effect and the one where it did not.
func Model(start []Account) porcupine.Model {
	start = slices.Clone(start)
	nm := porcupine.NondeterministicModel{
		Partition: partition,
		Init:      func() []any { return []any{initial(start)} },
		Step: func(st, in, out any) []any {
			next := step(start, st.(*state), in.(Input), out.(Output))
			states := make([]any, len(next))
			for i, n := range next {
				states[i] = n
			}
			return states
		},
		Equal: func(a, b any) bool { return equal(a.(*state), b.(*state)) },
		Hash:  func(s any) uint64 { return hash(s.(*state)) },
		DescribeOperation: func(in, out any) string {
			return DescribeInput(in.(Input)) + " → " + DescribeOutput(in.(Input), out.(Output))
		},
		DescribeState: func(s any) string { return describeState(s.(*state)) },
	}
	return nm.ToModel()
}

func initial(start []Account) *state {
	s := &state{accounts: make([]Balance, len(start))}
	for i, a := range start {
		s.accounts[i] = a.Balance
	}
	return s
}

// step is the sequential specification: the states that s may be in after in answered got
// (none if the ledger would answer otherwise). An Unknown output is accepted whatever the
// answer would be, as applied or not.
func step(start []Account, s *state, in Input, got Output) []*state {
	want, next := apply(start, s, in)
	switch {
	case got.Outcome == Unknown && next != s:
		return []*state{next, s}
	case got.Outcome == Unknown || normalize(in, got) == want:
		return []*state{next}
	}
	return nil
}

// apply gives the answer the ledger gives to in at s and the state after it (s itself when
// nothing changes). It mirrors ledger.State.Apply for the requests a history sends.
func apply(start []Account, s *state, in Input) (Output, *state) {
	reject := func(c ledger.Code) (Output, *state) { return Output{Outcome: Rejected, Code: c}, s }
	switch in.Op {
	case OpCreate:
		if !validAccount(start, in.Source) || !validAccount(start, in.Dest) || in.Amount <= 0 {
			return reject(ledger.CodeInvalidRequest)
		}
		if t := s.transfer(in.Transfer); t.status != StatusNone {
			if t.src != in.Source || t.dst != in.Dest || t.amount != in.Amount || t.hold != in.Hold {
				return reject(ledger.CodeTransferExists)
			}
			return Output{Outcome: OK, Transfer: t.view()}, s // a retry: 200, nothing changes
		}
		if in.Source == in.Dest {
			return reject(ledger.CodeSameAccount)
		}
		src := s.accounts[in.Source]
		if !start[in.Source].AllowNegative && src.CreditsPosted-src.DebitsPosted-src.DebitsPending < in.Amount {
			return reject(ledger.CodeInsufficientFunds)
		}
		t := transfer{status: StatusPosted, src: in.Source, dst: in.Dest, hold: in.Hold,
			amount: in.Amount, posted: in.Amount}
		if in.Hold {
			t.status, t.posted = StatusPending, 0
		}
		n := s.with(in.Transfer, t, func(a []Balance) {
			if in.Hold {
				a[t.src].DebitsPending += t.amount
				a[t.dst].CreditsPending += t.amount
			} else {
				a[t.src].DebitsPosted += t.amount
				a[t.dst].CreditsPosted += t.amount
			}
		})
		return Output{Outcome: OK, Created: true, Transfer: t.view()}, n
	case OpPost, OpVoid:
		t := s.transfer(in.Transfer)
		switch t.status {
		case StatusNone:
			return reject(ledger.CodeTransferNotFound)
		case StatusPending:
		default:
			return reject(ledger.CodeTransferNotPending)
		}
		held := t.amount - t.posted
		amount, release := int64(0), held // a void posts nothing and releases all
		if in.Op == OpPost {
			amount = held
			if in.Amount != 0 {
				amount = in.Amount
			} else if in.NotFinal {
				return reject(ledger.CodeInvalidRequest) // final false needs an amount
			}
			if amount <= 0 {
				return reject(ledger.CodeInvalidRequest)
			}
			if amount > held {
				return reject(ledger.CodeAmountExceedsHold)
			}
			if in.NotFinal {
				release = amount
			}
		}
		nt := t
		nt.posted += amount
		switch {
		case in.Op == OpVoid:
			nt.status = StatusVoided
		case !in.NotFinal:
			nt.status = StatusPosted
		}
		n := s.with(in.Transfer, nt, func(a []Balance) {
			a[t.src].DebitsPosted += amount
			a[t.dst].CreditsPosted += amount
			a[t.src].DebitsPending -= release
			a[t.dst].CreditsPending -= release
		})
		return Output{Outcome: OK, Transfer: nt.view()}, n
	case OpReadAccount:
		if !validAccount(start, in.Account) {
			return reject(ledger.CodeAccountNotFound)
		}
		return Output{Outcome: OK, Balance: s.accounts[in.Account]}, s
	case OpReadTransfer:
		t := s.transfer(in.Transfer)
		if t.status == StatusNone {
			return reject(ledger.CodeTransferNotFound)
		}
		return Output{Outcome: OK, Transfer: t.view()}, s
	}
	return reject(ledger.CodeInvalidRequest)
}

func validAccount(start []Account, i int) bool { return i >= 0 && i < len(start) }

// normalize keeps the fields of o that the operation and outcome give.
func normalize(in Input, o Output) Output {
	n := Output{Outcome: o.Outcome}
	switch {
	case o.Outcome == Rejected:
		n.Code = o.Code
	case in.Op == OpReadAccount:
		n.Balance = o.Balance
	default:
		n.Transfer = o.Transfer
		n.Created = in.Op == OpCreate && o.Created
	}
	return n
}

func equal(a, b *state) bool {
	if !slices.Equal(a.accounts, b.accounts) {
		return false
	}
	for i := range max(len(a.transfers), len(b.transfers)) {
		if a.transfer(i) != b.transfer(i) {
			return false
		}
	}
	return true
}

// hash agrees with equal: it skips transfers not created, wherever the slice ends.
func hash(s *state) uint64 {
	h := uint64(14695981039346656037)
	mix := func(x int64) {
		h ^= uint64(x)
		h *= 1099511628211
		h ^= h >> 31
	}
	for _, a := range s.accounts {
		mix(a.DebitsPosted)
		mix(a.CreditsPosted)
		mix(a.DebitsPending)
		mix(a.CreditsPending)
	}
	for i, t := range s.transfers {
		if t.status != StatusNone {
			hold := int64(0)
			if t.hold {
				hold = 1
			}
			mix(int64(i)<<8 | int64(t.status)<<1 | hold)
			mix(int64(t.src)<<32 | int64(t.dst))
			mix(t.amount)
			mix(t.posted)
		}
	}
	return h
}

// DescribeInput renders in for failure reports: "create t-3 a0→a1 50 hold".
func DescribeInput(in Input) string {
	switch in.Op {
	case OpCreate:
		s := fmt.Sprintf("create %s a%d→a%d %d", in.ID, in.Source, in.Dest, in.Amount)
		if in.Hold {
			s += " hold"
		}
		return s
	case OpPost:
		amount := "all"
		if in.Amount != 0 {
			amount = strconv.FormatInt(in.Amount, 10)
		}
		if in.NotFinal {
			amount += " not final"
		}
		return fmt.Sprintf("post %s %s", in.ID, amount)
	case OpVoid:
		return "void " + in.ID
	case OpReadAccount:
		return fmt.Sprintf("read a%d", in.Account)
	case OpReadTransfer:
		return "read " + in.ID
	}
	return fmt.Sprintf("op %d", in.Op)
}

// DescribeOutput renders what the client learnt of in.
func DescribeOutput(in Input, o Output) string {
	switch o.Outcome {
	case Unknown:
		return "unknown"
	case Rejected:
		return string(o.Code)
	}
	switch in.Op {
	case OpReadAccount:
		return describeBalance(o.Balance)
	case OpCreate:
		code := "200 "
		if o.Created {
			code = "201 "
		}
		return code + describeTransfer(o.Transfer)
	}
	return describeTransfer(o.Transfer)
}

func describeTransfer(t Transfer) string {
	return fmt.Sprintf("%s amount=%d amount_posted=%d", t.Status, t.Amount, t.AmountPosted)
}

func describeBalance(b Balance) string {
	return fmt.Sprintf("debits_posted=%d credits_posted=%d pending_debits=%d pending_credits=%d",
		b.DebitsPosted, b.CreditsPosted, b.DebitsPending, b.CreditsPending)
}

func describeState(s *state) string {
	var b strings.Builder
	for i, a := range s.accounts {
		fmt.Fprintf(&b, "a%d: %s\n", i, describeBalance(a))
	}
	for i, t := range s.transfers {
		if t.status != StatusNone {
			fmt.Fprintf(&b, "#%d a%d→a%d %s\n", i, t.src, t.dst, describeTransfer(t.view()))
		}
	}
	return b.String()
}

// partition splits a history by group, in group order.
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	byGroup := map[int][]porcupine.Operation{}
	for _, op := range history {
		g := op.Input.(Input).Group
		byGroup[g] = append(byGroup[g], op)
	}
	groups := make([]int, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, cmp.Compare)
	out := make([][]porcupine.Operation, len(groups))
	for i, g := range groups {
		out[i] = byGroup[g]
	}
	return out
}
