package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tpwallet/tpwallet/internal/store"
)

// testMeta checks store.Meta: reads see writes at once, batches apply whole, scans keep
// to their namespace and prefix in both directions, and everything survives a restart.
func testMeta(t *testing.T, newStore func(t *testing.T) Opener) {
	h := start(t, newStore)
	m, ok := h.store.(store.Meta)
	if !ok {
		t.Fatalf("%T does not implement store.Meta", h.store)
	}
	ctx := t.Context()
	if _, err := m.GetMeta(ctx, "cursor", "nats"); !isNotFound(err) {
		t.Fatalf("GetMeta of a missing key: got %v, want ErrNotFound", err)
	}
	var ops []store.MetaOp
	for i := range 10 {
		ops = append(ops, store.MetaOp{NS: "log", Key: fmt.Sprintf("w1/%03d", i), Value: []byte{byte(i)}})
	}
	ops = append(ops, store.MetaOp{NS: "log", Key: "w2/000", Value: []byte("other")},
		store.MetaOp{NS: "logx", Key: "w1/000", Value: []byte("other ns")},
		store.MetaOp{NS: "cursor", Key: "nats", Value: []byte("7")},
		store.MetaOp{NS: "cursor", Key: "empty", Value: []byte{}})
	if err := m.WriteMeta(ctx, ops...); err != nil {
		t.Fatalf("WriteMeta: %v", err)
	}
	check := func(when string) {
		t.Helper()
		if v, err := m.GetMeta(ctx, "cursor", "nats"); err != nil || string(v) != "7" {
			t.Errorf("%s: GetMeta: got %q, %v, want 7", when, v, err)
		}
		if v, err := m.GetMeta(ctx, "cursor", "empty"); err != nil || v == nil || len(v) != 0 {
			t.Errorf("%s: GetMeta of an empty value: got %q (nil %t), %v", when, v, v == nil, err)
		}
		all, err := m.ScanMeta(ctx, "log", "w1/", "", false, 100)
		if err != nil || len(all) != 9 { // w1/000 deleted below
			t.Fatalf("%s: ScanMeta: got %d keys, %v, want 9", when, len(all), err)
		}
		for i, kv := range all {
			if want := fmt.Sprintf("w1/%03d", i+1); kv.Key != want || !bytes.Equal(kv.Value, []byte{byte(i + 1)}) {
				t.Errorf("%s: ScanMeta[%d]: got %q=%v, want %s", when, i, kv.Key, kv.Value, want)
			}
		}
		page, err := m.ScanMeta(ctx, "log", "w1/", "w1/005", false, 2)
		if err != nil || len(page) != 2 || page[0].Key != "w1/005" || page[1].Key != "w1/006" {
			t.Errorf("%s: ScanMeta from w1/005: got %v, %v", when, page, err)
		}
		back, err := m.ScanMeta(ctx, "log", "w1/", "", true, 3)
		if err != nil || len(back) != 3 || back[0].Key != "w1/009" || back[2].Key != "w1/007" {
			t.Errorf("%s: reverse ScanMeta from the end: got %v, %v", when, back, err)
		}
		back, err = m.ScanMeta(ctx, "log", "w1/", "w1/003", true, 10)
		if err != nil || len(back) != 2 || back[0].Key != "w1/002" || back[1].Key != "w1/001" {
			t.Errorf("%s: reverse ScanMeta before w1/003: got %v, %v", when, back, err)
		}
		every, err := m.ScanMeta(ctx, "log", "", "", false, 100)
		if err != nil || len(every) != 10 || every[9].Key != "w2/000" {
			t.Errorf("%s: ScanMeta of the namespace: got %d keys, %v, want 10 ending in w2/000", when, len(every), err)
		}
	}
	if err := m.WriteMeta(ctx, store.MetaOp{NS: "log", Key: "w1/000"}); err != nil {
		t.Fatalf("WriteMeta delete: %v", err)
	}
	check("before restart")
	h.reopen()
	m = h.store.(store.Meta)
	check("after restart")
	if err := m.WriteMeta(ctx, store.MetaOp{NS: "cursor", Key: "bad\x00key", Value: []byte("x")}); err == nil {
		t.Errorf("WriteMeta of a key with NUL: got nil, want an error")
	}
}
