package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tpwallet/tpwallet/internal/httpapi"
)

// The caller's span, as a traceparent header carries it.
const (
	remoteTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	remoteSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + remoteTraceID + "-" + remoteSpanID + "-01"
)

// traced is a handler over s's service that records every span in memory and logs every
// request, as JSON, to log.
type traced struct {
	h   http.Handler
	exp *tracetest.InMemoryExporter
	log bytes.Buffer
}

func newTraced(t *testing.T, s *stack, tp trace.TracerProvider) *traced {
	t.Helper()
	tr := &traced{exp: tracetest.NewInMemoryExporter()}
	if tp == nil {
		sdk := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tr.exp))
		t.Cleanup(func() { sdk.Shutdown(t.Context()) })
		tp = sdk
	}
	logger := slog.New(slog.NewJSONHandler(&tr.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr.h = httpapi.New(s.svc, httpapi.Options{Logger: logger, TracerProvider: tp})
	return tr
}

// serve runs one request through the handler itself, so that every span of the request
// has ended when it returns.
func (tr *traced) serve(t *testing.T, method, path, key, body string, hdrs ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdrs); i += 2 {
		req.Header.Set(hdrs[i], hdrs[i+1])
	}
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, req)
	return rec
}

// requestLine returns the request's "request" log line.
func (tr *traced) requestLine(t *testing.T) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(tr.log.Bytes()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if line["msg"] == "request" {
			return line
		}
	}
	t.Fatalf("no request line in the log:\n%s", tr.log.String())
	return nil
}

func attr(s tracetest.SpanStub, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestTraceTransferSpanTree sends POST /v1/transfers with a traceparent and an
// Idempotency-Key and checks the spans: the server span continues the caller's trace;
// decode, idempotency, engine queue, apply and commit are its children, in that order,
// within it; and no span holds the request's ids, amount or keys.
func TestTraceTransferSpanTree(t *testing.T) {
	s := newStack(t)
	const src, dst, id, amount, idemKey = "acct-src-7731", "acct-dst-4412", "tr-9981-private", "1234567", "idem-5521-private"
	s.openAccount(t, src, "USD", true)
	s.openAccount(t, dst, "USD", false)
	tr := newTraced(t, s, nil)
	body := `{"id":"` + id + `","source":"` + src + `","destination":"` + dst + `","amount":"` + amount + `"}`
	if rec := tr.serve(t, "POST", "/v1/transfers", s.admin, body, "Traceparent", traceparent,
		"Idempotency-Key", idemKey); rec.Code != http.StatusCreated {
		t.Fatalf("POST /v1/transfers: got %d %s, want 201", rec.Code, rec.Body)
	}
	spans := tr.exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, sp := range spans {
		byName[sp.Name] = sp
	}
	srv, ok := byName["POST /v1/transfers"]
	if !ok {
		t.Fatalf("no server span POST /v1/transfers among %d spans: %v", len(spans), names(spans))
	}
	if srv.SpanKind != trace.SpanKindServer {
		t.Errorf("server span kind: got %v, want server", srv.SpanKind)
	}
	if got := srv.SpanContext.TraceID().String(); got != remoteTraceID {
		t.Errorf("server span trace id: got %s, want the caller's %s", got, remoteTraceID)
	}
	if got := srv.Parent.SpanID().String(); got != remoteSpanID || !srv.Parent.IsRemote() {
		t.Errorf("server span parent: got %s (remote %v), want the caller's %s", got, srv.Parent.IsRemote(), remoteSpanID)
	}
	for k, want := range map[attribute.Key]string{"http.request.method": "POST", "http.route": "/v1/transfers",
		"url.scheme": "http", "http.response.status_code": "201"} {
		if got := attr(srv, k).Emit(); got != want {
			t.Errorf("server span %s: got %q, want %q", k, got, want)
		}
	}
	if srv.Status.Code != codes.Unset {
		t.Errorf("server span status: got %v, want unset for a 201", srv.Status.Code)
	}
	// Each child starts no earlier than the one before it ends.
	prevEnd := srv.StartTime
	for _, name := range []string{"decode", "idempotency", "engine.queue", "engine.apply", "engine.commit"} {
		c, ok := byName[name]
		if !ok {
			t.Errorf("no %s span among %v", name, names(spans))
			continue
		}
		if c.Parent.SpanID() != srv.SpanContext.SpanID() || c.SpanContext.TraceID() != srv.SpanContext.TraceID() {
			t.Errorf("%s: parent %s trace %s, want the server span %s of trace %s", name, c.Parent.SpanID(),
				c.SpanContext.TraceID(), srv.SpanContext.SpanID(), srv.SpanContext.TraceID())
		}
		if c.StartTime.Before(prevEnd) || c.EndTime.Before(c.StartTime) || c.EndTime.After(srv.EndTime) {
			t.Errorf("%s: [%v, %v] is not after the span before it (ended %v) and within the server span [%v, %v]",
				name, c.StartTime, c.EndTime, prevEnd, srv.StartTime, srv.EndTime)
		}
		prevEnd = c.EndTime
	}
	if got := attr(byName["idempotency"], "tpwallet.idempotency").Emit(); got != "new" {
		t.Errorf("idempotency outcome: got %q, want new", got)
	}
	for _, sp := range spans {
		for _, kv := range sp.Attributes {
			for _, private := range []string{src, dst, id, amount, idemKey, s.admin} {
				if strings.Contains(kv.Value.Emit(), private) || strings.Contains(sp.Name, private) {
					t.Errorf("span %s: %s=%q holds %q", sp.Name, kv.Key, kv.Value.Emit(), private)
				}
			}
		}
	}
	line := tr.requestLine(t)
	if line["trace_id"] != remoteTraceID || line["span_id"] != srv.SpanContext.SpanID().String() {
		t.Errorf("request log line: trace_id %v span_id %v, want %s %s", line["trace_id"], line["span_id"],
			remoteTraceID, srv.SpanContext.SpanID())
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// TestTraceServerSpanRoutes checks span names and statuses beyond the happy path: the
// pattern and never the path, a refused request under its route, 4xx unset, 5xx an error.
func TestTraceServerSpanRoutes(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "acct-a", "USD", true)
	s.openAccount(t, "acct-b", "USD", false)
	tr := newTraced(t, s, nil)
	if rec := tr.serve(t, "GET", "/v1/accounts/acct-a", s.admin, ""); rec.Code != 200 {
		t.Fatalf("GET account: got %d", rec.Code)
	}
	tr.serve(t, "POST", "/v1/transfers/missing-1/post", "not-a-key", "")
	if rec := tr.serve(t, "POST", "/v1/transfers", s.admin, `{"source":"acct-b","destination":"acct-a","amount":"5"}`); rec.Code != 422 {
		t.Fatalf("overdraft: got %d, want 422", rec.Code)
	}
	s.store.failNextCommit(errInjected)
	if rec := tr.serve(t, "POST", "/v1/transfers", s.admin, `{"source":"acct-a","destination":"acct-b","amount":"5"}`); rec.Code != 503 {
		t.Fatalf("failed commit: got %d, want 503", rec.Code)
	}
	var server []tracetest.SpanStub
	for _, sp := range tr.exp.GetSpans() {
		if sp.SpanKind == trace.SpanKindServer {
			server = append(server, sp)
		}
	}
	want := []struct {
		name, code string
		status     int
		err        bool
	}{
		{"GET /v1/accounts/{id}", "", 200, false},
		{"POST /v1/transfers/{id}/post", "unauthenticated", 401, false},
		{"POST /v1/transfers", "insufficient_funds", 422, false},
		{"POST /v1/transfers", "unavailable", 503, true},
	}
	if len(server) != len(want) {
		t.Fatalf("got %d server spans %v, want %d", len(server), names(server), len(want))
	}
	for i, w := range want {
		sp := server[i]
		if sp.Name != w.name || attr(sp, "http.response.status_code").AsInt64() != int64(w.status) ||
			attr(sp, "tpwallet.code").AsString() != w.code || (sp.Status.Code == codes.Error) != w.err {
			t.Errorf("server span %d: got %s status %d code %q error %v, want %s %d %q %v", i, sp.Name,
				attr(sp, "http.response.status_code").AsInt64(), attr(sp, "tpwallet.code").AsString(),
				sp.Status.Code == codes.Error, w.name, w.status, w.code, w.err)
		}
	}
	for _, sp := range tr.exp.GetSpans() {
		if sp.Name == "engine.apply" && attr(sp, "tpwallet.code").AsString() == "insufficient_funds" {
			return
		}
	}
	t.Error("no engine.apply span with tpwallet.code insufficient_funds for the overdraft")
}

// TestLogTraceIDs checks the request's log line: trace_id and span_id when traced (here
// without a caller's traceparent: a new trace), none when tracing is off.
func TestLogTraceIDs(t *testing.T) {
	s := newStack(t)
	on := newTraced(t, s, nil)
	on.serve(t, "GET", "/v1/journal/head", s.admin, "")
	sp := on.exp.GetSpans()
	if len(sp) != 1 {
		t.Fatalf("got %d spans, want 1", len(sp))
	}
	line := on.requestLine(t)
	if line["trace_id"] != sp[0].SpanContext.TraceID().String() || line["span_id"] != sp[0].SpanContext.SpanID().String() {
		t.Errorf("traced request line: trace_id %v span_id %v, want %s %s", line["trace_id"], line["span_id"],
			sp[0].SpanContext.TraceID(), sp[0].SpanContext.SpanID())
	}
	off := newTraced(t, s, noop.NewTracerProvider())
	off.serve(t, "GET", "/v1/journal/head", s.admin, "", "Traceparent", traceparent)
	line = off.requestLine(t)
	if _, ok := line["trace_id"]; ok || line["request_id"] == nil {
		t.Errorf("untraced request line: got %v, want a request_id and no trace_id", line)
	}
}
