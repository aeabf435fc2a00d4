package main_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const adminKey = "tpw_test_admin_key_0123456789abcdef"

var binPath string

// The long version of the crash loop (scripts/torture.sh): more kill cycles.
var crashCycles = flag.Int("crash.cycles", 3, "SIGKILL-and-restart cycles of the crash tests")

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tpwallet-bin")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "tpwallet")
	// The race detector watches the server too, except in long runs that measure it
	// (scripts/torture.sh sets TPWALLET_TEST_NORACE=1 for the soak).
	build := []string{"build", "-race", "-o", binPath, "."}
	if os.Getenv("TPWALLET_TEST_NORACE") == "1" {
		build = []string{"build", "-o", binPath, "."}
	}
	out, err := exec.Command("go", build...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build tpwallet: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `tpwallet serve`.
type proc struct {
	cmd  *exec.Cmd
	base string
	out  *bytes.Buffer
	done chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startServe(t *testing.T, dataDir string, args ...string) *proc {
	t.Helper()
	p := launch(t, dataDir, args...)
	p.waitReady(t, func(status int, _ []byte) bool { return status == 200 })
	return p
}

// launch starts `tpwallet serve` on a free port without waiting for it.
func launch(t *testing.T, dataDir string, args ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binPath, append([]string{"serve", "--addr", addr, "--data", dataDir}, args...)...)
	cmd.Env = append(os.Environ(), "TPWALLET_ADMIN_KEY="+adminKey)
	p := &proc{cmd: cmd, base: "http://" + addr, out: new(bytes.Buffer), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitReady polls /readyz until ready accepts its answer, failing t if the process dies
// or 60 s pass.
func (p *proc) waitReady(t *testing.T, ready func(status int, body []byte) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if ready(resp.StatusCode, b) {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("tpwallet serve exited before it was ready:\n%s", p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tpwallet serve not ready after 60s:\n%s", p.out)
		}
		time.Sleep(20 * time.Millisecond) // polling a child process's readiness, not synchronising our own goroutines
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("tpwallet serve exited %d after SIGTERM:\n%s", code, p.out)
	}
}

var client = &http.Client{Timeout: 30 * time.Second}

// call sends a request and decodes the JSON answer into out (when not nil).
func (p *proc) call(method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

func (p *proc) mustCall(t *testing.T, method, path string, body any, out any, want ...int) {
	t.Helper()
	code, err := p.call(method, path, body, out)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	for _, w := range want {
		if code == w {
			return
		}
	}
	t.Fatalf("%s %s: status %d, want %v", method, path, code, want)
}

type transferOut struct {
	ID           string `json:"id"`
	Source       string `json:"source"`
	Destination  string `json:"destination"`
	Amount       string `json:"amount"`
	AmountPosted string `json:"amount_posted"`
	Status       string `json:"status"`
}

type accountOut struct {
	ID            string `json:"id"`
	AllowNegative bool   `json:"allow_negative"`
	Balance       struct {
		Posted    string `json:"posted"`
		Available string `json:"available"`
	} `json:"balance"`
	DebitsPosted  string `json:"debits_posted"`
	CreditsPosted string `json:"credits_posted"`
}

// TestCrashRecovery kills a real `tpwallet serve` with SIGKILL under concurrent load, three
// times, and checks after each restart that every acknowledged transfer is there exactly
// once, that unacknowledged ones retried with the same id apply at most once, and that the
// balances equal the transfers and sum to zero. It ends with `tpwallet verify`.
func TestCrashRecovery(t *testing.T) {
	dataDir := t.TempDir()
	crashRecovery(t, dataDir, []string{"--data", dataDir})
}

// crashRecovery is TestCrashRecovery on the store storeArgs name (for serve and verify).
func crashRecovery(t *testing.T, dataDir string, storeArgs []string) {
	p := startServe(t, dataDir, storeArgs...)
	const users = 40
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "treasury", "asset": "USD",
		"kind": "system", "allow_negative": true}, nil, 201)
	for i := 0; i < users; i++ {
		id := "u" + strconv.Itoa(i)
		p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": id, "owner": "user:" + id, "asset": "USD"}, nil, 201)
		p.mustCall(t, "POST", "/v1/transfers", map[string]any{"id": "fund-" + id, "source": "treasury",
			"destination": id, "amount": "1000000", "kind": "topup"}, nil, 201)
	}

	var (
		mu   sync.Mutex
		all  = map[string]*sent{}
		next atomic.Int64
	)
	seed := time.Now().UnixNano()
	rng := mrand.New(mrand.NewPCG(uint64(seed), 0))
	t.Logf("kill points drawn with seed %d, %d cycles", seed, *crashCycles)
	for round := 0; round < *crashCycles; round++ {
		var acks atomic.Int64
		killAt := int64(50 + rng.IntN(700)) // a random moment under load
		killed := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for {
					select {
					case <-killed:
						return
					default:
					}
					n := next.Add(1)
					src, dst := int(n)%users, int(n*7+int64(w))%users
					if src == dst {
						dst = (dst + 1) % users
					}
					id := "c" + strconv.FormatInt(n, 10)
					body := map[string]any{"id": id, "source": "u" + strconv.Itoa(src),
						"destination": "u" + strconv.Itoa(dst), "amount": strconv.FormatInt(n%97+1, 10)}
					mu.Lock()
					all[id] = &sent{body: body}
					mu.Unlock()
					code, err := p.call("POST", "/v1/transfers", body, nil)
					if err != nil {
						return // the server died: outcome unknown, retried below
					}
					if code != 201 && code != 422 {
						t.Errorf("transfer %s: status %d", id, code)
						return
					}
					if code == 201 {
						mu.Lock()
						all[id].acked = true
						mu.Unlock()
						if acks.Add(1) == killAt {
							p.kill(t)
							close(killed)
						}
					}
				}
			}(w)
		}
		wg.Wait()
		p = startServe(t, dataDir, storeArgs...)
		checkAcked(t, p, all, &mu)
		// Retry every transfer whose outcome the client did not learn: exactly once either way.
		mu.Lock()
		for id, s := range all {
			if s.acked {
				continue
			}
			var out transferOut
			code, err := p.call("POST", "/v1/transfers", s.body, &out)
			if err != nil || (code != 201 && code != 200 && code != 422) {
				t.Fatalf("retry %s: status %d err %v", id, code, err)
			}
			s.acked = code == 201 || code == 200
		}
		mu.Unlock()
		checkLedger(t, p, users)
	}
	p.stop(t)
	out, err := exec.Command(binPath, append([]string{"verify"}, storeArgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tpwallet verify: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("ok")) {
		t.Fatalf("tpwallet verify printed no ok:\n%s", out)
	}
}

// sent is a transfer the load sent; acked once the server answered 201 (or 200 on retry).
type sent struct {
	body  map[string]any
	acked bool
}

// checkAcked checks every acknowledged transfer is present with its amount.
func checkAcked(t *testing.T, p *proc, all map[string]*sent, mu *sync.Mutex) {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for id, s := range all {
		if !s.acked {
			continue
		}
		n++
		var out transferOut
		p.mustCall(t, "GET", "/v1/transfers/"+id, nil, &out, 200)
		if out.Amount != s.body["amount"] || out.Source != s.body["source"] || out.Status != "posted" {
			t.Fatalf("acknowledged transfer %s: got %+v, want %v", id, out, s.body)
		}
	}
	t.Logf("%d acknowledged transfers present after restart", n)
}

// checkLedger lists every transfer once, rebuilds the balances from them, and compares with
// the accounts: equal, summing to zero, and no user below zero.
func checkLedger(t *testing.T, p *proc, users int) {
	t.Helper()
	want := map[string]*big.Int{}
	seen := map[string]bool{}
	cursor := ""
	for {
		var page struct {
			Items      []transferOut `json:"items"`
			NextCursor string        `json:"next_cursor"`
		}
		p.mustCall(t, "GET", "/v1/transfers?limit=1000&cursor="+cursor, nil, &page, 200)
		for _, tr := range page.Items {
			if seen[tr.ID] {
				t.Fatalf("transfer %s listed twice", tr.ID)
			}
			seen[tr.ID] = true
			amt, ok := new(big.Int).SetString(tr.AmountPosted, 10)
			if !ok {
				t.Fatalf("transfer %s: amount_posted %q", tr.ID, tr.AmountPosted)
			}
			for _, id := range []string{tr.Source, tr.Destination} {
				if want[id] == nil {
					want[id] = new(big.Int)
				}
			}
			want[tr.Source].Sub(want[tr.Source], amt)
			want[tr.Destination].Add(want[tr.Destination], amt)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	sum := new(big.Int)
	for i := -1; i < users; i++ {
		id := "treasury"
		if i >= 0 {
			id = "u" + strconv.Itoa(i)
		}
		var a accountOut
		p.mustCall(t, "GET", "/v1/accounts/"+id, nil, &a, 200)
		got, ok := new(big.Int).SetString(a.Balance.Posted, 10)
		if !ok {
			t.Fatalf("account %s: posted %q", id, a.Balance.Posted)
		}
		w := want[id]
		if w == nil {
			w = new(big.Int)
		}
		if got.Cmp(w) != 0 {
			t.Fatalf("account %s: posted %s, transfers give %s", id, got, w)
		}
		if !a.AllowNegative && got.Sign() < 0 {
			t.Fatalf("account %s is below zero: %s", id, got)
		}
		sum.Add(sum, got)
	}
	if sum.Sign() != 0 {
		t.Fatalf("balances sum to %s, want 0", sum)
	}
	t.Logf("%d transfers, balances consistent", len(seen))
}

// TestGracefulShutdown sends SIGTERM under load: the server finishes what it accepted (no
// 5xx, every 201 durable), exits 0, and a restart finds every acknowledged transfer.
func TestGracefulShutdown(t *testing.T) {
	dataDir := t.TempDir()
	p := startServe(t, dataDir)
	const users = 10
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "treasury", "asset": "USD", "allow_negative": true}, nil, 201)
	for i := 0; i < users; i++ {
		p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "u" + strconv.Itoa(i), "asset": "USD"}, nil, 201)
	}
	var (
		mu    sync.Mutex
		acked []string
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	stopAt := make(chan struct{})
	var once sync.Once
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				id := "g" + strconv.FormatInt(n, 10)
				code, err := p.call("POST", "/v1/transfers", map[string]any{"id": id, "source": "treasury",
					"destination": "u" + strconv.FormatInt(n%users, 10), "amount": "1"}, nil)
				if err != nil {
					return // the server closed: this request was never accepted or never answered
				}
				if code >= 500 {
					t.Errorf("transfer %s during shutdown: status %d", id, code)
				}
				if code == 201 {
					mu.Lock()
					acked = append(acked, id)
					if len(acked) == 200 {
						once.Do(func() { close(stopAt) })
					}
					mu.Unlock()
				}
			}
		}()
	}
	<-stopAt
	p.cmd.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	<-p.done
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.out)
	}
	if !bytes.Contains(p.out.Bytes(), []byte("stopped")) {
		t.Fatalf("no clean stop in the log:\n%s", p.out)
	}
	p = startServe(t, dataDir)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range acked {
		p.mustCall(t, "GET", "/v1/transfers/"+id, nil, nil, 200)
	}
	t.Logf("%d acknowledged transfers durable after a graceful shutdown", len(acked))
}

// TestNoSecretsInLogs runs serve at debug level (every request logged) through account,
// transfer, API key and error paths, and checks the log holds no key and no personal data;
// traced (to an OTLP receiver), the same for the spans it exports, and the request lines
// carry trace ids.
func TestNoSecretsInLogs(t *testing.T) {
	t.Run("untraced", func(t *testing.T) { testNoSecrets(t, false) })
	t.Run("traced", func(t *testing.T) { testNoSecrets(t, true) })
}

func testNoSecrets(t *testing.T, traced bool) {
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	sink := &otlpSink{}
	if traced {
		srv := httptest.NewServer(sink)
		defer srv.Close()
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	}
	p := startServe(t, t.TempDir(), "--log-level", "debug", "--log-format", "json")
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "t", "asset": "USD", "allow_negative": true}, nil, 201)
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "jane", "owner": "user:jane-doe-owner",
		"asset": "USD", "metadata": map[string]string{"email": "jane@example.com"}}, nil, 201)
	p.mustCall(t, "POST", "/v1/transfers", map[string]any{"source": "t", "destination": "jane", "amount": "5",
		"reference": "invoice-secret-ref", "metadata": map[string]string{"iban": "DE89370400440532013000"}}, nil, 201)
	var key struct {
		Key string `json:"key"`
	}
	p.mustCall(t, "POST", "/v1/api-keys", map[string]any{"name": "svc", "scopes": []string{"read"}}, &key, 201)
	p.mustCall(t, "POST", "/v1/transfers", map[string]any{"source": "jane", "destination": "t", "amount": "999",
		"metadata": map[string]string{"iban": "DE89370400440532013000"}}, nil, 422)
	p.mustCall(t, "GET", "/v1/accounts?owner=user:jane-doe-owner", nil, nil, 200)
	p.stop(t) // a graceful stop flushes the spans
	log := p.out.String()
	if !strings.Contains(log, `"request_id"`) {
		t.Fatalf("debug log has no request lines:\n%s", log)
	}
	if got := strings.Contains(log, `"trace_id"`); got != traced {
		t.Errorf("request lines with a trace_id: got %v, want %v:\n%s", got, traced, log)
	}
	secrets := []string{adminKey, key.Key, "jane-doe-owner", "jane@example.com",
		"DE89370400440532013000", "invoice-secret-ref"}
	for _, secret := range secrets {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
	spans := sink.bytes()
	if traced != bytes.Contains(spans, []byte("POST /v1/transfers")) {
		t.Fatalf("spans exported: got %d bytes (traced %v), want a POST /v1/transfers span only when traced", len(spans), traced)
	}
	for _, secret := range append(secrets, "jane", "user:") { // spans hold no account ids either
		if bytes.Contains(spans, []byte(secret)) {
			t.Errorf("the exported spans contain %q", secret)
		}
	}
}

// otlpSink is an OTLP/HTTP trace receiver that keeps the raw export requests: strings in
// protobuf are bytes as they are, so a search for a secret needs no decoding.
type otlpSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.buf.Write(b)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func (s *otlpSink) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}
