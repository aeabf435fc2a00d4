package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpwallet verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", envOr("TPWALLET_DATA", "data"), "Pebble data directory (env TPWALLET_DATA)")
	storeURL := fs.String("store", envOr("TPWALLET_STORE", ""), storeFlagHelp)
	quiet := fs.Bool("quiet", envBool("TPWALLET_VERIFY_QUIET"), "no progress line (env TPWALLET_VERIFY_QUIET)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	st, err := openStore(ctx, *storeURL, *dataDir, nil)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer st.Close()
	progress := stderr
	if *quiet {
		progress = io.Discard
	}
	sum, err := verifyStore(ctx, st, progress)
	if err != nil {
		return fmt.Errorf("verify: FAILED: %w", err)
	}
	printSummary(stdout, sum)
	return nil
}

// verifySummary is what verify found in a sound data directory.
type verifySummary struct {
	journal.Summary
	Entries uint64
	Elapsed time.Duration
}

// verifyStore replays the journal, checking every hash and link, rebuilds every balance, and
// compares the rebuild with the stored accounts, pending holds and entries.
func verifyStore(ctx context.Context, st backend, progress io.Writer) (verifySummary, error) {
	start := time.Now()
	head, err := st.Head(ctx)
	if err != nil {
		return verifySummary{}, err
	}
	v := journal.NewVerifier()
	entries := map[string]uint64{} // entries each account should have
	last := time.Now()
	// Two stages on two cores: decoding and hashing each record (independent of the
	// others) runs ahead of the replay, which must go in order.
	type hashed struct {
		r  *journal.Record
		ok bool
	}
	records := make(chan hashed, 256)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() {
		defer close(records)
		readErr <- st.EachRecord(rctx, func(r *journal.Record) error {
			select {
			case records <- hashed{r: r, ok: journal.RecordHash(r) == r.Hash}:
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		})
	}()
	for h := range records {
		r := h.r
		if h.ok {
			err = v.AddHashed(r)
		} else {
			err = v.Add(r) // reports the mismatch as the Verifier words it
		}
		if err != nil {
			cancel()
			for range records {
			}
			break
		}
		for i := range r.Changes {
			for _, e := range journal.Entries(&r.Changes[i]) {
				entries[e.Account]++
			}
		}
		if now := time.Now(); now.Sub(last) > time.Second {
			last = now
			s := v.Summary()
			fmt.Fprintf(progress, "\rreplaying: record %d of %d (%.0f%%), %d transfers, %.0f transfers/s ",
				r.Seq, head.Seq, 100*float64(r.Seq)/float64(max(head.Seq, 1)), s.TransfersCreated,
				float64(s.TransfersCreated)/now.Sub(start).Seconds())
		}
	}
	if rerr := <-readErr; err == nil && rerr != nil {
		err = rerr
	}
	if !last.Equal(start) {
		fmt.Fprintln(progress)
	}
	if err != nil {
		return verifySummary{}, err
	}
	if err := v.Finish(); err != nil {
		return verifySummary{}, err
	}
	if got := v.Head(); got != head {
		return verifySummary{}, fmt.Errorf("the journal ends at record %d but the store's head is %d", got.Seq, head.Seq)
	}
	if err := compareAccounts(ctx, st, v); err != nil {
		return verifySummary{}, err
	}
	if err := compareHolds(ctx, st, v); err != nil {
		return verifySummary{}, err
	}
	n, err := compareEntries(ctx, st, v, entries)
	if err != nil {
		return verifySummary{}, err
	}
	return verifySummary{Summary: v.Summary(), Entries: n, Elapsed: time.Since(start)}, nil
}

func compareAccounts(ctx context.Context, st backend, v *journal.Verifier) error {
	rebuilt := v.Accounts()
	seen := 0
	err := st.EachAccount(ctx, func(a *ledger.Account) error {
		want, ok := rebuilt[a.ID]
		if !ok {
			return fmt.Errorf("account %s is stored but no journal record created it", a.ID)
		}
		seen++
		switch {
		case a.DebitsPosted != want.DebitsPosted || a.CreditsPosted != want.CreditsPosted:
			return fmt.Errorf("account %s: stored posted balance %s, the journal gives %s", a.ID, a.Posted(), want.Posted())
		case a.DebitsPending != want.DebitsPending || a.CreditsPending != want.CreditsPending:
			return fmt.Errorf("account %s: stored pending debits/credits %s/%s, the journal gives %s/%s", a.ID,
				a.DebitsPending, a.CreditsPending, want.DebitsPending, want.CreditsPending)
		case a.Status != want.Status || a.Asset != want.Asset || a.AllowNegative != want.AllowNegative:
			return fmt.Errorf("account %s: stored status/asset/allow_negative differ from the journal", a.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(rebuilt) {
		return fmt.Errorf("the journal creates %d accounts but %d are stored", len(rebuilt), seen)
	}
	return nil
}

func compareHolds(ctx context.Context, st backend, v *journal.Verifier) error {
	holds := v.Holds()
	seen := 0
	err := st.EachPending(ctx, func(id string) error {
		want, ok := holds[id]
		if !ok {
			return fmt.Errorf("transfer %s is stored as pending but the journal finished it or never made it", id)
		}
		seen++
		t, err := st.Transfer(ctx, id)
		if err != nil {
			return fmt.Errorf("pending transfer %s: %w", id, err)
		}
		if t.Status != want.Status || t.Amount != want.Amount || t.AmountPosted != want.AmountPosted {
			return fmt.Errorf("pending transfer %s: stored %s %s/%s, the journal gives %s %s/%s", id,
				t.Status, t.AmountPosted, t.Amount, want.Status, want.AmountPosted, want.Amount)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(holds) {
		return fmt.Errorf("the journal leaves %d holds pending but %d are stored", len(holds), seen)
	}
	return nil
}

// compareEntries checks each account's stored entries: as many as the journal made, each
// posted_after following from the one before, and adding up to the rebuilt balance.
func compareEntries(ctx context.Context, st backend, v *journal.Verifier, want map[string]uint64) (uint64, error) {
	rebuilt := v.Accounts()
	type acc struct {
		id              string
		n               uint64
		debits, credits ledger.Amount
		after           ledger.Balance
	}
	var cur acc
	var total uint64
	finish := func() error {
		if cur.id == "" {
			return nil
		}
		a := rebuilt[cur.id]
		switch {
		case a == nil:
			return fmt.Errorf("entries are stored for account %s, which the journal never created", cur.id)
		case cur.n != want[cur.id]:
			return fmt.Errorf("account %s: %d entries stored, the journal made %d", cur.id, cur.n, want[cur.id])
		case cur.debits != a.DebitsPosted || cur.credits != a.CreditsPosted:
			return fmt.Errorf("account %s: entries add up to debits %s credits %s, the journal gives %s %s",
				cur.id, cur.debits, cur.credits, a.DebitsPosted, a.CreditsPosted)
		case cur.after != a.Posted():
			return fmt.Errorf("account %s: last entry's posted_after %s, balance %s", cur.id, cur.after, a.Posted())
		}
		delete(want, cur.id)
		return nil
	}
	err := st.EachEntry(ctx, "", func(e journal.Entry) error {
		if e.Account != cur.id {
			if err := finish(); err != nil {
				return err
			}
			cur = acc{id: e.Account}
		}
		cur.n++
		total++
		var ok bool
		var next ledger.Balance
		if e.Direction == journal.Debit {
			cur.debits, ok = cur.debits.Add(e.Amount)
			next, _ = cur.after.Sub(e.Amount)
		} else {
			cur.credits, ok = cur.credits.Add(e.Amount)
			next = addBalance(cur.after, e.Amount)
		}
		if !ok || next != e.PostedAfter {
			return fmt.Errorf("account %s: entry of transfer %s has posted_after %s, the entries before give %s",
				e.Account, e.TransferID, e.PostedAfter, next)
		}
		cur.after = next
		return nil
	})
	if err == nil {
		err = finish()
	}
	if err != nil {
		return 0, err
	}
	for id, n := range want {
		if n > 0 {
			return 0, fmt.Errorf("account %s: the journal made %d entries, none are stored", id, n)
		}
	}
	return total, nil
}

// addBalance returns b + a.
func addBalance(b ledger.Balance, a ledger.Amount) ledger.Balance {
	if !b.Neg {
		m, _ := b.Mag.Add(a)
		return ledger.Balance{Mag: m}
	}
	if b.Mag.Cmp(a) > 0 {
		m, _ := b.Mag.Sub(a)
		return ledger.Balance{Neg: true, Mag: m}
	}
	m, _ := a.Sub(b.Mag)
	return ledger.Balance{Mag: m}
}

func printSummary(w io.Writer, s verifySummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "journal\tok: %d records, head %d %s\n", s.Records, s.Head.Seq, s.Head.Hash)
	fmt.Fprintf(tw, "transfers\t%d created, %d pending holds\n", s.TransfersCreated, s.Holds)
	fmt.Fprintf(tw, "accounts\t%d, %d entries, all balances and entries match the journal\n", s.Accounts, s.Entries)
	secs := s.Elapsed.Seconds()
	fmt.Fprintf(tw, "time\t%.3fs (%.0f transfers/s)\n", secs, float64(s.TransfersCreated)/max(secs, 1e-9))
	fmt.Fprintf(tw, "asset\taccounts\tposted volume\tpending\n")
	for _, a := range s.Assets {
		if a.Accounts == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", a.Code, a.Accounts, a.CreditsPosted, a.CreditsPending)
	}
	tw.Flush()
	fmt.Fprintln(w, strings.Repeat("-", 20)+" ok")
}
