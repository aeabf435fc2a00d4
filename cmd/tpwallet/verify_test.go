package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

// makeData commits a small ledger (accounts, transfers, a hold, a partial post, a void) to
// a fresh data directory and closes it.
func makeData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.Open(context.Background(), st, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	amt := ledger.AmountFromUint64
	batches := [][]ledger.Request{
		{{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "bank", Asset: "USD", AllowNegative: true}},
			{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "alice", Asset: "USD"}},
			{Op: ledger.OpCreateAccount, Account: ledger.AccountRequest{ID: "bob", Asset: "USD"}}},
		{{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{ID: "t1", Source: "bank", Destination: "alice", Amount: amt(1000)}}},
		{{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{ID: "t2", Source: "alice", Destination: "bob", Amount: amt(300)}},
			{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{ID: "h1", Source: "alice", Destination: "bob", Amount: amt(200), Hold: true}},
			{Op: ledger.OpTransfer, Transfer: ledger.TransferRequest{ID: "h2", Source: "alice", Destination: "bob", Amount: amt(50), Hold: true}}},
		{{Op: ledger.OpPost, TransferID: "h1", Amount: amt(150), AmountSet: true},
			{Op: ledger.OpVoid, TransferID: "h2"}},
	}
	for _, reqs := range batches {
		r, err := e.Submit(context.Background(), &engine.Submission{Command: ledger.Command{Requests: reqs}})
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range r.Results {
			if res.Code != ledger.CodeOK {
				t.Fatalf("setup: %s", res.Code)
			}
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runVerifyCmd(t *testing.T, dir string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runVerify(context.Background(), []string{"--data", dir, "--quiet"}, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestVerifySound(t *testing.T) {
	dir := makeData(t)
	out, err := runVerifyCmd(t, dir)
	if err != nil {
		t.Fatalf("verify of a sound directory: %v\n%s", err, out)
	}
	for _, want := range []string{"ok: 4 records", "4 created, 0 pending holds", "3, 6 entries"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// tamper rewrites one raw key of a closed data directory.
func tamper(t *testing.T, dir string, key []byte, change func([]byte) []byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	nv := change(bytes.Clone(v))
	closer.Close()
	if err := db.Set(key, nv, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func recordKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte("j/"), seq) }

func TestVerifyFindsRewrittenRecord(t *testing.T) {
	dir := makeData(t)
	// Raise t1's amount inside record 2 without re-hashing: the chain must catch it.
	tamper(t, dir, recordKey(2), func(v []byte) []byte {
		r, err := journal.DecodeRecord(v)
		if err != nil {
			t.Fatal(err)
		}
		r.Changes[0].Transfer.Amount = ledger.AmountFromUint64(100000)
		return journal.AppendRecord(nil, r)
	})
	out, err := runVerifyCmd(t, dir)
	if err == nil || !strings.Contains(err.Error(), "record 2") {
		t.Fatalf("verify of a rewritten record: got %v, want an error naming record 2\n%s", err, out)
	}
}

func TestVerifyFindsResealedRecord(t *testing.T) {
	dir := makeData(t)
	// Rewrite and re-hash record 3: its hash is right but record 4 no longer links to it.
	tamper(t, dir, recordKey(3), func(v []byte) []byte {
		r, err := journal.DecodeRecord(v)
		if err != nil {
			t.Fatal(err)
		}
		r.Changes[0].Transfer.Reference = "forged"
		journal.Seal(r)
		return journal.AppendRecord(nil, r)
	})
	out, err := runVerifyCmd(t, dir)
	if err == nil || !strings.Contains(err.Error(), "record 4") {
		t.Fatalf("verify of a re-sealed record: got %v, want an error naming record 4\n%s", err, out)
	}
}

func TestVerifyFindsWrongEntry(t *testing.T) {
	dir := makeData(t)
	// Find alice's first activity row and change its posted_after.
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	it, _ := db.NewIter(&pebble.IterOptions{LowerBound: []byte("x/alice\x00"), UpperBound: []byte("x/alice\x01")})
	if !it.First() {
		t.Fatal("no activity row for alice")
	}
	key := bytes.Clone(it.Key())
	it.Close()
	db.Close()
	tamper(t, dir, key, func(v []byte) []byte {
		v[len(v)-1]++ // the last byte belongs to the posted balance after the entry
		return v
	})
	out, err := runVerifyCmd(t, dir)
	if err == nil || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("verify of a wrong entry: got %v, want an error naming alice\n%s", err, out)
	}
}

// quiet drops Pebble's informational messages in these tests.
type quiet struct{}

func (quiet) Infof(string, ...any)           {}
func (quiet) Errorf(string, ...any)          {}
func (quiet) Fatalf(format string, a ...any) { panic(format) }
