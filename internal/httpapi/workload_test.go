package httpapi_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var workloadSeed = flag.Uint64("workload-seed", 0, "seed of TestConcurrentWorkload (0: from the clock)")

// TestConcurrentWorkload runs random transfers, holds, posts, increases and voids from 16
// goroutines among 20 accounts of two assets, then checks the invariants over the API:
// every asset's balances sum to zero, no account that may not go negative is below zero,
// pending totals match the holds, every transfer answered 201 is listed exactly once, and
// the journal rebuilds every account.
func TestConcurrentWorkload(t *testing.T) {
	seed := *workloadSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -workload-seed=%d)", seed, seed)
	s := newStack(t)
	spec(t) // parse openapi.yaml before the goroutines check answers against it

	type acct struct{ id, asset string }
	var accts []acct
	for _, asset := range []string{"USD", "EUR"} {
		treasury := "treasury-" + asset
		s.openAccount(t, treasury, asset, true)
		accts = append(accts, acct{treasury, asset})
		for i := range 9 {
			id := fmt.Sprintf("user-%s-%d", asset, i)
			s.openAccount(t, id, asset, false)
			s.pay(t, treasury, id, "5000")
			accts = append(accts, acct{id, asset})
		}
	}
	allowNegative := map[string]bool{"treasury-USD": true, "treasury-EUR": true}

	var (
		mu      sync.Mutex
		created = map[string]int{} // transfer id → times answered 201
		holds   []string           // pending holds anyone may post, increase or void
	)
	for _, tr := range all[transfer](t, s, s.admin, "/v1/transfers", 1000) {
		created[tr.ID]++
	}
	const workers, opsEach = 16, 120
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for range opsEach {
				var r reply
				var err error
				mu.Lock()
				var hold string
				if len(holds) > 0 {
					hold = holds[rng.IntN(len(holds))]
				}
				mu.Unlock()
				amount := fmt.Sprint(1 + rng.IntN(3000))
				op := rng.IntN(10)
				if hold == "" && op >= 6 {
					op = 0
				}
				switch op {
				case 0, 1, 2, 3, 4, 5:
					src, dst := accts[rng.IntN(len(accts))], accts[rng.IntN(len(accts))]
					if rng.IntN(8) > 0 { // mostly within one asset
						for dst.asset != src.asset {
							dst = accts[rng.IntN(len(accts))]
						}
					}
					body := map[string]any{"source": src.id, "destination": dst.id, "amount": amount}
					if op >= 4 {
						body["hold"] = map[string]any{"timeout_seconds": []int{0, 600}[rng.IntN(2)]}
					}
					r, err = s.send("POST", "/v1/transfers", s.admin, body)
				case 6, 7:
					body := map[string]any{}
					switch rng.IntN(3) {
					case 0:
						body["amount"] = fmt.Sprint(1 + rng.IntN(500))
						body["final"] = false
					case 1:
						body["amount"] = fmt.Sprint(1 + rng.IntN(500))
					}
					r, err = s.send("POST", "/v1/transfers/"+hold+"/post", s.admin, body)
				case 8:
					r, err = s.send("POST", "/v1/transfers/"+hold+"/increase", s.admin, map[string]any{"amount": amount})
				case 9:
					r, err = s.send("POST", "/v1/transfers/"+hold+"/void", s.admin, nil)
				}
				if err != nil {
					t.Error(err)
					return
				}
				checkReply(t, r)
				switch r.Status {
				case 200, 201, 404, 409, 422:
				default:
					t.Errorf("unexpected answer: %s", r)
					continue
				}
				if r.Status == 201 {
					var tr transfer
					if err := json.Unmarshal(r.Body, &tr); err != nil {
						t.Error(err)
						continue
					}
					mu.Lock()
					created[tr.ID]++
					if tr.Status == "pending" {
						holds = append(holds, tr.ID)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every transfer answered 201 is listed exactly once, and nothing else is.
	listed := map[string]int{}
	transfers := all[transfer](t, s, s.admin, "/v1/transfers", 97)
	for _, tr := range transfers {
		listed[tr.ID]++
	}
	for id, n := range created {
		if n != 1 {
			t.Errorf("transfer %s was answered 201 %d times", id, n)
		}
		if listed[id] != 1 {
			t.Errorf("transfer %s (201) is listed %d times", id, listed[id])
		}
	}
	for id, n := range listed {
		if created[id] == 0 || n != 1 {
			t.Errorf("transfer %s is listed %d times but was created %d times", id, n, created[id])
		}
	}

	// Balances: per asset the posted balances sum to zero, pending debits equal pending
	// credits, and each account's pending debits are what its pending holds still hold.
	held := map[string]*big.Int{}
	heldIn := map[string]*big.Int{}
	for _, tr := range transfers {
		if tr.Status != "pending" {
			continue
		}
		rest := new(big.Int).Sub(bigOf(t, tr.Amount), bigOf(t, tr.AmountPosted))
		held[tr.Source] = new(big.Int).Add(orZero(held[tr.Source]), rest)
		heldIn[tr.Destination] = new(big.Int).Add(orZero(heldIn[tr.Destination]), rest)
	}
	sum := map[string]*big.Int{}
	pd, pc := map[string]*big.Int{}, map[string]*big.Int{}
	accounts := all[account](t, s, s.admin, "/v1/accounts", 7)
	if len(accounts) != len(accts) {
		t.Errorf("%d accounts listed, want %d", len(accounts), len(accts))
	}
	for _, a := range accounts {
		for _, m := range []map[string]*big.Int{sum, pd, pc} {
			if m[a.Asset] == nil {
				m[a.Asset] = new(big.Int)
			}
		}
		posted, avail := bigOf(t, a.Balance.Posted), bigOf(t, a.Balance.Available)
		debits, credits := bigOf(t, a.DebitsPosted), bigOf(t, a.CreditsPosted)
		pending := bigOf(t, a.Balance.PendingDebits)
		sum[a.Asset].Add(sum[a.Asset], posted)
		pd[a.Asset].Add(pd[a.Asset], pending)
		pc[a.Asset].Add(pc[a.Asset], bigOf(t, a.Balance.PendingCredits))
		if new(big.Int).Sub(credits, debits).Cmp(posted) != 0 || new(big.Int).Sub(posted, pending).Cmp(avail) != 0 {
			t.Errorf("account %s: inconsistent balance %+v", a.ID, a)
		}
		if !allowNegative[a.ID] && (posted.Sign() < 0 || avail.Sign() < 0) {
			t.Errorf("account %s went below zero: %+v", a.ID, a.Balance)
		}
		if want := orZero(held[a.ID]); pending.Cmp(want) != 0 {
			t.Errorf("account %s: pending_debits %s, its holds hold %s", a.ID, pending, want)
		}
		if want := orZero(heldIn[a.ID]); bigOf(t, a.Balance.PendingCredits).Cmp(want) != 0 {
			t.Errorf("account %s: pending_credits %s, holds to it hold %s", a.ID, a.Balance.PendingCredits, want)
		}
	}
	for asset := range sum {
		if sum[asset].Sign() != 0 {
			t.Errorf("%s: balances sum to %s, want 0", asset, sum[asset])
		}
		if pd[asset].Cmp(pc[asset]) != 0 {
			t.Errorf("%s: pending debits %s, pending credits %s", asset, pd[asset], pc[asset])
		}
	}
	t.Logf("%d transfers, %d holds", len(created), len(holds))
	checkRebuild(t, s, readJournal(t, s, s.admin, 1000))
}

func orZero(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	return v
}
