package journal_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

func TestCodecRoundTrip(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	g := randomValues{rand.New(rand.NewPCG(seed, 1))}
	for range 2000 {
		r := g.record()
		b := journal.AppendRecord(nil, r)
		got, err := journal.DecodeRecord(b)
		if err != nil {
			t.Fatalf("DecodeRecord: %v", err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("record does not round-trip:\ngot  %+v\nwant %+v", got, r)
		}
		if again := journal.AppendRecord(nil, got); !bytes.Equal(again, b) {
			t.Fatalf("record re-encodes differently")
		}

		tr := g.transfer()
		tb := journal.AppendTransfer([]byte("prefix"), tr)[len("prefix"):]
		if got, err := journal.DecodeTransfer(tb); err != nil || !reflect.DeepEqual(got, tr) {
			t.Fatalf("transfer: got %+v, %v, want %+v", got, err, tr)
		}

		a := g.account()
		ab := journal.AppendAccount(nil, a)
		if got, err := journal.DecodeAccount(ab); err != nil || !reflect.DeepEqual(got, a) {
			t.Fatalf("account: got %+v, %v, want %+v", got, err, a)
		}

		e := g.entry()
		eb := journal.AppendEntry(nil, &e)
		if got, err := journal.DecodeEntry(eb); err != nil || got != e {
			t.Fatalf("entry: got %+v, %v, want %+v", got, err, e)
		}
	}
}

// TestCodecRichChain round-trips records the ledger made, and their entries.
func TestCodecRichChain(t *testing.T) {
	for _, r := range richChain(t).recs {
		got, err := journal.DecodeRecord(journal.AppendRecord(nil, r))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("record %d does not round-trip", r.Seq)
		}
		if journal.RecordHash(got) != r.Hash {
			t.Fatalf("record %d: hash changed through the codec", r.Seq)
		}
		for i := range r.Changes {
			for _, e := range journal.Entries(&r.Changes[i]) {
				d, err := journal.DecodeEntry(journal.AppendEntry(nil, &e))
				d.Account, d.Time = e.Account, e.Time // kept in the key, not the value
				if err != nil || d != e {
					t.Fatalf("entry: got %+v, %v, want %+v", d, err, e)
				}
			}
		}
	}
}

// TestDecodeRejects checks that every value has one encoding: non-minimal varints and
// unsorted or repeated metadata keys are refused, as are truncations and trailing bytes.
func TestDecodeRejects(t *testing.T) {
	acct := &ledger.Account{ID: "a", Kind: ledger.KindUser, Status: ledger.StatusActive,
		Metadata: map[string]string{"k1": "v1", "k2": "v2"}}
	good := journal.AppendAccount(nil, acct)
	if _, err := journal.DecodeAccount(good); err != nil {
		t.Fatal(err)
	}
	swap := bytes.Replace(bytes.Replace(good, []byte("\x02k1\x02v1"), []byte("\x02kX\x02vX"), 1),
		[]byte("\x02k2\x02v2"), []byte("\x02k1\x02v1"), 1)
	swap = bytes.Replace(swap, []byte("\x02kX\x02vX"), []byte("\x02k2\x02v2"), 1)
	dup := bytes.Replace(good, []byte("\x02k2"), []byte("\x02k1"), 1)
	// "a" is encoded as 0x01 'a'; 0x81 0x00 is a non-minimal 1.
	nonMinimal := append([]byte{journal.FormatVersion, 0x81, 0x00}, good[2:]...)
	for name, b := range map[string][]byte{
		"unsorted metadata":  swap,
		"repeated key":       dup,
		"non-minimal varint": nonMinimal,
		"trailing byte":      append(bytes.Clone(good), 0),
		"version 2":          append([]byte{2}, good[1:]...),
		"empty":              nil,
	} {
		if _, err := journal.DecodeAccount(b); !errors.Is(err, journal.ErrFormat) {
			t.Errorf("%s: got %v, want ErrFormat", name, err)
		}
	}
	for _, r := range richChain(t).recs {
		b := journal.AppendRecord(nil, r)
		for n := range len(b) {
			if _, err := journal.DecodeRecord(b[:n]); !errors.Is(err, journal.ErrFormat) {
				t.Fatalf("record %d cut to %d of %d bytes: got %v, want ErrFormat", r.Seq, n, len(b), err)
			}
		}
	}
}

// fuzzSeeds adds encodings of the rich chain's values and of random ones.
func fuzzSeeds(f *testing.F, enc func(g randomValues, c *ledger.Change) []byte) {
	f.Helper()
	for _, r := range richChain(f).recs {
		for i := range r.Changes {
			if b := enc(randomValues{}, &r.Changes[i]); b != nil {
				f.Add(b)
			}
		}
	}
	g := randomValues{rand.New(rand.NewPCG(9, 10))}
	for range 20 {
		c := g.change()
		f.Add(enc(g, &c))
	}
	f.Add([]byte{})
	f.Add([]byte{journal.FormatVersion})
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range richChain(f).recs {
		f.Add(journal.AppendRecord(nil, r))
	}
	g := randomValues{rand.New(rand.NewPCG(11, 12))}
	for range 20 {
		f.Add(journal.AppendRecord(nil, g.record()))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := journal.DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, journal.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if again := journal.AppendRecord(nil, r); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\nin  %x\nout %x", b, again)
		}
		// Whatever decodes must have valid canonical JSON, and the verifier must judge it
		// without panicking.
		if js := journal.AppendRecordJSON(nil, r); !json.Valid(js) {
			t.Fatalf("invalid JSON: %s", js)
		}
		r.Seq, r.PrevHash = 1, journal.Hash{}
		journal.Seal(r)
		v := journal.NewVerifier()
		err = v.Add(r)
		if err == nil {
			err = v.Finish()
		}
		var ce *journal.CorruptionError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("verifier: %v is not a CorruptionError", err)
		}
	})
}

func FuzzDecodeTransfer(f *testing.F) {
	fuzzSeeds(f, func(g randomValues, c *ledger.Change) []byte {
		if c.Transfer == nil {
			return nil
		}
		return journal.AppendTransfer(nil, c.Transfer)
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := journal.DecodeTransfer(b)
		if err != nil {
			if !errors.Is(err, journal.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if again := journal.AppendTransfer(nil, tr); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\nin  %x\nout %x", b, again)
		}
		if js := journal.AppendTransferJSON(nil, tr); !json.Valid(js) {
			t.Fatalf("invalid JSON: %s", js)
		}
	})
}

func FuzzDecodeAccount(f *testing.F) {
	fuzzSeeds(f, func(g randomValues, c *ledger.Change) []byte {
		if c.Account == nil {
			return nil
		}
		return journal.AppendAccount(nil, c.Account)
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := journal.DecodeAccount(b)
		if err != nil {
			if !errors.Is(err, journal.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if again := journal.AppendAccount(nil, a); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\nin  %x\nout %x", b, again)
		}
		if js := journal.AppendAccountJSON(nil, a); !json.Valid(js) {
			t.Fatalf("invalid JSON: %s", js)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	fuzzSeeds(f, func(g randomValues, c *ledger.Change) []byte {
		es := journal.Entries(c)
		if g.r != nil && len(es) == 0 {
			e := g.entry()
			return journal.AppendEntry(nil, &e)
		}
		if len(es) == 0 {
			return nil
		}
		return journal.AppendEntry(nil, &es[0])
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := journal.DecodeEntry(b)
		if err != nil {
			if !errors.Is(err, journal.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if again := journal.AppendEntry(nil, &e); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\nin  %x\nout %x", b, again)
		}
	})
}
