package client_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// faultProxy stands between the SDK and a real server, and does to each request what its
// plan says: pass it on, drop the connection before or after the server got it, or answer
// in the server's stead (a 503 or 429 with Retry-After, say). It records every request.
type faultProxy struct {
	URL    string
	target string

	mu    sync.Mutex
	plan  []fault // for the next requests, in order; then every request passes
	match func(*http.Request) bool
	seen  []seenRequest
}

// fault is what the proxy does to one request.
type fault struct {
	kind       faultKind
	status     int    // answer: the status
	code       string // answer: the problem's code ("" for a body that is no problem)
	retryAfter string // answer: the Retry-After header ("" for none)
}

type faultKind int

const (
	pass       faultKind = iota
	dropBefore           // close the connection without sending the request on
	dropAfter            // send the request on, read the whole answer, then close the connection
	answer               // answer in the server's stead
)

// seenRequest is a request the proxy got, and what came of it.
type seenRequest struct {
	method, path   string
	idempotencyKey string
	hasKey         bool
	requestID      string
	body           string
	fault          faultKind
	status         int  // the server's status (pass, dropAfter)
	replayed       bool // the server's Idempotent-Replayed (pass, dropAfter)
}

// newFaultProxy starts a proxy to target. Keep-alives are off, so that every attempt of
// the SDK is one connection and one request here: net/http's own silent retry of a request
// on a reused connection never hides an attempt.
func newFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	p := &faultProxy{target: target}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	srv.Config.SetKeepAlivesEnabled(false)
	srv.Start()
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// setPlan makes the next requests that match (all, when match is nil) meet faults, in order.
func (p *faultProxy) setPlan(match func(*http.Request) bool, faults ...fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plan, p.match = faults, match
}

// requests returns what the proxy has seen.
func (p *faultProxy) requests() []seenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seenRequest(nil), p.seen...)
}

func (p *faultProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen, p.plan, p.match = nil, nil, nil
}

func (p *faultProxy) next(r *http.Request) fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.plan) == 0 || (p.match != nil && !p.match(r)) {
		return fault{kind: pass}
	}
	f := p.plan[0]
	p.plan = p.plan[1:]
	return f
}

func (p *faultProxy) record(s seenRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, s)
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f := p.next(r)
	keys, hasKey := r.Header["Idempotency-Key"]
	s := seenRequest{method: r.Method, path: r.URL.Path, hasKey: hasKey, requestID: r.Header.Get("X-Request-Id"),
		body: string(body), fault: f.kind}
	if hasKey {
		s.idempotencyKey = keys[0]
	}
	switch f.kind {
	case dropBefore:
		p.record(s)
		hangUp(w)
		return
	case answer:
		p.record(s)
		h := w.Header()
		h.Set("X-Request-Id", "proxy-answer")
		if f.retryAfter != "" {
			h.Set("Retry-After", f.retryAfter)
		}
		if f.code == "" {
			h.Set("Content-Type", "text/plain")
			w.WriteHeader(f.status)
			io.WriteString(w, http.StatusText(f.status))
			return
		}
		h.Set("Content-Type", "application/problem+json")
		w.WriteHeader(f.status)
		io.WriteString(w, `{"type":"https://tpwallet.dev/problems/`+f.code+`","title":"`+http.StatusText(f.status)+
			`","status":`+itoa(f.status)+`,"detail":"from the test proxy","code":"`+f.code+`"}`)
		return
	}
	resp, err := p.forward(r, body)
	if err != nil {
		p.record(s)
		hangUp(w)
		return
	}
	s.status, s.replayed = resp.status, resp.header.Get("Idempotent-Replayed") == "true"
	p.record(s)
	if f.kind == dropAfter {
		hangUp(w) // the server has answered (and applied a write); the client never hears it
		return
	}
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.status)
	w.Write(resp.body)
}

type forwarded struct {
	status int
	header http.Header
	body   []byte
}

// forward sends the request to the real server and reads its whole answer.
func (p *faultProxy) forward(r *http.Request, body []byte) (*forwarded, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	if len(body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &forwarded{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// hangUp closes the client's connection without a word of answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err) // the test proxy is HTTP/1.1: it can always hijack
	}
	conn.Close()
}

func itoa(v int) string { return uitoa(uint64(v)) }
