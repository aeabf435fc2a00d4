package httpapi_test

import (
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	tpwallet "github.com/tpwallet/tpwallet"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// TestOpenAPIRoutes checks that openapi.yaml has exactly the server's routes: every
// "METHOD /path" of Patterns() is an operation, and there is no other.
func TestOpenAPIRoutes(t *testing.T) {
	o := spec(t)
	want := map[string]bool{}
	for _, p := range httpapi.New(nil, httpapi.Options{}).Patterns() {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			t.Fatalf("pattern %q has no method", p)
		}
		want[method+" "+path] = true
	}
	got := map[string]bool{}
	for _, p := range o.paths {
		for _, m := range httpMethods {
			if _, ok := p.item[m]; ok {
				got[strings.ToUpper(m)+" "+p.template] = true
			}
		}
	}
	for p := range want {
		if !got[p] {
			t.Errorf("route %s is missing from openapi.yaml", p)
		}
	}
	for p := range got {
		if !want[p] {
			t.Errorf("openapi.yaml has %s, which the server does not route", p)
		}
	}
	if len(want) == 0 {
		t.Fatal("the server has no routes")
	}
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// TestOpenAPIOperations checks each operation for what the server really does with it.
func TestOpenAPIOperations(t *testing.T) {
	o := spec(t)
	ids := map[string]string{}
	for _, p := range o.paths {
		for _, m := range httpMethods {
			raw, ok := p.item[m]
			if !ok {
				continue
			}
			name := strings.ToUpper(m) + " " + p.template
			op := raw.(map[string]any)
			id, _ := op["operationId"].(string)
			if id == "" || ids[id] != "" {
				t.Errorf("%s: operationId %q is empty or also used by %s", name, id, ids[id])
			}
			ids[id] = name
			params := map[string]bool{}
			for _, pr := range asList(op["parameters"]) {
				d, err := o.deref(pr)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				params[d["in"].(string)+":"+d["name"].(string)] = true
			}
			for _, mm := range pathParam.FindAllStringSubmatch(p.template, -1) {
				if !params["path:"+mm[1]] {
					t.Errorf("%s: path parameter %s is not declared", name, mm[1])
				}
			}
			responses := op["responses"].(map[string]any)
			for status, r := range responses {
				if _, err := o.deref(r); err != nil {
					t.Errorf("%s %s: %v", name, status, err)
				}
			}
			v1 := strings.HasPrefix(p.template, "/v1/")
			sec, hasSec := op["security"]
			switch {
			case v1 && hasSec:
				t.Errorf("%s: a /v1 operation must keep the bearer security requirement", name)
			case !v1 && (!hasSec || len(asList(sec)) != 0):
				t.Errorf("%s: needs no key, so it needs security: []", name)
			}
			var need []string
			if v1 {
				need = append(need, "401", "403", "500")
			}
			if m == "post" && v1 {
				need = append(need, "400", "413", "415", "503")
				// The writes of the engine, through Service.Write; API keys and webhook
				// endpoints are configuration beside the ledger, without Idempotency-Key.
				if p.template != "/v1/api-keys" && !strings.HasPrefix(p.template, "/v1/webhooks") {
					need = append(need, "409", "422", "429")
					if !params["header:Idempotency-Key"] {
						t.Errorf("%s: Idempotency-Key is not declared", name)
					}
				}
			}
			for _, s := range need {
				if _, ok := responses[s]; !ok {
					t.Errorf("%s: response %s is not documented", name, s)
				}
			}
		}
	}
}

// TestCodeTable checks the code→status table: every code has a status of its own (only
// internal is 500) and is listed in openapi.yaml's Code enum, which lists nothing else.
func TestCodeTable(t *testing.T) {
	o := spec(t)
	code, err := o.deref(map[string]any{"$ref": "#/components/schemas/Code"})
	if err != nil {
		t.Fatal(err)
	}
	var enum []string
	for _, e := range asList(code["enum"]) {
		enum = append(enum, e.(string))
	}
	for _, c := range ledger.Codes {
		s := httpapi.StatusOf(c)
		if s == http.StatusInternalServerError && c != ledger.CodeInternal {
			t.Errorf("code %s: StatusOf falls back to 500: it is missing from the code table", c)
		}
		if s < 400 || s > 599 || http.StatusText(s) == "" {
			t.Errorf("code %s: status %d", c, s)
		}
		if !slices.Contains(enum, string(c)) {
			t.Errorf("code %s is missing from openapi.yaml's Code enum", c)
		}
	}
	for _, e := range enum {
		if !slices.Contains(ledger.Codes, ledger.Code(e)) {
			t.Errorf("openapi.yaml's Code enum has %q, which is not a ledger.Codes value", e)
		}
	}
	if got := httpapi.StatusOf("no_such_code"); got != http.StatusInternalServerError {
		t.Errorf("StatusOf(unknown) = %d, want 500", got)
	}
	// api.md fixes these; the table must not drift.
	fixed := map[ledger.Code]int{
		ledger.CodeInvalidRequest: 400, ledger.CodeBatchTooLarge: 400, ledger.CodeUnauthenticated: 401,
		ledger.CodeForbidden: 403, ledger.CodeNotFound: 404, ledger.CodeAccountNotFound: 404,
		ledger.CodeTransferNotFound: 404, ledger.CodeMethodNotAllowed: 405,
		ledger.CodeAccountExists: 409, ledger.CodeAssetExists: 409, ledger.CodeTransferExists: 409,
		ledger.CodeTransferNotPending: 409, ledger.CodeHoldExpired: 409,
		ledger.CodeIdempotencyInFlight: 409, ledger.CodeRequestTooLarge: 413,
		ledger.CodeUnsupportedMediaType: 415, ledger.CodeIdempotencyKeyReused: 422,
		ledger.CodeAssetUnknown: 422, ledger.CodeAccountFrozen: 422, ledger.CodeInsufficientFunds: 422,
		ledger.CodeAssetMismatch: 422, ledger.CodeSameAccount: 422, ledger.CodeAmountOverflow: 422,
		ledger.CodeAmountExceedsHold: 422, ledger.CodeBatchFailed: 422, ledger.CodeRateLimited: 429,
		ledger.CodeInternal: 500, ledger.CodeOverloaded: 503, ledger.CodeNotLeader: 503,
		ledger.CodeUnavailable: 503,
	}
	for c, want := range fixed {
		if got := httpapi.StatusOf(c); got != want {
			t.Errorf("StatusOf(%s) = %d, want %d (api.md)", c, got, want)
		}
	}
}

// TestAPIErrorsDoc checks that docs/api-errors.md has a row for every code with its status.
func TestAPIErrorsDoc(t *testing.T) {
	b, err := os.ReadFile("../../docs/api-errors.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		c := strings.Trim(strings.TrimSpace(cells[1]), "`")
		rows[c] = strings.TrimSpace(cells[2])
	}
	for _, c := range ledger.Codes {
		got, ok := rows[string(c)]
		if !ok {
			t.Errorf("docs/api-errors.md has no row for %s", c)
			continue
		}
		if want := strconv.Itoa(httpapi.StatusOf(c)); got != want {
			t.Errorf("docs/api-errors.md: %s has status %s, want %s", c, got, want)
		}
	}
}

// TestOpenAPIServed checks that GET /openapi.yaml serves the document without a key.
func TestOpenAPIServed(t *testing.T) {
	s := newStack(t)
	r := s.do(t, "GET", "/openapi.yaml", "", nil).want(t, 200)
	if ct := r.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type %q, want application/yaml", ct)
	}
	if string(r.Body) != string(tpwallet.OpenAPI) {
		t.Errorf("GET /openapi.yaml does not serve openapi.yaml")
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
