package httpapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fuzz targets send fuzzed bodies through the real handler over HTTP, to a real stack:
// no answer may be a 500, every error must be a problem (checkReply), and a rejected request
// must change nothing (the journal head stays).

// fuzzStack is one stack per fuzz target, shared by its inputs: opening Pebble per input
// would make fuzzing crawl. Accounts: alice (funded), bob, eve (EUR), a pending hold.
type fuzzStack struct {
	*stack
	hold string
}

func newFuzzStack(f *testing.F) *fuzzStack {
	s := newStack(f)
	s.http.Timeout = 10 * time.Second // a hung request fails its input instead of stalling the fuzzer
	spec(f)
	s.openAccount(f, "treasury", "USD", true)
	s.openAccount(f, "alice", "USD", false)
	s.openAccount(f, "bob", "USD", false)
	s.openAccount(f, "eve", "EUR", false)
	s.pay(f, "treasury", "alice", "1000000")
	return &fuzzStack{stack: s, hold: s.hold(f, "alice", "bob", "100", 0).ID}
}

// headNow reads the journal head from the store, not over HTTP, to keep inputs fast.
func (s *fuzzStack) headNow(t *testing.T) string {
	t.Helper()
	h, err := s.svc.Store().Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h.Hash.String()
}

// fuzzWrite sends one fuzzed body and checks the answer.
func (s *fuzzStack) fuzzWrite(t *testing.T, path, contentType string, body []byte) reply {
	t.Helper()
	// The client refuses header values with control characters; the server never sees them.
	contentType = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, contentType)
	before := s.headNow(t)
	r, err := s.send("POST", path, s.admin, body, hdr("Content-Type", contentType))
	if err != nil {
		t.Fatal(err)
	}
	checkReply(t, r)
	if r.Status >= 500 {
		t.Fatalf("%s", r)
	}
	if r.Status >= 400 && s.headNow(t) != before {
		t.Fatalf("a rejected request changed the journal: %s", r)
	}
	if r.Status == 200 && strings.HasSuffix(path, "/batch") {
		var res batchResults
		if err := json.Unmarshal(r.Body, &res); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		applied := false
		for _, x := range res.Results {
			applied = applied || x.Transfer != nil
		}
		if !applied && s.headNow(t) != before {
			t.Fatalf("a batch that applied nothing changed the journal: %s", r)
		}
	}
	return r
}

var transferSeeds = []string{
	`{"source":"alice","destination":"bob","amount":"1"}`,
	`{"id":"t-1","source":"alice","destination":"bob","amount":"250","asset":"USD","kind":"p2m","reference":"order-42","metadata":{"a":"b"},"hold":{"timeout_seconds":600}}`,
	`{"source":"alice","destination":"bob","amount":"340282366920938463463374607431768211455"}`,
	`{"source":"alice","destination":"bob","amount":"340282366920938463463374607431768211456"}`,
	`{"source":"alice","destination":"bob","amount":1}`,
	`{"source":"alice","destination":"bob","amount":"01"}`,
	`{"source":"alice","destination":"bob","amount":"-1"}`,
	`{"source":"alice","destination":"bob","amount":"1e3"}`,
	`{"source":"alice","destination":"eve","amount":"1"}`,
	`{"source":"alice","destination":"alice","amount":"1"}`,
	`{"source":"alice","destination":"bob","amount":"1","Amount":"2"}`,
	`{"source":"alice","destination":"bob","amount":"1","amount":"2"}`,
	`{"source":"alice","destination":"bob","amount":"1"} {}`,
	`{"source":"alice","destination":"bob","amount":"1","hold":{"timeout_seconds":-1}}`,
	`{"source":"alice","destination":"bob","amount":"1","id":"tr_0000000000000"}`,
	`{"source":"alice","destination":"bob","amount":"1","metadata":{"\ud800":"x"}}`,
	`{"source":"alice","destination":"bob","amount":"1","metadata":{"k":"\u0000"}}`,
	"{\"source\":\"alice\xff\",\"destination\":\"bob\",\"amount\":\"1\"}",
	`{"source":"alice","destination":"bob","amount":"1","hold":null,"metadata":null,"id":null}`,
	`{"source":"alice","destination":"bob","amount":"1","hold":{"timeout_seconds":1e400}}`,
	`[`, `{`, `"`, `null`, `{}`, ``, `{"source":{"source":{}}}`,
}

// FuzzDecodeTransferRequest fuzzes POST /v1/transfers.
func FuzzDecodeTransferRequest(f *testing.F) {
	for _, s := range transferSeeds {
		f.Add([]byte(s), "application/json")
	}
	f.Add([]byte(transferSeeds[0]), "text/plain")
	f.Add([]byte(transferSeeds[0]), "application/json; charset=utf-8")
	s := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := s.fuzzWrite(t, "/v1/transfers", contentType, body)
		if r.Status == 201 || r.Status == 200 {
			var tr transfer
			r.into(t, &tr)
			if tr.Source != "alice" && tr.Source != "bob" && tr.Source != "treasury" && tr.Source != "eve" {
				t.Fatalf("a transfer from %q: %s", tr.Source, r)
			}
		}
	})
}

// FuzzDecodeBatchRequest fuzzes POST /v1/transfers/batch.
func FuzzDecodeBatchRequest(f *testing.F) {
	for _, atomic := range []string{"true", "false"} {
		f.Add([]byte(`{"atomic":`+atomic+`,"transfers":[`+transferSeeds[0]+`,`+transferSeeds[4]+`]}`), "application/json")
		f.Add([]byte(`{"atomic":`+atomic+`,"transfers":[`+strings.Join(transferSeeds[:12], ",")+`]}`), "application/json")
		f.Add([]byte(`{"atomic":`+atomic+`,"transfers":[{"source":"treasury","destination":"bob","amount":"5"},{"source":"bob","destination":"alice","amount":"5"}]}`), "application/json")
		f.Add([]byte(`{"atomic":`+atomic+`,"transfers":[]}`), "application/json")
		f.Add([]byte(`{"atomic":`+atomic+`,"transfers":[1,"x",null,[],{}]}`), "application/json")
	}
	f.Add([]byte(`{"transfers":[`+transferSeeds[0]+`]}`), "application/json")
	f.Add([]byte(`{"atomic":true,"transfers":[`+transferSeeds[0]+`],"atomic":false}`), "application/json")
	f.Add([]byte(`{"atomic":true,"transfers":`), "application/json")
	s := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		s.fuzzWrite(t, "/v1/transfers/batch", contentType, body)
	})
}

// FuzzDecodeHoldRequest fuzzes the bodies of post, increase and void on a pending hold.
func FuzzDecodeHoldRequest(f *testing.F) {
	for _, op := range []uint8{0, 1, 2} {
		for _, b := range []string{``, `{}`, `{"amount":"1"}`, `{"amount":"1","final":false}`, `{"final":false}`,
			`{"amount":"0"}`, `{"amount":"101"}`, `{"amount":1}`, `{"amount":"1","final":"no"}`, `{"amount":"1"}x`,
			`{"amount":"340282366920938463463374607431768211455"}`, `{"Amount":"1"}`, `null`, `[]`} {
			f.Add(op, []byte(b), "application/json")
		}
		f.Add(op, []byte(`{}`), "")
	}
	s := newFuzzStack(f)
	var mu sync.Mutex
	f.Fuzz(func(t *testing.T, op uint8, body []byte, contentType string) {
		mu.Lock() // a new hold replaces one that an input finished
		defer mu.Unlock()
		if s.transfer(t, s.hold).Status != "pending" {
			s.hold = s.stack.hold(t, "alice", "bob", "100", 0).ID
		}
		path := "/v1/transfers/" + s.hold + "/" + []string{"post", "increase", "void"}[op%3]
		s.fuzzWrite(t, path, contentType, body)
	})
}

// FuzzDecodeAccountRequest fuzzes POST /v1/accounts.
func FuzzDecodeAccountRequest(f *testing.F) {
	for _, b := range []string{
		`{"asset":"USD"}`,
		`{"id":"alice-usd","owner":"user:alice","asset":"USD","kind":"user","allow_negative":false,"metadata":{"tier":"kyc2"}}`,
		`{"id":"","asset":"USD"}`, `{"id":"a b","asset":"USD"}`, `{"asset":"XXX"}`, `{"asset":"USD","kind":"x"}`,
		`{"asset":"USD","metadata":{"":"v"}}`, `{"asset":"USD","allow_negative":1}`, `{"asset":"USD","Asset":"EUR"}`,
	} {
		f.Add([]byte(b))
	}
	s := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.fuzzWrite(t, "/v1/accounts", "application/json", body)
	})
}

// FuzzDecodeAssetRequest fuzzes POST /v1/assets.
func FuzzDecodeAssetRequest(f *testing.F) {
	for _, b := range []string{`{"code":"XAU","scale":3}`, `{"code":"BTC","scale":8}`, `{"code":"USD","scale":2}`,
		`{"code":"x","scale":1}`, `{"code":"ABCDEFGHIJKLMNOPQ","scale":1}`, `{"code":"XAG","scale":19}`,
		`{"code":"XAG","scale":-1}`, `{"code":"XAG"}`, `{"code":"XAG","scale":1.5}`, `{"code":"XAG","scale":"1"}`} {
		f.Add([]byte(b))
	}
	s := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.fuzzWrite(t, "/v1/assets", "application/json", body)
	})
}

// FuzzDecodeAPIKeyRequest fuzzes POST /v1/api-keys.
func FuzzDecodeAPIKeyRequest(f *testing.F) {
	for _, b := range []string{`{"name":"svc","scopes":["write"]}`, `{"name":"svc","scopes":["read","admin"]}`,
		`{"name":"svc","scopes":[]}`, `{"name":"svc","scopes":["root"]}`, `{"name":"svc"}`, `{"scopes":["read"]}`,
		`{"name":"\u0000","scopes":["read"]}`, `{"name":1,"scopes":"read"}`} {
		f.Add([]byte(b))
	}
	s := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.fuzzWrite(t, "/v1/api-keys", "application/json", body)
	})
}

// FuzzQuery fuzzes the path ids and query parameters of every read: the answer is 200,
// 400 (a bad limit, cursor or time) or 404, always a problem when not 200, never a 500.
func FuzzQuery(f *testing.F) {
	routes := []string{"/v1/accounts", "/v1/accounts/%s", "/v1/accounts/%s/entries", "/v1/accounts/%s/balance",
		"/v1/transfers", "/v1/transfers/%s", "/v1/journal", "/v1/journal/head", "/v1/assets", "/v1/api-keys",
		"/v1/events", "/v1/followers"}
	for i := range routes {
		for _, q := range []string{"", "limit=1", "limit=0", "limit=1001", "limit=x", "cursor=AA", "cursor=%FF",
			"owner=user:alice", "account=alice", "at=2026-01-01T00:00:00Z", "at=yesterday", "after=3", "after=-1",
			"limit=2&cursor=dGVzdA", "after=3-0", "types=transfer.posted,account.created", "wait=0"} {
			f.Add(uint8(i), "alice", q)
		}
		f.Add(uint8(i), "%FF", "")
		f.Add(uint8(i), "", "")
	}
	s := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, route uint8, id, query string) {
		path := routes[int(route)%len(routes)]
		if strings.Contains(path, "%s") {
			path = strings.Replace(path, "%s", url.PathEscape(id), 1)
		}
		if q, _ := url.ParseQuery(query); q.Has("wait") {
			return // GET /v1/events?wait= holds the request open by design
		}
		u := path
		if query != "" {
			u += "?" + query
		}
		if _, err := url.ParseRequestURI(u); err != nil || strings.IndexFunc(u, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '#' }) >= 0 {
			return // not a request target a client sends (net/http answers those itself)
		}
		r, err := s.send("GET", u, s.admin, nil)
		if err != nil {
			return // refused by the client (a control character, say)
		}
		checkReply(t, r)
		if r.Status != 200 && r.Status != 400 && r.Status != 404 {
			t.Fatalf("%s", r)
		}
		// A cursor the server gave out leads to the next page.
		var page struct {
			NextCursor string `json:"next_cursor"`
		}
		if r.Status == 200 && json.Unmarshal(r.Body, &page) == nil && page.NextCursor != "" {
			sep := "?"
			if strings.Contains(u, "?") {
				sep = "&"
			}
			next, err := s.send("GET", u+sep+"cursor="+url.QueryEscape(page.NextCursor), s.admin, nil)
			if err == nil && next.Status >= 500 {
				t.Fatalf("next page: %s", next)
			}
		}
	})
}
