package pebblestore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
)

// TestCorruptTableDetected damages the table files on disk (a bit flip every 4 KiB of one
// half, as failing media would): opening the store or reading the journal back fails with Pebble's checksum error, and
// no record that differs from what was committed is ever returned.
func TestCorruptTableDetected(t *testing.T) {
	for _, part := range []struct {
		name     string
		from, to float64 // fractions of the file
	}{{"first half", 0, 0.5}, {"second half", 0.5, 1}} {
		t.Run(part.name, func(t *testing.T) { corruptTables(t, part.from, part.to) })
	}
}

func corruptTables(t *testing.T, from, to float64) {
	dir := t.TempDir()
	s, st, head := mustOpen(t, dir)
	batches := [][]ledger.Command{{account("treasury", true), account("alice", false)}}
	for i := range 500 {
		batches = append(batches, []ledger.Command{pay(fmt.Sprintf("t%03d", i), "treasury", "alice", uint64(i+1), false)})
	}
	commitBatches(t, s, st, head, 1_767_225_600e9, batches...)
	want := map[uint64]journal.Hash{}
	if err := s.EachRecord(t.Context(), func(r *journal.Record) error { want[r.Seq] = r.Hash; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Move everything from the log into table files, so that the tables are the only copy.
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table files after a flush")
	}
	for _, f := range tables {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i := max(100, int(from*float64(len(b)))); i < int(to*float64(len(b)))-100; i += 4096 {
			b[i] ^= 0x5a
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	s2, err := pebblestore.Open(dir, pebblestore.Options{Logger: nil})
	if err != nil { // the damage reached what Open reads: reported there
		if !pebble.IsCorruptionError(err) {
			t.Errorf("Open of damaged tables: %v, want a Pebble corruption error", err)
		}
		t.Logf("Open reports the damage: %v", err)
		return
	}
	defer s2.Close()
	// Read everything back: every read either returns what was committed or fails with a
	// corruption error, and at least one fails.
	detected := 0
	check := func(what string, err error) {
		t.Helper()
		switch {
		case err == nil:
		case pebble.IsCorruptionError(err):
			if detected == 0 {
				t.Logf("%s: %v", what, err)
			}
			detected++
		default:
			t.Fatalf("%s: %v, want success or a Pebble corruption error", what, err)
		}
	}
	check("journal", s2.EachRecord(t.Context(), func(r *journal.Record) error {
		if w, ok := want[r.Seq]; !ok || w != r.Hash || journal.RecordHash(r) != r.Hash {
			t.Fatalf("record %d read back different from what was committed", r.Seq)
		}
		return nil
	}))
	for i := range 500 {
		id := fmt.Sprintf("t%03d", i)
		tr, err := s2.Transfer(t.Context(), id)
		if err == nil && (tr.ID != id || tr.Amount != ledger.AmountFromUint64(uint64(i+1))) {
			t.Fatalf("transfer %s read back as %+v", id, tr)
		}
		check("transfer "+id, err)
	}
	check("entries", s2.EachEntry(t.Context(), "", func(journal.Entry) error { return nil }))
	if detected == 0 {
		t.Fatal("read everything back from damaged tables without an error")
	}
}
