package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// TestBenchJSON runs `tpwallet bench --json` at small size for every workload, in-process,
// and checks its one JSON object: the contract's fields, sane values, balances_ok.
func TestBenchJSON(t *testing.T) {
	for _, w := range []string{"p2p", "p2m", "batch", "hold", "grpc-p2p", "grpc-p2m"} {
		t.Run(w, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := []string{"bench", "--workload", w, "--accounts", "20", "--clients", "4",
				"--duration", "300ms", "--batch-size", "10", "--json"}
			if grpcW, ok := strings.CutPrefix(w, "grpc-"); ok {
				args[2], w = grpcW, grpcW
				args = append(args, "--transport", "grpc")
			}
			code := Main(t.Context(), args, &out, &errOut)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
			}
			var m map[string]any
			dec := json.NewDecoder(&out)
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
			}
			if dec.More() {
				t.Fatalf("more than one JSON value on stdout")
			}
			for _, k := range []string{"workload", "clients", "accounts", "seconds", "transfers", "tps",
				"errors", "p50_ms", "p95_ms", "p99_ms", "max_ms", "balances_ok"} {
				if _, ok := m[k]; !ok {
					t.Errorf("field %q missing", k)
				}
			}
			if len(m) != 12 {
				t.Errorf("got %d fields, want the 12 of the contract: %v", len(m), m)
			}
			if m["workload"] != w || m["clients"] != float64(4) || m["accounts"] != float64(20) {
				t.Errorf("echoed settings: got %v", m)
			}
			if m["balances_ok"] != true || m["transfers"].(float64) <= 0 || m["errors"] != float64(0) {
				t.Errorf("got %v, want transfers > 0, no errors, balances_ok", m)
			}
			if m["p50_ms"].(float64) > m["p99_ms"].(float64) || m["p99_ms"].(float64) > m["max_ms"].(float64) {
				t.Errorf("percentiles out of order: %v", m)
			}
		})
	}
}

// TestBenchCatchesWrongTally checks the balance check itself: a tally that is off by one
// transfer must be reported as a mismatch.
func TestBenchCatchesWrongTally(t *testing.T) {
	ctx := context.Background()
	stop, url, _, key, err := startInProcess(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := benchConfig{URL: url, Key: key, Workload: "p2p", Accounts: 5, Clients: 2,
		Duration: 200 * time.Millisecond, BatchSize: 10}
	cl, err := newBenchClient(url, key)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.close()
	ids, treasury, err := setupAccounts(ctx, cl, c, "t", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := cl.do(ctx, "POST", "/v1/transfers", transferBody(ids[0], ids[1], nil), nil); err != nil || code != 201 {
		t.Fatalf("transfer: %d %v", code, err)
	}
	right := tally{ids[0]: -1, ids[1]: 1}
	ok, err := checkBalances(ctx, cl, ids, treasury, right, io.Discard)
	if err != nil || !ok {
		t.Fatalf("the right tally: got ok=%v err=%v, want ok", ok, err)
	}
	var report bytes.Buffer
	wrong := tally{ids[0]: -1, ids[1]: 2}
	ok, err = checkBalances(ctx, cl, ids, treasury, wrong, &report)
	if err != nil || ok {
		t.Fatalf("a wrong tally: got ok=%v err=%v, want a mismatch", ok, err)
	}
	if !strings.Contains(report.String(), ids[1]) {
		t.Errorf("the mismatch report does not name %s: %q", ids[1], report.String())
	}
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--workload", "nope"},
		{"bench", "--accounts", "1"},
		{"bench", "--batch-size", "9000"},
		{"bench", "--url", "http://127.0.0.1:1"},
		{"bench", "--transport", "carrier-pigeon"},
		{"bench", "--transport", "grpc", "--workload", "batch"},
		{"bench", "--transport", "grpc", "--window", "0"},
	} {
		var out, errOut bytes.Buffer
		if code := Main(t.Context(), args, &out, &errOut); code == 0 {
			t.Errorf("%v: exit 0, want an error", args)
		}
	}
}
