package main_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The long version (scripts/torture.sh) soaks for 30 minutes.
var soakFor = flag.Duration("soak", 6*time.Second, "how long TestSoak drives load (in chunks of -soak.chunk)")
var soakChunk = flag.Duration("soak.chunk", 2*time.Second, "length of one TestSoak measurement")

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestSoak drives `tpwallet bench` at a server for -soak, chunk after chunk, and checks
// that nothing fails, the balances always add up and memory stays within a budget; on runs
// of eight chunks or more, that memory and p99 latency stay flat once warm. Each chunk's figures are logged.
func TestSoak(t *testing.T) {
	p := startServe(t, t.TempDir())
	chunks := max(int(*soakFor / *soakChunk), 2)
	type chunk struct {
		TPS  float64 `json:"tps"`
		P99  float64 `json:"p99_ms"`
		Errs int64   `json:"errors"`
		OK   bool    `json:"balances_ok"`
		RSS  int64
	}
	var got []chunk
	for i := range chunks {
		cmd := exec.Command(binPath, "bench", "--url", p.base, "--accounts", "50", "--clients", "16",
			"--duration", soakChunk.String(), "--json")
		cmd.Env = append(os.Environ(), "TPWALLET_BENCH_KEY="+adminKey)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("chunk %d: bench: %v\n%s%s", i, err, out.String(), errb.String())
		}
		var c chunk
		if err := json.Unmarshal(out.Bytes(), &c); err != nil {
			t.Fatalf("chunk %d: bench --json: %v\n%s", i, err, out.String())
		}
		c.RSS = rssKiB(t, p.cmd.Process.Pid)
		t.Logf("chunk %3d: %8.0f transfers/s  p99 %6.2f ms  errors %d  balances ok %v  rss %d MiB",
			i, c.TPS, c.P99, c.Errs, c.OK, c.RSS>>10)
		if c.Errs != 0 || !c.OK || c.TPS <= 0 {
			t.Fatalf("chunk %d: %+v", i, c)
		}
		got = append(got, c)
	}
	// Memory: Pebble's block cache (64 MiB) and memtables (2 x 64 MiB) fill over the first
	// minutes, and the Go heap may reach 5x the live heap (GOGC 400): a short run can only
	// show the resident size stays within a budget. A long one must be flat once warm: the
	// peak of the last quarter within 1.25x (+32 MiB) of the peak of the second.
	peak := func(cs []chunk) int64 {
		var m int64
		for _, c := range cs {
			m = max(m, c.RSS)
		}
		return m
	}
	if m := peak(got); m > 1<<20 {
		t.Errorf("resident size reached %d MiB, over the 1 GiB budget", m>>10)
	}
	if len(got) >= 8 {
		q := len(got) / 4
		if a, b := peak(got[q:2*q]), peak(got[len(got)-q:]); b > a*5/4+32<<10 {
			t.Errorf("memory still grows once warm: peak %d MiB in the second quarter, %d MiB in the last", a>>10, b>>10)
		}
		med := func(cs []chunk) float64 {
			ps := make([]float64, len(cs))
			for i, c := range cs {
				ps[i] = c.P99
			}
			slices.Sort(ps)
			return ps[len(ps)/2]
		}
		if a, b := med(got[:q]), med(got[len(got)-q:]); b > 3*a+5 {
			t.Errorf("p99 latency grew: median %.2f ms in the first quarter, %.2f ms in the last", a, b)
		}
	}
}
