package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/service"
)

// routeScopes is the scope api.md gives every route ("" for no key at all).
var routeScopes = map[string]string{
	"GET /healthz":      "",
	"GET /metrics":      "",
	"GET /readyz":       "",
	"GET /openapi.yaml": "",

	"POST /v1/api-keys":        "admin",
	"GET /v1/api-keys":         "admin",
	"DELETE /v1/api-keys/{id}": "admin",

	"GET /v1/assets":  "read",
	"POST /v1/assets": "admin",

	"POST /v1/accounts":                "write",
	"GET /v1/accounts":                 "read",
	"GET /v1/accounts/{id}":            "read",
	"POST /v1/accounts/{id}/freeze":    "admin",
	"POST /v1/accounts/{id}/unfreeze":  "admin",
	"GET /v1/accounts/{id}/entries":    "read",
	"GET /v1/accounts/{id}/balance":    "read",
	"POST /v1/transfers":               "write",
	"POST /v1/transfers/batch":         "write",
	"GET /v1/transfers":                "read",
	"GET /v1/transfers/{id}":           "read",
	"POST /v1/transfers/{id}/post":     "write",
	"POST /v1/transfers/{id}/increase": "write",
	"POST /v1/transfers/{id}/void":     "write",

	"GET /v1/journal":      "read",
	"GET /v1/journal/head": "read",
	"GET /v1/events":       "read",
	"GET /v1/followers":    "admin",

	"POST /v1/webhooks":                  "admin",
	"GET /v1/webhooks":                   "admin",
	"GET /v1/webhooks/{id}":              "admin",
	"DELETE /v1/webhooks/{id}":           "admin",
	"GET /v1/webhooks/{id}/deliveries":   "admin",
	"GET /v1/webhooks/{id}/dead-letters": "admin",
	"POST /v1/webhooks/{id}/replay":      "admin",
}

var scopeRank = map[string]int{"read": 1, "write": 2, "admin": 3}

func TestAuth(t *testing.T) {
	s := newStack(t)
	keys := map[string]string{
		"read":  s.newKey(t, "reader", "read"),
		"write": s.newKey(t, "writer", "write"),
		"admin": s.admin,
	}
	patterns := httpapi.New(nil, httpapi.Options{}).Patterns()
	for _, p := range patterns {
		if _, ok := routeScopes[p]; !ok {
			t.Errorf("route %s has no scope in routeScopes: add what api.md says", p)
		}
	}
	if len(patterns) != len(routeScopes) {
		t.Errorf("the server has %d routes, routeScopes %d", len(patterns), len(routeScopes))
	}
	s.unchanged(t, func() {
		for _, p := range patterns {
			method, path, _ := strings.Cut(p, " ")
			path = strings.ReplaceAll(path, "{id}", "no-such-id")
			scope := routeScopes[p]
			if scope == "" {
				s.do(t, method, path, "", nil).want(t, 200)
				continue
			}
			s.do(t, method, path, "", nil).wantProblem(t, 401, "unauthenticated")
			s.do(t, method, path, "tpw_not-a-key", nil).wantProblem(t, 401, "unauthenticated")
			s.do(t, method, path, "", nil, hdr("Authorization", "Basic "+adminSecret)).wantProblem(t, 401, "unauthenticated")
			s.do(t, method, path, "", nil, hdr("Authorization", "Bearer ")).wantProblem(t, 401, "unauthenticated")
			for have, key := range keys {
				r := s.do(t, method, path, key, nil)
				if scopeRank[have] < scopeRank[scope] {
					r.wantProblem(t, 403, "forbidden")
				} else if r.Status == 401 || r.Status == 403 {
					t.Errorf("%s with a %s key: %s", p, have, r)
				}
			}
		}
		// Authentication comes before routing.
		s.do(t, "GET", "/v1/no-such-route", "", nil).wantProblem(t, 401, "unauthenticated")
		s.do(t, "DELETE", "/v1/accounts", "", nil).wantProblem(t, 401, "unauthenticated")
		s.do(t, "GET", "/v1", "", nil).wantProblem(t, 401, "unauthenticated")
		s.do(t, "GET", "/v1/no-such-route", keys["read"], nil).wantProblem(t, 404, "not_found")
	})
}

func TestAPIKeys(t *testing.T) {
	s := newStack(t)
	var created struct {
		ID        string   `json:"id"`
		Name      string   `json:"name"`
		Scopes    []string `json:"scopes"`
		Key       string   `json:"key"`
		CreatedAt string   `json:"created_at"`
	}
	s.do(t, "POST", "/v1/api-keys", s.admin, obj{"name": "checkout-service", "scopes": []string{"write"}}).
		want(t, 201).into(t, &created)
	if created.ID == "" || created.Name != "checkout-service" || !slices.Equal(created.Scopes, []string{"write"}) ||
		created.Key == "" {
		t.Fatalf("created key: %+v", created)
	}
	reader := s.newKey(t, "reader", "read")
	s.do(t, "POST", "/v1/accounts", created.Key, obj{"id": "by-writer", "asset": "USD"}).want(t, 201)
	s.do(t, "POST", "/v1/assets", created.Key, obj{"code": "XAU", "scale": 3}).wantProblem(t, 403, "forbidden")

	list := s.do(t, "GET", "/v1/api-keys", s.admin, nil).want(t, 200)
	if strings.Contains(string(list.Body), created.Key) || strings.Contains(string(list.Body), `"key"`) {
		t.Errorf("the key list shows secrets: %s", list.Body)
	}
	var keys page[map[string]any]
	list.into(t, &keys)
	if n := len(keys.Items); n != 3 { // admin, checkout-service, reader
		t.Errorf("got %d keys, want 3: %s", n, list.Body)
	}
	if !slices.ContainsFunc(keys.Items, func(k map[string]any) bool { return k["id"] == created.ID }) {
		t.Errorf("the new key is not listed: %s", list.Body)
	}

	s.unchanged(t, func() {
		for _, bad := range []string{
			`{"name":"x","scopes":["superuser"]}`,
			`{"name":"x","scopes":["read","owner"]}`,
			`{"name":"x","scopes":[]}`,
			`{"name":"x"}`,
			`{"name":"x","scopes":["read"],"extra":1}`,
			`{"name":"x","scopes":"read"}`,
		} {
			s.do(t, "POST", "/v1/api-keys", s.admin, bad).wantProblem(t, 400, "invalid_request")
		}
	})

	s.do(t, "DELETE", "/v1/api-keys/"+created.ID, s.admin, nil).want(t, 204)
	s.do(t, "GET", "/v1/assets", created.Key, nil).wantProblem(t, 401, "unauthenticated")
	s.do(t, "DELETE", "/v1/api-keys/"+created.ID, s.admin, nil).wantProblem(t, 404, "not_found")
	s.do(t, "DELETE", "/v1/api-keys/key_nosuch", s.admin, nil).wantProblem(t, 404, "not_found")
	s.do(t, "GET", "/v1/api-keys", s.admin, nil).want(t, 200).into(t, &keys)
	if slices.ContainsFunc(keys.Items, func(k map[string]any) bool { return k["id"] == created.ID }) {
		t.Errorf("a revoked key is still listed")
	}

	// The key list is a page like every list.
	for range 3 {
		s.newKey(t, "more", "read")
	}
	var ids []string
	for _, k := range all[map[string]any](t, s, s.admin, "/v1/api-keys", 1000) {
		ids = append(ids, k["id"].(string))
	}
	if len(ids) != 5 || !slices.IsSorted(ids) {
		t.Errorf("keys: %v, want 5 ordered by id", ids)
	}
	for _, limit := range []int{1, 2} {
		var got []string
		for _, k := range all[map[string]any](t, s, s.admin, "/v1/api-keys", limit) {
			got = append(got, k["id"].(string))
		}
		if !slices.Equal(got, ids) {
			t.Errorf("keys with limit %d: %v, want %v", limit, got, ids)
		}
	}
	checkPaging(t, s, s.admin, "/v1/api-keys")

	s = s.restart(t)
	s.do(t, "GET", "/v1/assets", created.Key, nil).wantProblem(t, 401, "unauthenticated")
	s.do(t, "GET", "/v1/assets", reader, nil).want(t, 200)
	s.do(t, "POST", "/v1/accounts", reader, obj{"asset": "USD"}).wantProblem(t, 403, "forbidden")
	s.do(t, "GET", "/v1/api-keys", s.admin, nil).want(t, 200).into(t, &keys)
	if len(keys.Items) != 5 {
		t.Errorf("after a restart: got %d keys, want 5", len(keys.Items))
	}
}

func TestHealth(t *testing.T) {
	s := newStack(t)
	if r := s.do(t, "GET", "/healthz", "", nil).want(t, 200); string(r.Body) != `{"status":"ok"}` {
		t.Errorf("healthz: %s", r.Body)
	}
	if r := s.do(t, "GET", "/readyz", "", nil).want(t, 200); string(r.Body) != `{"status":"ready","role":"leader"}` {
		t.Errorf("readyz: %s", r.Body)
	}
}

func TestAssets(t *testing.T) {
	s := newStack(t)
	type asset struct {
		Code  string `json:"code"`
		Scale int    `json:"scale"`
	}
	var assets struct {
		Items []asset `json:"items"`
	}
	s.do(t, "GET", "/v1/assets", s.admin, nil).want(t, 200).into(t, &assets)
	want := map[string]int{"USD": 2, "EUR": 2, "GBP": 2, "CNY": 2, "HKD": 2, "JPY": 0, "BTC": 8, "ETH": 18, "USDT": 6}
	got := map[string]int{}
	for _, a := range assets.Items {
		got[a.Code] = a.Scale
	}
	if !reflect.DeepEqual(got, want) || len(assets.Items) != len(want) {
		t.Errorf("preloaded assets: got %v, want %v", assets.Items, want)
	}

	if r := s.do(t, "POST", "/v1/assets", s.admin, obj{"code": "XAU", "scale": 3}).want(t, 201); string(r.Body) != `{"code":"XAU","scale":3}` {
		t.Errorf("created asset: %s", r.Body)
	}
	s.do(t, "GET", "/v1/assets", s.admin, nil).want(t, 200).into(t, &assets)
	if !slices.Contains(assets.Items, asset{"XAU", 3}) {
		t.Errorf("XAU is not listed: %+v", assets.Items)
	}
	s.openAccount(t, "gold", "XAU", false)

	s.unchanged(t, func() {
		s.do(t, "POST", "/v1/assets", s.admin, obj{"code": "XAU", "scale": 3}).wantProblem(t, 409, "asset_exists")
		s.do(t, "POST", "/v1/assets", s.admin, obj{"code": "USD", "scale": 4}).wantProblem(t, 409, "asset_exists")
		for _, bad := range []string{
			`{"code":"X","scale":2}`,
			`{"code":"xau","scale":2}`,
			`{"code":"ABCDEFGHIJKLMNOPQ","scale":2}`,
			`{"code":"X-Y","scale":2}`,
			`{"code":"","scale":2}`,
			`{"code":"ABC","scale":19}`,
			`{"code":"ABC","scale":-1}`,
			`{"code":"ABC"}`,
			`{"code":"ABC","scale":"2"}`,
			`{"code":"ABC","scale":2.5}`,
			`{"code":"ABC","scale":2,"name":"x"}`,
		} {
			s.do(t, "POST", "/v1/assets", s.admin, bad).wantProblem(t, 400, "invalid_request")
		}
	})
	s.do(t, "POST", "/v1/assets", s.admin, obj{"code": "ABCDEFGHIJKLMNOP", "scale": 18}).want(t, 201)
	s.do(t, "POST", "/v1/assets", s.admin, obj{"code": "Z9", "scale": 0}).want(t, 201)
}

var (
	timestampRE  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)
	serverTranID = regexp.MustCompile(`^tr_[0-9a-hjkmnp-tv-z]{13}$`)
)

func TestAccounts(t *testing.T) {
	s := newStack(t)
	writer := s.newKey(t, "writer", "write")
	var a account
	s.do(t, "POST", "/v1/accounts", writer, obj{"asset": "USD"}).want(t, 201).into(t, &a)
	zero := balance{"0", "0", "0", "0"}
	if a.ID == "" || a.Owner != "" || a.Asset != "USD" || a.Kind != "user" || a.AllowNegative ||
		a.Status != "active" || a.Balance != zero || a.DebitsPosted != "0" || a.CreditsPosted != "0" ||
		a.Metadata == nil || len(a.Metadata) != 0 || !timestampRE.MatchString(a.CreatedAt) {
		t.Errorf("defaults: %+v", a)
	}
	if got := s.account(t, a.ID); !reflect.DeepEqual(got, a) {
		t.Errorf("GET: %+v, want %+v", got, a)
	}

	var alice account
	s.do(t, "POST", "/v1/accounts", writer, obj{"id": "alice-usd", "owner": "user:alice", "asset": "USD",
		"kind": "merchant", "allow_negative": true, "metadata": obj{"tier": "kyc2"}}).want(t, 201).into(t, &alice)
	if alice.ID != "alice-usd" || alice.Owner != "user:alice" || alice.Kind != "merchant" || !alice.AllowNegative ||
		alice.Metadata["tier"] != "kyc2" {
		t.Errorf("created: %+v", alice)
	}
	for _, kind := range []string{"user", "merchant", "system", "fee", "fx", "settlement"} {
		var k account
		s.do(t, "POST", "/v1/accounts", writer, obj{"asset": "EUR", "kind": kind}).want(t, 201).into(t, &k)
		if k.Kind != kind {
			t.Errorf("kind %s: got %s", kind, k.Kind)
		}
	}
	s.do(t, "POST", "/v1/accounts", writer, obj{"id": strings.Repeat("a", 64), "asset": "USD"}).want(t, 201)
	s.do(t, "POST", "/v1/accounts", writer, obj{"id": "A-z_0.9:x", "asset": "USD"}).want(t, 201)

	big := map[string]string{}
	for i := range 32 {
		big[fmt.Sprintf("%02d%s", i, strings.Repeat("k", 62))] = strings.Repeat("v", 512)
	}
	s.do(t, "POST", "/v1/accounts", writer, obj{"asset": "USD", "metadata": big}).want(t, 201)

	s.unchanged(t, func() {
		s.do(t, "POST", "/v1/accounts", writer, obj{"id": "alice-usd", "asset": "EUR"}).wantProblem(t, 409, "account_exists")
		s.do(t, "POST", "/v1/accounts", writer, obj{"id": "x", "asset": "XXX"}).wantProblem(t, 422, "asset_unknown")
		tooMany := map[string]string{}
		for i := range 33 {
			tooMany[fmt.Sprint(i)] = "v"
		}
		for _, bad := range []any{
			obj{"id": "", "asset": "USD"},
			obj{"id": "bad id", "asset": "USD"},
			obj{"id": "a/b", "asset": "USD"},
			obj{"id": "é", "asset": "USD"},
			obj{"id": strings.Repeat("a", 65), "asset": "USD"},
			obj{"id": 7, "asset": "USD"},
			obj{"asset": "USD", "kind": "wizard"},
			obj{"owner": "user:x"},
			obj{"asset": "USD", "owner": strings.Repeat("o", 257)},
			obj{"asset": "USD", "metadata": tooMany},
			obj{"asset": "USD", "metadata": obj{strings.Repeat("k", 65): "v"}},
			obj{"asset": "USD", "metadata": obj{"": "v"}},
			obj{"asset": "USD", "metadata": obj{"k": strings.Repeat("v", 513)}},
			obj{"asset": "USD", "metadata": obj{"k": 1}},
			obj{"asset": "USD", "allow_negative": "yes"},
			obj{"asset": "USD", "balance": "100"},
		} {
			s.do(t, "POST", "/v1/accounts", writer, bad).wantProblem(t, 400, "invalid_request")
		}
	})
	s.do(t, "GET", "/v1/accounts/nobody", writer, nil).wantProblem(t, 404, "account_not_found")
}

func TestListAccounts(t *testing.T) {
	s := newStack(t)
	reader := s.newKey(t, "reader", "read")
	var aliceIDs, everyID []string
	for _, id := range []string{"c-alice", "a-alice", "b-alice"} {
		s.do(t, "POST", "/v1/accounts", s.admin, obj{"id": id, "owner": "user:alice", "asset": "USD"}).want(t, 201)
		aliceIDs = append(aliceIDs, id)
	}
	for _, id := range []string{"a-bob", "z-bob"} {
		s.do(t, "POST", "/v1/accounts", s.admin, obj{"id": id, "owner": "user:bob", "asset": "EUR"}).want(t, 201)
	}
	var server account
	s.do(t, "POST", "/v1/accounts", s.admin, obj{"owner": "user:alice", "asset": "JPY"}).want(t, 201).into(t, &server)
	aliceIDs = append(aliceIDs, server.ID)
	everyID = append(append(everyID, aliceIDs...), "a-bob", "z-bob")
	slices.Sort(aliceIDs)
	slices.Sort(everyID)

	ids := func(as []account) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for _, limit := range []int{1, 2, 1000} {
		if got := ids(all[account](t, s, reader, "/v1/accounts?owner=user:alice", limit)); !slices.Equal(got, aliceIDs) {
			t.Errorf("owner user:alice, limit %d: got %v, want %v", limit, got, aliceIDs)
		}
		if got := ids(all[account](t, s, reader, "/v1/accounts", limit)); !slices.Equal(got, everyID) {
			t.Errorf("all, limit %d: got %v, want %v", limit, got, everyID)
		}
	}
	var p page[account]
	s.do(t, "GET", "/v1/accounts?owner=user:nobody", reader, nil).want(t, 200).into(t, &p)
	if len(p.Items) != 0 || p.NextCursor != "" {
		t.Errorf("unknown owner: %+v", p)
	}
	s.do(t, "GET", "/v1/accounts", reader, nil).want(t, 200).into(t, &p)
	if len(p.Items) != len(everyID) || p.NextCursor != "" {
		t.Errorf("default limit: %d items, next %q", len(p.Items), p.NextCursor)
	}
	checkPaging(t, s, reader, "/v1/accounts?owner=user:alice")
}

// checkPaging checks that bad limits and cursors are 400 on a list path.
func checkPaging(t *testing.T, s *stack, key, path string) {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=", "limit=1.5",
		"limit=01", "limit=+5", "cursor=not-a-cursor", "cursor=%00%ff", "limit=1&cursor=zzzz"} {
		s.do(t, "GET", path+sep+q, key, nil).wantProblem(t, 400, "invalid_request")
	}
	s.do(t, "GET", path+sep+"limit=1000", key, nil).want(t, 200)
}

func TestFreeze(t *testing.T) {
	s := newStack(t)
	writer := s.newKey(t, "writer", "write")
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.openAccount(t, "bob", "USD", false)
	s.pay(t, "treasury", "alice", "1000")
	s.pay(t, "treasury", "bob", "1000")
	h1 := s.hold(t, "alice", "bob", "100", 0)
	h2 := s.hold(t, "alice", "bob", "50", 0)
	h3 := s.hold(t, "bob", "alice", "10", 0)

	s.do(t, "POST", "/v1/accounts/alice/freeze", writer, nil).wantProblem(t, 403, "forbidden")
	var a account
	s.do(t, "POST", "/v1/accounts/alice/freeze", s.admin, nil).want(t, 200).into(t, &a)
	if a.Status != "frozen" || a.ID != "alice" {
		t.Fatalf("frozen: %+v", a)
	}
	s.unchanged(t, func() {
		s.do(t, "POST", "/v1/accounts/alice/freeze", s.admin, nil).want(t, 200) // already: no change
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "alice", "destination": "bob", "amount": "1"}).
			wantProblem(t, 422, "account_frozen")
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "bob", "destination": "alice", "amount": "1"}).
			wantProblem(t, 422, "account_frozen")
		s.do(t, "POST", "/v1/transfers", writer, obj{"source": "bob", "destination": "alice", "amount": "1",
			"hold": obj{}}).wantProblem(t, 422, "account_frozen")
		s.do(t, "POST", "/v1/transfers/"+h1.ID+"/post", writer, nil).wantProblem(t, 422, "account_frozen")
		s.do(t, "POST", "/v1/transfers/"+h3.ID+"/post", writer, nil).wantProblem(t, 422, "account_frozen")
		s.do(t, "POST", "/v1/transfers/"+h1.ID+"/increase", writer, obj{"amount": "1"}).wantProblem(t, 422, "account_frozen")
		s.do(t, "POST", "/v1/accounts/alice/freeze", s.admin, `{"why":"x"}`).wantProblem(t, 400, "invalid_request")
		s.do(t, "POST", "/v1/accounts/nobody/freeze", s.admin, nil).wantProblem(t, 404, "account_not_found")
		s.do(t, "POST", "/v1/accounts/nobody/unfreeze", s.admin, nil).wantProblem(t, 404, "account_not_found")
	})
	// A frozen account's holds may still be voided, releasing the funds.
	var v transfer
	s.do(t, "POST", "/v1/transfers/"+h1.ID+"/void", writer, nil).want(t, 200).into(t, &v)
	if v.Status != "voided" {
		t.Errorf("void while frozen: %+v", v)
	}
	s.wantBalance(t, "alice", balance{Posted: "1000", Available: "950", PendingDebits: "50", PendingCredits: "10"})

	s.do(t, "POST", "/v1/accounts/alice/unfreeze", s.admin, "{}").want(t, 200).into(t, &a)
	if a.Status != "active" {
		t.Fatalf("unfrozen: %+v", a)
	}
	s.do(t, "POST", "/v1/transfers/"+h2.ID+"/post", writer, nil).want(t, 200)
	s.pay(t, "alice", "bob", "1")
	s.wantBalance(t, "alice", balance{Posted: "949", Available: "949", PendingDebits: "0", PendingCredits: "10"})
	s.do(t, "POST", "/v1/accounts/alice/freeze", s.admin, "", hdr("Content-Type", "")).want(t, 200)
	if got := s.account(t, "alice").Status; got != "frozen" {
		t.Errorf("status %s, want frozen", got)
	}
}

func TestEntriesAndBalance(t *testing.T) {
	s := newStack(t)
	reader := s.newKey(t, "reader", "read")
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.openAccount(t, "bob", "USD", false)
	s.do(t, "GET", "/v1/accounts/alice/balance", reader, nil).want(t, 200)
	t1 := s.pay(t, "treasury", "alice", "1000")
	t2 := s.pay(t, "alice", "bob", "300")
	h := s.hold(t, "alice", "bob", "200", 0)
	var p1, p2 transfer
	s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", s.admin, obj{"amount": "150", "final": false}).want(t, 200).into(t, &p1)
	s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", s.admin, nil).want(t, 200).into(t, &p2)
	if p2.AmountPosted != "200" || p2.Status != "posted" {
		t.Fatalf("post of the rest: %+v", p2)
	}

	type e struct{ id, dir, amount, after string }
	check := func(acct string, want []e) {
		t.Helper()
		for _, limit := range []int{1, 3, 1000} {
			got := all[entry](t, s, reader, "/v1/accounts/"+acct+"/entries", limit)
			if len(got) != len(want) {
				t.Fatalf("%s entries (limit %d): got %+v, want %+v", acct, limit, got, want)
			}
			for i, g := range got {
				w := want[i]
				if g.TransferID != w.id || g.Direction != w.dir || g.Amount != w.amount || g.PostedAfter != w.after ||
					g.Kind != "p2p" {
					t.Errorf("%s entry %d: got %+v, want %+v", acct, i, g, w)
				}
				if i > 0 && !(g.Timestamp < got[i-1].Timestamp) {
					t.Errorf("%s entries are not newest first: %s then %s", acct, got[i-1].Timestamp, g.Timestamp)
				}
			}
		}
	}
	check("alice", []e{{h.ID, "debit", "50", "500"}, {h.ID, "debit", "150", "550"}, {t2.ID, "debit", "300", "700"},
		{t1.ID, "credit", "1000", "1000"}})
	check("bob", []e{{h.ID, "credit", "50", "500"}, {h.ID, "credit", "150", "450"}, {t2.ID, "credit", "300", "300"}})
	check("treasury", []e{{t1.ID, "debit", "1000", "-1000"}})
	checkPaging(t, s, reader, "/v1/accounts/alice/entries")
	s.do(t, "GET", "/v1/accounts/nobody/entries", reader, nil).wantProblem(t, 404, "account_not_found")

	balanceAt := func(acct, at string) string {
		t.Helper()
		var b struct {
			AccountID string `json:"account_id"`
			At        string `json:"at"`
			Posted    string `json:"posted"`
		}
		path := "/v1/accounts/" + acct + "/balance"
		if at != "" {
			path += "?at=" + url.QueryEscape(at)
		}
		s.do(t, "GET", path, reader, nil).want(t, 200).into(t, &b)
		if b.AccountID != acct {
			t.Errorf("balance of %s: %+v", acct, b)
		}
		if timestampRE.MatchString(at) && b.At != at {
			t.Errorf("balance at %s: served at %s", at, b.At)
		}
		return b.Posted
	}
	for _, c := range []struct{ at, want string }{
		{justBefore(t, t1.CreatedAt), "0"},
		{t1.CreatedAt, "1000"},
		{justBefore(t, t2.CreatedAt), "1000"},
		{t2.CreatedAt, "700"},
		{*p1.PostedAt, "550"},
		{*p2.PostedAt, "500"},
		{"2200-01-01T00:00:00Z", "500"},
		{"1970-01-01T00:00:00Z", "0"},
		{inZone(t, t1.CreatedAt, "+08:00"), "1000"},
		{inZone(t, justBefore(t, t2.CreatedAt), "-05:30"), "1000"},
		{strings.ToLower(t2.CreatedAt), "700"},
		{"", "500"},
	} {
		if got := balanceAt("alice", c.at); got != c.want {
			t.Errorf("alice balance at %q: got %s, want %s", c.at, got, c.want)
		}
	}
	if got := balanceAt("treasury", ""); got != "-1000" {
		t.Errorf("treasury balance: got %s, want -1000", got)
	}
	for _, bad := range []string{"yesterday", "", "2026-01-01", "2026-01-01T00:00:00", "1e9", "2026-13-01T00:00:00Z",
		"9999-01-01T00:00:00Z"} {
		s.do(t, "GET", "/v1/accounts/alice/balance?at="+bad, reader, nil).wantProblem(t, 400, "invalid_request")
	}
	s.do(t, "GET", "/v1/accounts/nobody/balance", reader, nil).wantProblem(t, 404, "account_not_found")
}

func timeParse(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// inZone writes ts with another UTC offset.
func inZone(t *testing.T, ts, offset string) string {
	t.Helper()
	tm, err := timeParse(ts)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := time.Parse("-07:00", offset)
	if err != nil {
		t.Fatal(err)
	}
	return tm.In(loc.Location()).Format(time.RFC3339Nano)
}

// TestBalanceNowEngineClockAhead: without ?at= the balance is the current one, even when the
// engine's clock, which stamps entries, is ahead of the wall clock (times only increase,
// so after a restart on a clock that went back, entries are stamped in the future).
func TestBalanceNowEngineClockAhead(t *testing.T) {
	ahead := func() int64 { return time.Now().Add(time.Hour).UnixNano() }
	s := openStackWith(t, t.TempDir(), engine.Options{Now: ahead}, service.Options{})
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.pay(t, "treasury", "alice", "100")
	var b struct {
		Posted string `json:"posted"`
	}
	s.do(t, "GET", "/v1/accounts/alice/balance", s.admin, nil).want(t, 200).into(t, &b)
	if b.Posted != "100" {
		t.Errorf("balance now: got %s, want 100 (GET /v1/accounts/alice says %s)", b.Posted, s.account(t, "alice").Balance.Posted)
	}
}

// justBefore returns the RFC 3339 time one nanosecond before ts.
func justBefore(t *testing.T, ts string) string {
	t.Helper()
	tm, err := timeParse(ts)
	if err != nil {
		t.Fatal(err)
	}
	return tm.Add(-1).UTC().Format("2006-01-02T15:04:05.000000000Z")
}

func TestStrictInput(t *testing.T) {
	s := newStack(t)
	writer := s.newKey(t, "writer", "write")
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.openAccount(t, "bob", "USD", false)
	s.pay(t, "treasury", "alice", "1000")
	h := s.hold(t, "alice", "bob", "10", 0)
	alice := s.account(t, "alice")

	valid := `{"source":"alice","destination":"bob","amount":"1"}`
	s.unchanged(t, func() {
		for _, body := range []string{
			`{"source":"alice","destination":"bob","amount":"1","colour":"red"}`,
			`{"source":"alice","destination":"bob","amount":"1","Amount":"2"}`,
			`{"Source":"alice","destination":"bob","amount":"1"}`,
			`{"source":"alice","destination":"bob","amount":"1","amount":"2"}`,
			`{"source":"alice","destination":"bob","amount":"1","metadata":{"k":"a","k":"b"}}`,
			`{"source":"alice","destination":"bob","amount":"1","hold":{"Timeout_Seconds":5}}`,
			`{"source":"alice","destination":"bob","amount":"1","hold":{"timeout_seconds":5,"x":1}}`,
			`{"source":"alice","destination":"bob","amount":"1"`,
			`{"source":"alice","destination":"bob","amount":"1"}{}`,
			`{"source":"alice","destination":"bob","amount":"1"} x`,
			`{"source":"alice","destination":"bob","amount":"1"}]`,
			`[{"source":"alice","destination":"bob","amount":"1"}]`,
			`"hello"`,
			`null`,
			`{}`,
			`{"source":"alice","destination":"bob","amount":1}`,
			`{"source":"alice","destination":"bob","amount":1.5}`,
			`{"source":"alice","destination":"bob","amount":null}`,
			`{"source":"alice","destination":"bob","amount":true}`,
			`{"source":"alice","destination":"bob","amount":["1"]}`,
			`{"source":"alice","destination":"bob"}`,
			`{"source":"alice","amount":"1"}`,
			`{"destination":"bob","amount":"1"}`,
			`{"source":"","destination":"bob","amount":"1"}`,
			`{"source":"alice","destination":"bob","amount":"1","id":""}`,
			`{"source":"alice","destination":"bob","amount":"1","id":"has space"}`,
			`{"source":"alice","destination":"bob","amount":"1","id":"tr_0000000000000"}`,
			`{"source":"alice","destination":"bob","amount":"1","id":"tr_01hz3v9k8m2qa"}`,
			`{"source":"alice","destination":"bob","amount":"1","kind":"gift"}`,
			`{"source":"alice","destination":"bob","amount":"1","reference":"` + strings.Repeat("r", 257) + `"}`,
			`{"source":"alice","destination":"bob","amount":"1","hold":{"timeout_seconds":-1}}`,
			`{"source":"alice","destination":"bob","amount":"1","hold":{"timeout_seconds":315360001}}`,
			`{"source":"alice","destination":"bob","amount":"1","hold":{"timeout_seconds":"5"}}`,
			`{"source":"alice","destination":"bob","amount":"1","hold":{"timeout_seconds":1.5}}`,
			`{"source":"alice","destination":"bob","amount":"1","hold":true}`,
			`{"source":"alice","destination":"bob","amount":"1","metadata":{"k":1}}`,
			`{"source":"alice","destination":"bob","amount":"1","metadata":[]}`,
			"{\"source\":\"alice\",\"destination\":\"bob\",\"amount\":\"1\"}\x00",
		} {
			s.do(t, "POST", "/v1/transfers", writer, body).wantProblem(t, 400, "invalid_request")
		}
		for _, amount := range []string{"-1", "+1", "01", "00", "1.5", "1.0", "1e3", "1E3", "0x10", " 1", "1 ",
			"", "0", "١", "340282366920938463463374607431768211456", "999999999999999999999999999999999999999",
			"1000000000000000000000000000000000000000000", "NaN", "Infinity", "1_000"} {
			body := fmt.Sprintf(`{"source":"alice","destination":"bob","amount":%q}`, amount)
			s.do(t, "POST", "/v1/transfers", writer, body).wantProblem(t, 400, "invalid_request")
			s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", writer, fmt.Sprintf(`{"amount":%q}`, amount)).
				wantProblem(t, 400, "invalid_request")
			s.do(t, "POST", "/v1/transfers/"+h.ID+"/increase", writer, fmt.Sprintf(`{"amount":%q}`, amount)).
				wantProblem(t, 400, "invalid_request")
			batch := fmt.Sprintf(`{"atomic":true,"transfers":[{"source":"alice","destination":"bob","amount":%q}]}`, amount)
			p := s.do(t, "POST", "/v1/transfers/batch", writer, batch).wantProblem(t, 422, "batch_failed")
			if len(p.Errors) != 1 || p.Errors[0].Index != 0 || p.Errors[0].Code != "invalid_request" {
				t.Errorf("batch with amount %q: errors %+v", amount, p.Errors)
			}
		}
		for _, body := range []string{`{"amount":"1","final":"no"}`, `{"final":false}`, `{"amount":"1","extra":1}`, `[]`} {
			s.do(t, "POST", "/v1/transfers/"+h.ID+"/post", writer, body).wantProblem(t, 400, "invalid_request")
		}
		for _, body := range []string{`{}`, `{"amount":"1","final":false}`, ` `} {
			s.do(t, "POST", "/v1/transfers/"+h.ID+"/increase", writer, body).wantProblem(t, 400, "invalid_request")
		}
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/void", writer, `{"reason":"x"}`).wantProblem(t, 400, "invalid_request")

		// Media type.
		s.do(t, "POST", "/v1/transfers", writer, valid, hdr("Content-Type", "text/plain")).
			wantProblem(t, 415, "unsupported_media_type")
		s.do(t, "POST", "/v1/transfers", writer, valid, hdr("Content-Type", "")).
			wantProblem(t, 415, "unsupported_media_type")
		s.do(t, "POST", "/v1/transfers", writer, valid, hdr("Content-Type", "application/jsonp")).
			wantProblem(t, 415, "unsupported_media_type")
		s.do(t, "POST", "/v1/transfers", writer, valid, hdr("Content-Type", "application/json; charset")).
			wantProblem(t, 415, "unsupported_media_type")
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/void", writer, "{}", hdr("Content-Type", "text/plain")).
			wantProblem(t, 415, "unsupported_media_type")
		s.do(t, "POST", "/v1/accounts", writer, `{"asset":"USD"}`, hdr("Content-Type", "application/x-www-form-urlencoded")).
			wantProblem(t, 415, "unsupported_media_type")
		s.do(t, "POST", "/v1/transfers", writer, nil).wantProblem(t, 415, "unsupported_media_type")
		s.do(t, "POST", "/v1/transfers", writer, "").wantProblem(t, 400, "invalid_request")

		// Size: 1 MiB for a request, 16 MiB for a batch, with and without Content-Length.
		pad := func(n int) string {
			return `{"source":"alice","destination":"bob","amount":"1","reference":"` +
				strings.Repeat("x", n-len(valid)-15) + `"}`
		}
		over := pad(1<<20 + 1)
		s.do(t, "POST", "/v1/transfers", writer, over).wantProblem(t, 413, "request_too_large")
		s.do(t, "POST", "/v1/transfers", writer, strings.NewReader(over)).wantProblem(t, 413, "request_too_large")
		s.do(t, "POST", "/v1/accounts", writer, strings.NewReader(over)).wantProblem(t, 413, "request_too_large")
		s.do(t, "POST", "/v1/transfers/"+h.ID+"/void", writer, over).wantProblem(t, 413, "request_too_large")
		s.do(t, "POST", "/v1/transfers", writer, pad(1<<20)).wantProblem(t, 400, "invalid_request") // reference too long, not 413
		batchOver := `{"atomic":true,"transfers":[` + strings.Repeat(" ", 16<<20) + `]}`
		s.do(t, "POST", "/v1/transfers/batch", writer, batchOver).wantProblem(t, 413, "request_too_large")
		s.do(t, "POST", "/v1/transfers/batch", writer, io.MultiReader(strings.NewReader(batchOver))).
			wantProblem(t, 413, "request_too_large")
		// A batch body between 1 and 16 MiB is read; this one is malformed only at the end.
		s.do(t, "POST", "/v1/transfers/batch", writer, `{"atomic":true,"transfers":[`+strings.Repeat(" ", 2<<20)+`]`).
			wantProblem(t, 400, "invalid_request")
	})
	if got := s.account(t, "alice"); !reflect.DeepEqual(got, alice) {
		t.Errorf("rejected writes changed alice: %+v, was %+v", got, alice)
	}
	s.do(t, "POST", "/v1/transfers", writer, valid, hdr("Content-Type", "application/json; charset=utf-8")).want(t, 201)
	s.do(t, "POST", "/v1/transfers", writer, valid, hdr("Content-Type", "Application/JSON")).want(t, 201)
	s.do(t, "POST", "/v1/transfers", writer, " \n"+valid+"\n ").want(t, 201)
	s.do(t, "POST", "/v1/transfers", writer, strings.NewReader(valid)).want(t, 201)
}

func TestRouting(t *testing.T) {
	s := newStack(t)
	s.unchanged(t, func() {
		for _, c := range []struct{ method, path, allow string }{
			{"PUT", "/v1/transfers", "GET, POST"},
			{"DELETE", "/v1/accounts", "GET, POST"},
			{"PATCH", "/v1/accounts/alice", "GET"},
			{"DELETE", "/v1/transfers/x", "GET"},
			{"GET", "/v1/transfers/x/post", "POST"},
			{"GET", "/v1/accounts/x/freeze", "POST"},
			{"POST", "/v1/journal", "GET"},
			{"POST", "/v1/journal/head", "GET"},
			{"GET", "/v1/api-keys/key_x", "DELETE"},
			{"PUT", "/v1/assets", "GET, POST"},
		} {
			r := s.do(t, c.method, c.path, s.admin, nil)
			r.wantProblem(t, 405, "method_not_allowed")
			if got := r.Header.Get("Allow"); got != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
			}
		}
		for _, c := range []struct{ method, path, allow string }{
			{"POST", "/healthz", "GET"},
			{"DELETE", "/readyz", "GET"},
			{"PUT", "/openapi.yaml", "GET"},
		} {
			r := s.do(t, c.method, c.path, "", nil)
			r.wantProblem(t, 405, "method_not_allowed")
			if got := r.Header.Get("Allow"); got != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
			}
		}
		for _, p := range []string{"/v1/nope", "/v1", "/v1/accounts/a/b/c", "/v1/transfers/x/capture",
			"/v2/accounts", "/v1/journal/tail"} {
			s.do(t, "GET", p, s.admin, nil).wantProblem(t, 404, "not_found")
		}
		s.do(t, "GET", "/nope", "", nil).wantProblem(t, 404, "not_found")
		s.do(t, "GET", "/", "", nil).wantProblem(t, 404, "not_found")
		// GET of /v1/transfers/batch is a transfer id, not a route of its own.
		s.do(t, "GET", "/v1/transfers/batch", s.admin, nil).wantProblem(t, 404, "transfer_not_found")
	})
}

func TestRequestID(t *testing.T) {
	s := newStack(t)
	for _, id := range []string{"abc", "A-Z_a.z:0-9", strings.Repeat("r", 128)} {
		for _, key := range []string{s.admin, ""} { // also on a 401
			r := s.do(t, "GET", "/v1/assets", key, nil, hdr("X-Request-Id", id))
			if got := r.Header.Get("X-Request-Id"); got != id {
				t.Errorf("X-Request-Id %q echoed as %q", id, got)
			}
		}
	}
	seen := map[string]bool{}
	for _, id := range []string{"", "bad id", "bad/id", strings.Repeat("r", 129), "é", "a\tb"} {
		var opts []reqOpt
		if id != "" {
			opts = append(opts, rawHdr("X-Request-Id", id))
		}
		r := s.do(t, "GET", "/healthz", "", nil, opts...)
		got := r.Header.Get("X-Request-Id")
		if got == id || got == "" || seen[got] {
			t.Errorf("X-Request-Id %q answered with %q: want a fresh server-made id", id, got)
		}
		seen[got] = true
	}
	r := s.do(t, "POST", "/v1/transfers", s.admin, "{", hdr("X-Request-Id", "req-1"))
	if r.Status != 400 || r.Header.Get("X-Request-Id") != "req-1" {
		t.Errorf("a problem answer lost the request id: %s %v", r, r.Header)
	}
}

// TestUnavailable injects a failed commit: the engine stops taking writes (503 unavailable,
// with Retry-After, also on /readyz), reads go on, and a restart recovers from the store
// without the failed write. A 503 is not stored for idempotency, so the retry runs afresh.
func TestUnavailable(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.pay(t, "treasury", "alice", "100")
	before := s.head(t)

	body := obj{"id": "pay-1", "source": "treasury", "destination": "alice", "amount": "5"}
	s.store.failNextCommit(errInjected)
	s.do(t, "POST", "/v1/transfers", s.admin, body, hdr("Idempotency-Key", "k1")).wantProblem(t, 503, "unavailable")
	s.do(t, "POST", "/v1/transfers", s.admin, body, hdr("Idempotency-Key", "k1")).wantProblem(t, 503, "unavailable")
	s.do(t, "POST", "/v1/accounts", s.admin, obj{"asset": "USD"}).wantProblem(t, 503, "unavailable")
	s.do(t, "GET", "/readyz", "", nil).wantProblem(t, 503, "unavailable")
	s.do(t, "GET", "/healthz", "", nil).want(t, 200)
	s.wantBalance(t, "alice", balance{"100", "100", "0", "0"})
	s.do(t, "GET", "/v1/transfers/pay-1", s.admin, nil).wantProblem(t, 404, "transfer_not_found")

	s = s.restart(t)
	s.do(t, "GET", "/readyz", "", nil).want(t, 200)
	if h := s.head(t); h != before {
		t.Errorf("after the failed commit and a restart: head %+v, want %+v", h, before)
	}
	s.do(t, "GET", "/v1/transfers/pay-1", s.admin, nil).wantProblem(t, 404, "transfer_not_found")
	r := s.do(t, "POST", "/v1/transfers", s.admin, body, hdr("Idempotency-Key", "k1")).want(t, 201)
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("a 503 was replayed")
	}
	s.wantBalance(t, "alice", balance{"105", "105", "0", "0"})
}

// TestStandby demotes the service as the lease node does when another instance takes over:
// reads go on, every write and /readyz answer 503 not_leader naming the leader, nothing is
// written, and a promotion takes writes again.
func TestStandby(t *testing.T) {
	s := newStack(t)
	s.openAccount(t, "treasury", "USD", true)
	s.openAccount(t, "alice", "USD", false)
	s.pay(t, "treasury", "alice", "100")
	before := s.head(t)

	eng := s.svc.Demote("http://10.0.0.7:8080")
	if eng != s.eng {
		t.Fatalf("Demote returned %p, want the engine %p", eng, s.eng)
	}
	body := obj{"id": "pay-1", "source": "treasury", "destination": "alice", "amount": "5"}
	for _, w := range []struct {
		path string
		body obj
	}{
		{"/v1/transfers", body},
		{"/v1/accounts", obj{"asset": "USD"}},
		{"/v1/assets", obj{"code": "XAU", "scale": 3}},
		{"/v1/api-keys", obj{"name": "x", "scopes": []string{"read"}}},
	} {
		p := s.do(t, "POST", w.path, s.admin, w.body, hdr("Idempotency-Key", "k-"+w.path)).wantProblem(t, 503, "not_leader")
		if p.Leader != "http://10.0.0.7:8080" {
			t.Errorf("POST %s: leader %q, want the leader's address", w.path, p.Leader)
		}
	}
	p := s.do(t, "GET", "/readyz", "", nil).wantProblem(t, 503, "not_leader")
	if p.Role != "standby" || p.Leader != "http://10.0.0.7:8080" {
		t.Errorf("readyz on a standby: role %q leader %q", p.Role, p.Leader)
	}
	s.wantBalance(t, "alice", balance{"100", "100", "0", "0"})
	s.do(t, "GET", "/v1/transfers/pay-1", s.admin, nil).wantProblem(t, 404, "transfer_not_found")
	if h := s.head(t); h != before {
		t.Errorf("a standby wrote: head %+v, want %+v", h, before)
	}

	// Leader unknown: no address in the answer.
	s.svc.SetLeader("")
	if p := s.do(t, "POST", "/v1/transfers", s.admin, body).wantProblem(t, 503, "not_leader"); p.Leader != "" {
		t.Errorf("unknown leader answered as %q", p.Leader)
	}

	if err := s.svc.Promote(context.Background(), eng); err != nil {
		t.Fatal(err)
	}
	s.do(t, "GET", "/readyz", "", nil).want(t, 200)
	// The not_leader answer was not stored: the same key now runs the write.
	r := s.do(t, "POST", "/v1/transfers", s.admin, body, hdr("Idempotency-Key", "k-/v1/transfers")).want(t, 201)
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("a not_leader answer was replayed")
	}
	s.wantBalance(t, "alice", balance{"105", "105", "0", "0"})
}
