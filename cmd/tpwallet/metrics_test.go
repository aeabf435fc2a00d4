package main_test

import (
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads the metrics at url.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// value returns the value of the series of family name with exactly labels (name=value
// pairs), or -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetrics runs a known workload against the real server and checks what /metrics
// counts, that it needs no key, that no label holds an account id, and that with
// --admin-addr the metrics and pprof move there.
func TestMetrics(t *testing.T) {
	p := startServe(t, t.TempDir())
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "treasury", "asset": "USD", "allow_negative": true, "kind": "system"}, nil, 201)
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "alice-secret-id", "asset": "USD"}, nil, 201)
	p.mustCall(t, "POST", "/v1/accounts", map[string]any{"id": "bob", "asset": "USD"}, nil, 201)
	p.mustCall(t, "POST", "/v1/transfers", map[string]any{"source": "treasury", "destination": "alice-secret-id", "amount": "1000", "kind": "topup"}, nil, 201)
	for range 4 {
		p.mustCall(t, "POST", "/v1/transfers", map[string]any{"source": "alice-secret-id", "destination": "bob", "amount": "10"}, nil, 201)
	}
	p.mustCall(t, "POST", "/v1/transfers", map[string]any{"source": "bob", "destination": "alice-secret-id", "amount": "999"}, nil, 422)
	p.mustCall(t, "POST", "/v1/transfers", map[string]any{"id": "h1", "source": "alice-secret-id", "destination": "bob", "amount": "5", "hold": map[string]any{"timeout_seconds": 0}}, nil, 201)
	p.mustCall(t, "POST", "/v1/transfers", map[string]any{"id": "h2", "source": "alice-secret-id", "destination": "bob", "amount": "5", "hold": map[string]any{"timeout_seconds": 0}}, nil, 201)
	p.mustCall(t, "POST", "/v1/transfers/h1/post", map[string]any{}, nil, 200)
	p.mustCall(t, "POST", "/v1/transfers/h2/void", map[string]any{}, nil, 200)
	// An idempotent replay.
	for range 2 {
		req, _ := http.NewRequest("POST", p.base+"/v1/transfers", strings.NewReader(`{"source":"alice-secret-id","destination":"bob","amount":"1"}`))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "once")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var head struct {
		Seq uint64 `json:"seq"`
	}
	p.mustCall(t, "GET", "/v1/journal/head", nil, &head, 200)

	fams := scrape(t, p.base+"/metrics") // no Authorization header
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"tpwallet_transfers_total", []string{"kind", "topup", "outcome", "posted", "code", ""}, 1},
		{"tpwallet_transfers_total", []string{"kind", "p2p", "outcome", "posted", "code", ""}, 4 + 1},
		{"tpwallet_transfers_total", []string{"kind", "p2p", "outcome", "rejected", "code", "insufficient_funds"}, 1},
		{"tpwallet_transfers_total", []string{"kind", "p2p", "outcome", "pending", "code", ""}, 2},
		{"tpwallet_holds_created_total", nil, 2},
		{"tpwallet_holds_posted_total", nil, 1},
		{"tpwallet_holds_voided_total", nil, 1},
		{"tpwallet_holds_expired_total", nil, 0},
		{"tpwallet_holds_pending", nil, 0},
		{"tpwallet_idempotency_replays_total", nil, 1},
		{"tpwallet_http_requests_total", []string{"route", "/v1/transfers", "method", "POST", "code", "201"}, 1 + 4 + 2 + 2}, // the replay answers 201 too
		{"tpwallet_http_requests_total", []string{"route", "/v1/transfers", "method", "POST", "code", "422"}, 1},
		{"tpwallet_http_requests_total", []string{"route", "/v1/transfers/{id}/post", "method", "POST", "code", "200"}, 1},
		{"tpwallet_journal_head_seq", nil, float64(head.Seq)},
		{"tpwallet_leader", nil, 1},
		{"tpwallet_engine_stopped", nil, 0},
		{"tpwallet_engine_queue_capacity", nil, 32768},
	} {
		if got := value(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"tpwallet_engine_batch_size", "tpwallet_engine_apply_duration_seconds",
		"tpwallet_engine_commit_duration_seconds", "tpwallet_store_fsync_duration_seconds",
		"tpwallet_http_request_duration_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "alice") {
					t.Errorf("%s has label %s=%q: an account id", name, l.GetName(), l.GetValue())
				}
			}
		}
	}

	// With --admin-addr, metrics and pprof are there, and /metrics is not on the API address.
	p.stop(t)
	admin := freeAddr(t)
	q := startServe(t, t.TempDir(), "--admin-addr", admin)
	if resp, err := http.Get(q.base + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Errorf("/metrics on the API address with --admin-addr: %v %v", resp.StatusCode, err)
	}
	if fams := scrape(t, "http://"+admin+"/metrics"); fams["tpwallet_leader"] == nil {
		t.Error("no tpwallet_leader on the admin address")
	}
	resp, err := http.Get("http://" + admin + "/debug/pprof/")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("pprof on the admin address: %v %v", resp, err)
	}
	if resp, err := http.Get(q.base + "/debug/pprof/"); err != nil || resp.StatusCode != 404 {
		t.Errorf("pprof on the API address: %v %v", resp.StatusCode, err)
	}
}
