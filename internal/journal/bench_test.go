package journal_test

import (
	"strconv"
	"testing"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

const (
	benchAccounts  = 1000
	benchBatch     = 8000
	benchBatches   = 10
	benchHoldEvery = 10 // one transfer in 10 is a hold, later posted in parts or voided
)

// benchChain is a chain of benchAccounts accounts, one funding batch and benchBatches
// batches of benchBatch transfers: mostly posted at once, some holds, and posts and voids of
// the holds of the batch before. It returns the records and the number of transfer changes.
func benchChain(b *testing.B) ([]*journal.Record, int) {
	b.Helper()
	c := newChain(b)
	var open, fund []ledger.Request
	open = append(open, openAccount("treasury", "USD", true, nil))
	for i := range benchAccounts {
		id := "acct-" + strconv.Itoa(i)
		open = append(open, openAccount(id, "USD", false, map[string]string{"tier": "kyc2"}))
		fund = append(fund, pay("", "treasury", id, amt(1e12)))
	}
	c.apply(1e6, atomic(open...))
	c.apply(1e6, atomic(fund...))
	var holds []string
	for n := range benchBatches {
		var reqs []ledger.Request
		for i, h := range holds {
			switch i % 3 {
			case 0:
				reqs = append(reqs, post(h, amt(0), true))
			case 1:
				reqs = append(reqs, post(h, amt(1), false))
			default:
				reqs = append(reqs, void(h))
			}
		}
		holds = holds[:0]
		for i := len(reqs); i < benchBatch; i++ {
			src, dst := "acct-"+strconv.Itoa(i%benchAccounts), "acct-"+strconv.Itoa((i*7+n+1)%benchAccounts)
			if src == dst {
				dst = "treasury"
			}
			r := pay("", src, dst, amt(uint64(100+i)))
			r.Transfer.Reference = "order-" + strconv.Itoa(n*benchBatch+i)
			if i%4 == 0 {
				r.Transfer.Metadata = map[string]string{"order": r.Transfer.Reference, "channel": "app"}
			}
			if i%benchHoldEvery == 0 {
				r.Transfer.Hold, r.Transfer.HoldTimeout = true, 3600
				r.Transfer.ID = "hold-" + strconv.Itoa(n) + "-" + strconv.Itoa(i)
				holds = append(holds, r.Transfer.ID)
			}
			reqs = append(reqs, r)
		}
		c.apply(1e6, atomic(reqs...))
	}
	transfers := 0
	for _, r := range c.recs {
		for _, ch := range r.Changes {
			if ch.Transfer != nil {
				transfers++
			}
		}
	}
	return c.recs, transfers
}

// BenchmarkHash hashes a record of 8,000 posted transfers: what the engine adds to every
// commit (Seal) and verify to every record.
func BenchmarkHash(b *testing.B) {
	c := newChain(b)
	c.apply(1e6, one(openAccount("treasury", "USD", true, nil)), one(openAccount("a", "USD", false, nil)))
	var reqs []ledger.Request
	for i := range benchBatch {
		r := pay("", "treasury", "a", amt(uint64(1000+i)))
		r.Transfer.Reference = "order-" + strconv.Itoa(i)
		if i%4 == 0 {
			r.Transfer.Metadata = map[string]string{"order": r.Transfer.Reference, "channel": "app"}
		}
		reqs = append(reqs, r)
	}
	c.apply(1e6, atomic(reqs...))
	r := c.last()
	b.SetBytes(int64(len(journal.AppendHashedJSON(nil, r))))
	b.ReportAllocs()
	for b.Loop() {
		journal.RecordHash(r)
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkVerify replays benchChain with a new Verifier per iteration: hashes, links and
// the rebuild of every balance. "decode" adds decoding each record from its binary form,
// which is what tpwallet verify does reading a store.
func BenchmarkVerify(b *testing.B) {
	recs, transfers := benchChain(b)
	bins := make([][]byte, len(recs))
	for i, r := range recs {
		bins[i] = journal.AppendRecord(nil, r)
	}
	b.Run("records", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := verifyAll(recs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*transfers)/b.Elapsed().Seconds(), "transfers/s")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v := journal.NewVerifier()
			for _, bin := range bins {
				r, err := journal.DecodeRecord(bin)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.Add(r); err != nil {
					b.Fatal(err)
				}
			}
			if err := v.Finish(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*transfers)/b.Elapsed().Seconds(), "transfers/s")
	})
}

// BenchmarkRecordJSON encodes a record of 8,000 transfers as GET /v1/journal serves it.
func BenchmarkRecordJSON(b *testing.B) {
	recs, _ := benchChain(b)
	r := recs[len(recs)-1]
	buf := journal.AppendRecordJSON(nil, r)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = journal.AppendRecordJSON(buf[:0], r)
	}
	b.ReportMetric(float64(b.N*len(r.Changes))/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkDecodeRecord decodes a record of 8,000 transfers from its binary form, as verify
// and every store read do.
func BenchmarkDecodeRecord(b *testing.B) {
	recs, _ := benchChain(b)
	bin := journal.AppendRecord(nil, recs[len(recs)-1])
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := journal.DecodeRecord(bin); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "transfers/s")
}
