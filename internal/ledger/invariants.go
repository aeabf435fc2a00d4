package ledger

import "fmt"

// CheckInvariants checks the whole-state invariants: per asset, posted balances sum to zero
// and pending debits equal pending credits; no account without AllowNegative is below zero;
// every hold's accounts have pending totals covering it. It costs a pass over every account
// and hold, so the engine runs it only with invariants enabled; tests run it after every batch.
func (s *State) CheckInvariants() error {
	totals := map[string]*[4]wide{}
	for _, a := range s.accounts {
		t := totals[a.Asset]
		if t == nil {
			t = new([4]wide)
			totals[a.Asset] = t
		}
		t[0].add(a.DebitsPosted)
		t[1].add(a.CreditsPosted)
		t[2].add(a.DebitsPending)
		t[3].add(a.CreditsPending)
		if !a.AllowNegative && !covers(a, Amount{}) {
			return fmt.Errorf("account %s has a negative available balance", a.ID)
		}
	}
	for asset, t := range totals {
		if t[0] != t[1] {
			return fmt.Errorf("asset %s: posted debits and credits differ", asset)
		}
		if t[2] != t[3] {
			return fmt.Errorf("asset %s: pending debits and credits differ", asset)
		}
	}
	held := map[string]*[2]wide{}
	for _, h := range s.holds {
		if h.Status != TransferPending {
			return fmt.Errorf("hold %s is %s", h.ID, h.Status)
		}
		if h.AmountPosted.Cmp(h.Amount) > 0 {
			return fmt.Errorf("hold %s posted more than it authorised", h.ID)
		}
		for i, id := range []string{h.Source, h.Destination} {
			w := held[id]
			if w == nil {
				w = new([2]wide)
				held[id] = w
			}
			w[i].add(h.Held())
		}
		if _, ok := s.recent[h.ID]; ok {
			return fmt.Errorf("transfer %s is both pending and finished", h.ID)
		}
	}
	for _, a := range s.accounts {
		w := held[a.ID]
		if w == nil {
			w = new([2]wide)
		}
		if w[0] != (wide{lo: a.DebitsPending}) || w[1] != (wide{lo: a.CreditsPending}) {
			return fmt.Errorf("account %s: pending totals differ from its holds", a.ID)
		}
	}
	return nil
}

// wide is a 192-bit sum of Amounts, enough for 2^64 accounts.
type wide struct {
	hi uint64
	lo Amount
}

func (w *wide) add(a Amount) {
	s, ok := w.lo.Add(a)
	w.lo = s
	if !ok {
		w.hi++
	}
}
