package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	tpwallet "github.com/tpwallet/tpwallet"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/limits"
	"github.com/tpwallet/tpwallet/internal/metrics"
)

type benchConfig struct {
	URL       string
	Key       string
	Workload  string
	Accounts  int
	Clients   int
	Duration  time.Duration
	BatchSize int
	JSON      bool
	Profile   string
	NoMetrics bool
	Transport string // rest or grpc
	Window    int    // grpc: messages each stream has unanswered
}

// benchResult is what `tpwallet bench --json` prints: a contract for scripts.
type benchResult struct {
	Workload   string  `json:"workload"`
	Clients    int     `json:"clients"`
	Accounts   int     `json:"accounts"`
	Seconds    float64 `json:"seconds"`
	Transfers  int64   `json:"transfers"`
	TPS        float64 `json:"tps"`
	Errors     int64   `json:"errors"`
	P50        float64 `json:"p50_ms"`
	P95        float64 `json:"p95_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	BalancesOK bool    `json:"balances_ok"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpwallet bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c benchConfig
	fs.StringVar(&c.URL, "url", envOr("TPWALLET_BENCH_URL", ""), "server to drive (for --transport grpc its gRPC host:port); empty starts one in-process on a temporary data directory (env TPWALLET_BENCH_URL)")
	fs.StringVar(&c.Transport, "transport", envOr("TPWALLET_BENCH_TRANSPORT", "rest"), "rest, or grpc: --clients SubmitTransfers streams of --batch-size transfers a message, p2p or p2m (env TPWALLET_BENCH_TRANSPORT)")
	fs.IntVar(&c.Window, "window", envInt("TPWALLET_BENCH_WINDOW", 8), "--transport grpc: messages each stream sends ahead of their answers (env TPWALLET_BENCH_WINDOW)")
	fs.StringVar(&c.Key, "key", envOr("TPWALLET_BENCH_KEY", ""), "API key with write scope for --url; prefer the env TPWALLET_BENCH_KEY, which ps does not show")
	fs.StringVar(&c.Workload, "workload", envOr("TPWALLET_BENCH_WORKLOAD", "p2p"), "p2p, p2m, batch or hold (env TPWALLET_BENCH_WORKLOAD)")
	fs.IntVar(&c.Accounts, "accounts", envInt("TPWALLET_BENCH_ACCOUNTS", 10000), "accounts to create and fund (env TPWALLET_BENCH_ACCOUNTS)")
	fs.IntVar(&c.Clients, "clients", envInt("TPWALLET_BENCH_CLIENTS", 32), "concurrent clients (env TPWALLET_BENCH_CLIENTS)")
	fs.DurationVar(&c.Duration, "duration", envDuration("TPWALLET_BENCH_DURATION", 10*time.Second), "how long to run (env TPWALLET_BENCH_DURATION)")
	fs.IntVar(&c.BatchSize, "batch-size", envInt("TPWALLET_BENCH_BATCH_SIZE", 1000), "transfers per request of the batch workload, or per stream message with --transport grpc (env TPWALLET_BENCH_BATCH_SIZE)")
	fs.BoolVar(&c.JSON, "json", envBool("TPWALLET_BENCH_JSON"), "print one JSON object instead of the table (env TPWALLET_BENCH_JSON)")
	fs.BoolVar(&c.NoMetrics, "no-metrics", envBool("TPWALLET_BENCH_NO_METRICS"), "in-process server without Prometheus metrics, to measure what they cost (env TPWALLET_BENCH_NO_METRICS)")
	fs.StringVar(&c.Profile, "cpuprofile", envOr("TPWALLET_BENCH_CPUPROFILE", ""), "write a CPU profile of the run (load generator and in-process server) to this file (env TPWALLET_BENCH_CPUPROFILE)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case c.Workload != "p2p" && c.Workload != "p2m" && c.Workload != "batch" && c.Workload != "hold":
		return fmt.Errorf("bench: unknown workload %q: use p2p, p2m, batch or hold", c.Workload)
	case c.Accounts < 2 || c.Clients < 1 || c.Duration <= 0 || c.BatchSize < 1 || c.BatchSize > 8190:
		return errors.New("bench: need --accounts ≥ 2, --clients ≥ 1, --duration > 0 and --batch-size 1-8190")
	case c.URL != "" && c.Key == "":
		return errors.New("bench: --url needs an API key (--key or TPWALLET_BENCH_KEY)")
	case c.Transport != "rest" && c.Transport != "grpc":
		return fmt.Errorf("bench: unknown transport %q: use rest or grpc", c.Transport)
	case c.Transport == "grpc" && c.Workload != "p2p" && c.Workload != "p2m":
		return errors.New("bench: --transport grpc runs the p2p or p2m workload over SubmitTransfers streams")
	case c.Window < 1:
		return errors.New("bench: need --window ≥ 1")
	}
	if c.URL == "" {
		stop, url, grpcAddr, key, err := startInProcess(ctx, !c.NoMetrics)
		if err != nil {
			return err
		}
		defer stop()
		c.URL, c.Key = url, key
		if c.Transport == "grpc" {
			c.URL = grpcAddr
		}
	}
	if c.Profile != "" {
		f, err := os.Create(c.Profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	run := bench
	if c.Transport == "grpc" {
		run = benchGRPC
	}
	res, err := run(ctx, c, stderr)
	if err != nil {
		return err
	}
	if c.JSON {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	} else {
		printTable(stdout, res)
	}
	if !res.BalancesOK {
		return errors.New("bench: balances do not match the acknowledged transfers")
	}
	return nil
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// startInProcess serves a fresh temporary data directory, fsync on, through the same code
// path as `tpwallet serve`: REST at url, gRPC at grpcAddr.
func startInProcess(ctx context.Context, withMetrics bool) (stop func(), url, grpcAddr, key string, err error) {
	dir, err := os.MkdirTemp("", "tpwallet-bench-")
	if err != nil {
		return nil, "", "", "", err
	}
	log := slog.New(slog.DiscardHandler)
	var m *metrics.Metrics // as serve has them, unless measuring their cost
	if withMetrics {
		m = metrics.New()
	}
	// Traced as serve is, by the OTEL_* variables: off without an endpoint.
	stopTracing, err := startTracing(ctx, log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", "", "", err
	}
	app, err := openApp(ctx, "", dir, 24*time.Hour, log, m)
	if err != nil {
		stopTracing()
		os.RemoveAll(dir)
		return nil, "", "", "", err
	}
	key = "tpw_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36) + "_local"
	if _, err := app.svc.EnsureAdminKey(ctx, key); err != nil {
		app.close()
		stopTracing()
		os.RemoveAll(dir)
		return nil, "", "", "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		app.close()
		stopTracing()
		os.RemoveAll(dir)
		return nil, "", "", "", err
	}
	srv := &http.Server{Handler: httpapi.New(app.svc, httpapi.Options{Logger: log, OpenAPI: tpwallet.OpenAPI, Metrics: m}),
		ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	grpcAddr, stopGRPC, err := startGRPC(&serveConfig{GRPCAddr: "127.0.0.1:0"}, app, limits.New(0, 0, 0), nil, log)
	if err != nil {
		srv.Close()
		app.close()
		stopTracing()
		os.RemoveAll(dir)
		return nil, "", "", "", err
	}
	return func() {
		srv.Shutdown(context.Background())
		stopGRPC(context.Background())
		app.close()
		stopTracing()
		os.RemoveAll(dir)
	}, "http://" + ln.Addr().String(), grpcAddr, key, nil
}

// tally is what the bench expects each account's posted balance to have moved by.
type tally map[string]int64

const fundAmount = int64(1) << 40

func bench(ctx context.Context, c benchConfig, progress io.Writer) (benchResult, error) {
	cl, err := newBenchClient(c.URL, c.Key)
	if err != nil {
		return benchResult{}, err
	}
	defer cl.close()
	run := strconv.FormatInt(time.Now().UnixNano()%1e10, 36)
	ids, treasury, err := setupAccounts(ctx, cl, c, run, progress)
	if err != nil {
		return benchResult{}, err
	}
	var head0 struct {
		Seq uint64 `json:"seq"`
	}
	if _, err := cl.do(ctx, "GET", "/v1/journal/head", nil, &head0); err != nil {
		return benchResult{}, err
	}

	var (
		transfers, errCount, writes atomic.Int64
		hist                        histogram
		tallies                     = make([]tally, c.Clients)
		lats                        = make([][]time.Duration, c.Clients)
		wg                          sync.WaitGroup
	)
	rctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	start := time.Now()
	for w := 0; w < c.Clients; w++ {
		tallies[w] = tally{}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for rctx.Err() == nil {
				t0 := time.Now()
				// The request runs to its end even past the deadline: cutting it off would
				// leave its outcome unknown and the tally inexact.
				n, err := step(ctx, cl, c, ids, rng, tallies[w])
				d := time.Since(t0)
				writes.Add(1)
				if c.Workload == "hold" {
					writes.Add(1) // the hold, then its post
				}
				if err != nil {
					errCount.Add(1)
					continue
				}
				transfers.Add(int64(n))
				lats[w] = append(lats[w], d)
				hist.add(d)
			}
		}(w)
	}
	done := make(chan struct{})
	go showProgress(done, progress, start, &transfers, &errCount, &hist)
	wg.Wait()
	close(done)
	elapsed := time.Since(start).Seconds()

	total := tally{}
	for _, t := range tallies {
		for k, v := range t {
			total[k] += v
		}
	}
	ok, err := checkBalances(ctx, cl, ids, treasury, total, progress)
	if err != nil {
		return benchResult{}, err
	}
	var head1 struct {
		Seq uint64 `json:"seq"`
	}
	if _, err := cl.do(ctx, "GET", "/v1/journal/head", nil, &head1); err != nil {
		return benchResult{}, err
	}
	// Every acknowledged write is in some record, and a record holds at least one write.
	if moved := head1.Seq - head0.Seq; transfers.Load() > 0 && (moved == 0 || int64(moved) > writes.Load()) {
		fmt.Fprintf(progress, "journal head moved by %d for %d writes\n", moved, writes.Load())
		ok = false
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	res := benchResult{Workload: c.Workload, Clients: c.Clients, Accounts: c.Accounts,
		Seconds: round3(elapsed), Transfers: transfers.Load(), Errors: errCount.Load(),
		TPS: round3(float64(transfers.Load()) / elapsed), BalancesOK: ok,
		P50: pct(all, 0.50), P95: pct(all, 0.95), P99: pct(all, 0.99), Max: pct(all, 1)}
	return res, nil
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return round3(float64(sorted[i].Microseconds()) / 1000)
}

// setupAccounts creates the accounts and a treasury, and funds every account.
func setupAccounts(ctx context.Context, cl *benchClient, c benchConfig, run string, progress io.Writer) ([]string, string, error) {
	treasury := "bench-" + run + "-treasury"
	if code, err := cl.do(ctx, "POST", "/v1/accounts", mustJSON(map[string]any{"id": treasury, "asset": "USD",
		"kind": "system", "allow_negative": true}), nil); err != nil || code != 201 {
		return nil, "", fmt.Errorf("bench: create treasury: status %d %v", code, err)
	}
	ids := benchAccountIDs(c, run)
	err := createEach(ids, min(c.Clients, 32), func(i int) error {
		code, err := cl.do(ctx, "POST", "/v1/accounts", mustJSON(map[string]any{"id": ids[i],
			"owner": "bench:" + run, "asset": "USD", "kind": benchAccountKind(c, i)}), nil)
		if err != nil || code != 201 {
			return fmt.Errorf("bench: create account: status %d %v", code, err)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	for i := 0; i < len(ids); i += 1000 {
		var items []map[string]any
		for _, id := range ids[i:min(i+1000, len(ids))] {
			items = append(items, map[string]any{"source": treasury, "destination": id,
				"amount": strconv.FormatInt(fundAmount, 10), "kind": "topup"})
		}
		code, err := cl.do(ctx, "POST", "/v1/transfers/batch", mustJSON(map[string]any{"atomic": true, "transfers": items}), nil)
		if err != nil || code != 201 {
			return nil, "", fmt.Errorf("bench: fund accounts: status %d %v", code, err)
		}
	}
	fmt.Fprintf(progress, "set up %d funded accounts\n", len(ids))
	return ids, treasury, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// step performs one unit of the workload and, on success, adds what it moved to t.
func step(ctx context.Context, cl *benchClient, c benchConfig, ids []string, rng *rand.Rand, t tally) (int, error) {
	pick := func() (string, string) {
		a := rng.IntN(len(ids))
		if c.Workload == "p2m" {
			if a == 0 {
				a = 1 + rng.IntN(len(ids)-1)
			}
			return ids[a], ids[0]
		}
		b := rng.IntN(len(ids) - 1)
		if b >= a {
			b++
		}
		return ids[a], ids[b]
	}
	switch c.Workload {
	case "p2p", "p2m":
		src, dst := pick()
		code, err := cl.do(ctx, "POST", "/v1/transfers", transferBody(src, dst, nil), nil)
		if err := statusErr(code, err, 201); err != nil {
			return 0, err
		}
		t[src]--
		t[dst]++
		return 1, nil
	case "batch":
		var b bytes.Buffer
		b.WriteString(`{"atomic":true,"transfers":[`)
		pairs := make([][2]string, c.BatchSize)
		for i := range pairs {
			if i > 0 {
				b.WriteByte(',')
			}
			pairs[i][0], pairs[i][1] = pick()
			b.Write(transferBody(pairs[i][0], pairs[i][1], nil))
		}
		b.WriteString("]}")
		code, err := cl.do(ctx, "POST", "/v1/transfers/batch", b.Bytes(), nil)
		if err := statusErr(code, err, 201); err != nil {
			return 0, err
		}
		for _, p := range pairs {
			t[p[0]]--
			t[p[1]]++
		}
		return len(pairs), nil
	default: // hold: create a hold, then post it
		src, dst := pick()
		var h struct {
			ID string `json:"id"`
		}
		code, err := cl.do(ctx, "POST", "/v1/transfers", transferBody(src, dst, map[string]any{"timeout_seconds": 600}), &h)
		if err := statusErr(code, err, 201); err != nil {
			return 0, err
		}
		code, err = cl.do(ctx, "POST", "/v1/transfers/"+h.ID+"/post", nil, nil)
		if err := statusErr(code, err, 200); err != nil {
			return 0, err
		}
		t[src]--
		t[dst]++
		return 1, nil
	}
}

// transferBody is a transfer of 1 from src to dst, as a hold when hold is set. Account ids
// are the bench's own (A-Za-z0-9-), so they need no JSON escaping.
func transferBody(src, dst string, hold map[string]any) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"source":"`...)
	b = append(b, src...)
	b = append(b, `","destination":"`...)
	b = append(b, dst...)
	b = append(b, `","amount":"1"`...)
	if hold != nil {
		b = append(b, `,"hold":`...)
		b = append(b, mustJSON(hold)...)
	}
	return append(b, '}')
}

func statusErr(code int, err error, want int) error {
	if err != nil {
		return err
	}
	if code != want {
		return fmt.Errorf("status %d", code)
	}
	return nil
}

// checkBalances compares every account's posted balance with the funding plus the tally of
// acknowledged transfers, and the treasury with minus the funding.
func checkBalances(ctx context.Context, cl *benchClient, ids []string, treasury string, t tally, progress io.Writer) (bool, error) {
	ok := true
	for _, id := range ids {
		var a struct {
			Balance struct {
				Posted string `json:"posted"`
			} `json:"balance"`
		}
		if code, err := cl.do(ctx, "GET", "/v1/accounts/"+id, nil, &a); err != nil || code != 200 {
			return false, fmt.Errorf("bench: read account %s: status %d %v", id, code, err)
		}
		want := big.NewInt(fundAmount + t[id])
		if got, _ := new(big.Int).SetString(a.Balance.Posted, 10); got == nil || got.Cmp(want) != 0 {
			if ok {
				fmt.Fprintf(progress, "balance mismatch: %s has %s, acknowledged transfers give %s\n", id, a.Balance.Posted, want)
			}
			ok = false
		}
	}
	return ok, nil
}

// histogram counts latencies in buckets growing by ~10%, for the live p99.
type histogram struct {
	buckets [256]atomic.Int64
}

func bucketOf(d time.Duration) int {
	us := float64(d.Microseconds()) + 1
	b := 0
	for us > 1.1 && b < 255 {
		us /= 1.1
		b++
	}
	return b
}

func (h *histogram) add(d time.Duration) { h.buckets[bucketOf(d)].Add(1) }

func (h *histogram) snapshot() [256]int64 {
	var s [256]int64
	for i := range s {
		s[i] = h.buckets[i].Load()
	}
	return s
}

// p99Between is the 99th percentile of the latencies added between two snapshots, in ms.
func p99Between(a, b [256]int64) float64 {
	var n int64
	for i := range a {
		n += b[i] - a[i]
	}
	if n == 0 {
		return 0
	}
	target := n - n/100
	var seen int64
	for i := range a {
		seen += b[i] - a[i]
		if seen >= target {
			us := 1.0
			for j := 0; j < i; j++ {
				us *= 1.1
			}
			return us / 1000
		}
	}
	return 0
}

func showProgress(done <-chan struct{}, w io.Writer, start time.Time, transfers, errs *atomic.Int64, h *histogram) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prevN, prevSnap, prevT := int64(0), h.snapshot(), start
	for {
		select {
		case <-done:
			fmt.Fprintln(w)
			return
		case now := <-tick.C:
			n, snap := transfers.Load(), h.snapshot()
			rate := float64(n-prevN) / now.Sub(prevT).Seconds()
			fmt.Fprintf(w, "\r%6.1fs  %9.0f transfers/s  %8d transfers  %5d errors  p99 %7.2f ms ",
				now.Sub(start).Seconds(), rate, n, errs.Load(), p99Between(prevSnap, snap))
			prevN, prevSnap, prevT = n, snap, now
		}
	}
}

func printTable(w io.Writer, r benchResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workload\t%s\n", r.Workload)
	fmt.Fprintf(tw, "clients\t%d\n", r.Clients)
	fmt.Fprintf(tw, "accounts\t%d\n", r.Accounts)
	fmt.Fprintf(tw, "seconds\t%.3f\n", r.Seconds)
	fmt.Fprintf(tw, "transfers\t%d\n", r.Transfers)
	fmt.Fprintf(tw, "transfers/s\t%.0f\n", r.TPS)
	fmt.Fprintf(tw, "errors\t%d\n", r.Errors)
	fmt.Fprintf(tw, "latency ms\tp50 %.3f  p95 %.3f  p99 %.3f  max %.3f\n", r.P50, r.P95, r.P99, r.Max)
	fmt.Fprintf(tw, "balances\t%s\n", map[bool]string{true: "ok", false: "MISMATCH"}[r.BalancesOK])
	tw.Flush()
}

// benchAccountIDs names the accounts of a bench run; under p2m the first is the merchant.
func benchAccountIDs(c benchConfig, run string) []string {
	ids := make([]string, c.Accounts)
	for i := range ids {
		ids[i] = "bench-" + run + "-" + strconv.Itoa(i)
	}
	if c.Workload == "p2m" {
		ids[0] = "bench-" + run + "-merchant"
	}
	return ids
}

// benchAccountKind is the kind of account i of benchAccountIDs.
func benchAccountKind(c benchConfig, i int) string {
	if c.Workload == "p2m" && i == 0 {
		return "merchant"
	}
	return "user"
}

// createEach runs create(i) for every index of ids on workers goroutines, returning the
// first error (the others stop taking new indexes).
func createEach(ids []string, workers int, create func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				if err := create(i); err != nil {
					once.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}
