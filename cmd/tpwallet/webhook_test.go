package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientwebhook "github.com/tpwallet/tpwallet/client/webhook"
)

// hookLog is a webhook receiver that keeps every request, as a real one would before
// deduplicating by webhook-id.
type hookLog struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []hookReq
}

type hookReq struct {
	header http.Header
	body   []byte
}

func newHookLog(t *testing.T) *hookLog {
	h := &hookLog{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.reqs = append(h.reqs, hookReq{header: r.Header.Clone(), body: b})
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookLog) requests() []hookReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookReq(nil), h.reqs...)
}

// waitFor polls cond (an observable state of a child process or receiver) until it holds
// or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventPos orders event ids "<seq>-<index>".
func eventPos(t *testing.T, id string) [2]uint64 {
	seq, idx, ok := strings.Cut(id, "-")
	s, err1 := strconv.ParseUint(seq, 10, 64)
	i, err2 := strconv.ParseUint(idx, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("event id %q", id)
	}
	return [2]uint64{s, i}
}

func less(a, b [2]uint64) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }

// allEvents lists the ids of the journal's events after seq, with GET /v1/events.
func allEvents(t *testing.T, p *proc, after uint64) []string {
	t.Helper()
	var ids []string
	cursor := strconv.FormatUint(after, 10)
	for {
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		p.mustCall(t, "GET", "/v1/events?limit=1000&after="+cursor, nil, &page, 200)
		for _, e := range page.Items {
			ids = append(ids, e.ID)
		}
		if len(page.Items) == 0 {
			return ids
		}
		cursor = page.NextCursor
	}
}

// TestWebhookDeliveryAcrossCrash registers an endpoint on a real `tpwallet serve`, loads
// it with transfers, kills it with SIGKILL while webhooks are going out, restarts it, and
// checks what the receiver got: every event committed since the endpoint was registered,
// at least once, first copies in journal order (so in order for every account), every
// request signed, and copies of one webhook-id identical, so dropping them is safe.
func TestWebhookDeliveryAcrossCrash(t *testing.T) {
	dataDir := t.TempDir()
	rc := newHookLog(t)
	p := startServe(t, dataDir, "--webhook-allow-private")
	const users = 10
	fundUsers(t, p, users)
	var head struct {
		Seq uint64 `json:"seq"`
	}
	p.mustCall(t, "GET", "/v1/journal/head", nil, &head, 200)
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	p.mustCall(t, "POST", "/v1/webhooks", map[string]any{"url": rc.srv.URL + "/tpwallet"}, &ep, 201)

	// Load until 400 transfers are sent or the server dies; kill it once 60 webhooks
	// are in, which is well before all are: deliveries go one by one.
	const load = 400
	var sentN atomic.Int64
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := sentN.Add(1)
				if n > load {
					return
				}
				select {
				case <-killed:
					return
				default:
				}
				body := map[string]any{"id": "w" + strconv.FormatInt(n, 10), "source": "u" + strconv.FormatInt(n%users, 10),
					"destination": "u" + strconv.FormatInt((n+1)%users, 10), "amount": "1"}
				if _, err := p.call("POST", "/v1/transfers", body, nil); err != nil {
					return // killed
				}
			}
		}()
	}
	waitFor(t, 60*time.Second, "60 webhooks before the kill", func() bool { return len(rc.requests()) >= 60 })
	p.kill(t)
	close(killed)
	wg.Wait()
	before := len(rc.requests())

	p = startServe(t, dataDir, "--webhook-allow-private")
	for i := 0; i < 20; i++ { // after the restart too
		p.mustCall(t, "POST", "/v1/transfers", map[string]any{"source": "treasury", "destination": "u0", "amount": "1"}, nil, 201)
	}
	want := allEvents(t, p, head.Seq)
	firsts := func() []string {
		seen := map[string]bool{}
		var out []string
		for _, r := range rc.requests() {
			if id := r.header.Get("webhook-id"); !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
		return out
	}
	waitFor(t, 90*time.Second, "every event delivered", func() bool { return len(firsts()) >= len(want) })
	got := firsts()
	if len(got) != len(want) {
		t.Fatalf("%d distinct events delivered, the journal has %d since the endpoint", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delivery %d is %s, want %s: first copies out of journal order", i, got[i], want[i])
		}
	}
	bodies := map[string][]byte{}
	reqs := rc.requests()
	last := [2]uint64{}
	for i, r := range reqs {
		id := r.header.Get("webhook-id")
		if err := clientwebhook.Verify(ep.Secret, r.header, r.body, time.Now(), time.Hour); err != nil {
			t.Errorf("request %d (%s): %v", i, id, err)
		}
		var ce struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(r.body, &ce); err != nil || ce.ID != id {
			t.Errorf("request %d: webhook-id %s, body id %q (%v)", i, id, ce.ID, err)
		}
		prev, seen := bodies[id]
		if seen && string(prev) != string(r.body) {
			t.Errorf("event %s sent twice with different bodies:\n%s\n%s", id, prev, r.body)
		}
		bodies[id] = r.body
		// A copy may go back (a resend after the restart), never a new event out of order.
		if pos := eventPos(t, id); less(last, pos) {
			last = pos
		} else if !seen {
			t.Errorf("request %d: new event %s after %v", i, id, last)
		}
	}
	t.Logf("%d events, %d requests (%d before the kill, %d copies)", len(want), len(reqs), before, len(reqs)-len(want))
}

// TestWebhookServeFlags: bad webhook settings stop serve at once, naming the flag, before
// it opens a store; without --webhook-allow-private a loopback endpoint is refused.
func TestWebhookServeFlags(t *testing.T) {
	for _, c := range []struct{ flag, value string }{
		{"--webhook-timeout", "0s"},
		{"--webhook-timeout", "6m"},
		{"--webhook-retry-for", "30s"},
		{"--webhook-allow-private", "maybe"},
	} {
		dir := t.TempDir()
		out, err := exec.Command(binPath, "serve", "--addr", "127.0.0.1:0", "--data", dir, c.flag+"="+c.value).CombinedOutput()
		if err == nil || !strings.Contains(string(out), strings.TrimPrefix(c.flag, "-")) { // flag errors name it with one dash
			t.Errorf("serve %s=%s: %v\n%s", c.flag, c.value, err, out)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("serve %s=%s opened a store in %s", c.flag, c.value, dir)
		}
	}
	cmd := exec.Command(binPath, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir())
	cmd.Env = append(os.Environ(), "TPWALLET_WEBHOOK_RETRY_FOR=10s")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "--webhook-retry-for") {
		t.Errorf("TPWALLET_WEBHOOK_RETRY_FOR=10s: %v\n%s", err, out)
	}
	p := startServe(t, t.TempDir())
	var prob struct {
		Code string `json:"code"`
	}
	p.mustCall(t, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook"}, &prob, 422)
	if prob.Code != "webhook_url_forbidden" {
		t.Errorf("loopback endpoint without --webhook-allow-private: code %q", prob.Code)
	}
	p.mustCall(t, "GET", "/v1/webhooks", nil, nil, 200)
}
