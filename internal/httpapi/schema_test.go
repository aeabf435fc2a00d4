package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	tpwallet "github.com/tpwallet/tpwallet"
	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// This file holds a small JSON Schema validator for the subset of OpenAPI 3.1 that
// openapi.yaml uses, so that every answer every test receives is checked against the
// document: its status must be documented for the operation, its Content-Type and headers
// must be the documented ones, and its body must match the schema.

// openAPI is openapi.yaml, parsed.
type openAPI struct {
	root  map[string]any
	paths []pathTemplate
	re    sync.Map // pattern → *regexp.Regexp
}

type pathTemplate struct {
	template string
	segs     []string
	item     map[string]any
}

var (
	specOnce sync.Once
	specVal  *openAPI
	specErr  error
)

// spec returns the parsed openapi.yaml (the bytes the binary embeds and serves).
func spec(tb testing.TB) *openAPI {
	tb.Helper()
	specOnce.Do(func() { specVal, specErr = parseSpec(tpwallet.OpenAPI) })
	if specErr != nil {
		tb.Fatalf("openapi.yaml: %v", specErr)
	}
	return specVal
}

func parseSpec(b []byte) (*openAPI, error) {
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	root, ok := normalize(raw).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document is not a mapping")
	}
	o := &openAPI{root: root}
	paths, _ := root["paths"].(map[string]any)
	for tmpl, item := range paths {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("path %s is not a mapping", tmpl)
		}
		o.paths = append(o.paths, pathTemplate{template: tmpl, segs: strings.Split(tmpl, "/"), item: m})
	}
	return o, nil
}

// normalize turns YAML's map[any]any (non-string keys such as 200) into map[string]any.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
		return x
	}
	return v
}

// lookup resolves a local reference such as "#/components/schemas/Account".
func (o *openAPI) lookup(ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("reference %q is not local", ref)
	}
	var cur any = o.root
	for _, part := range strings.Split(p, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("reference %q: %q is not in a mapping", ref, part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("reference %q does not resolve", ref)
		}
	}
	return cur, nil
}

// deref follows $ref until it reaches an object that is not a reference.
func (o *openAPI) deref(v any) (map[string]any, error) {
	for range 32 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("not a mapping: %T", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		var err error
		if v, err = o.lookup(ref); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("reference loop")
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operation finds the operation a request is served by: the path template that matches and
// has the method, preferring literal segments ("/v1/transfers/batch" over
// "/v1/transfers/{id}"), as the server's mux does. It returns nil when no route has both.
func (o *openAPI) operation(method, path string) (string, map[string]any) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	segs := strings.Split(path, "/")
	best, bestLit := -1, -1
	for i, p := range o.paths {
		if len(p.segs) != len(segs) || p.item[strings.ToLower(method)] == nil {
			continue
		}
		lit, ok := 0, true
		for j, s := range p.segs {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				if segs[j] == "" {
					ok = false
				}
				continue
			}
			if s != segs[j] {
				ok = false
				break
			}
			lit++
		}
		if ok && lit > bestLit {
			best, bestLit = i, lit
		}
	}
	if best < 0 {
		return "", nil
	}
	op, _ := o.paths[best].item[strings.ToLower(method)].(map[string]any)
	return o.paths[best].template, op
}

// ourHeaders are the response headers openapi.yaml must document wherever they are sent.
var ourHeaders = []string{"X-Request-Id", "Idempotent-Replayed", "Retry-After", "Allow"}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// checkReply checks an answer against api.md's conventions and openapi.yaml.
func checkReply(tb testing.TB, r reply) {
	tb.Helper()
	if id := r.Header.Get("X-Request-Id"); !requestIDRE.MatchString(id) {
		tb.Errorf("%s: X-Request-Id %q", r, id)
	}
	if r.Status >= 400 {
		checkProblem(tb, r)
	}
	o := spec(tb)
	tmpl, op := o.operation(r.Method, r.Path)
	var resp map[string]any
	if op == nil {
		// Not an operation: 401 before routing, 404 not_found or 405 method_not_allowed.
		switch r.Status {
		case http.StatusUnauthorized, http.StatusNotFound:
		case http.StatusMethodNotAllowed:
			if r.Header.Get("Allow") == "" {
				tb.Errorf("%s: 405 without Allow", r)
			}
		default:
			tb.Errorf("%s: a request that matches no operation of openapi.yaml got %d", r, r.Status)
		}
		var err error
		if resp, err = o.deref(map[string]any{"$ref": "#/components/responses/NotFound"}); err != nil {
			tb.Fatal(err)
		}
		if r.Status == http.StatusMethodNotAllowed {
			resp, _ = o.deref(map[string]any{"$ref": "#/components/responses/MethodNotAllowed"})
		}
	} else {
		responses, _ := op["responses"].(map[string]any)
		raw, ok := responses[strconv.Itoa(r.Status)]
		if !ok {
			tb.Errorf("%s: openapi.yaml documents no %d for %s %s", r, r.Status, r.Method, tmpl)
			return
		}
		var err error
		if resp, err = o.deref(raw); err != nil {
			tb.Fatalf("openapi.yaml %s %s %d: %v", r.Method, tmpl, r.Status, err)
		}
	}
	where := fmt.Sprintf("%s %s %d", r.Method, tmpl, r.Status)
	o.checkHeaders(tb, r, resp, where)
	o.checkContent(tb, r, resp, where)
}

func (o *openAPI) checkHeaders(tb testing.TB, r reply, resp map[string]any, where string) {
	tb.Helper()
	headers, _ := resp["headers"].(map[string]any)
	for _, name := range ourHeaders {
		raw, documented := headers[name]
		got, sent := r.Header[name]
		if sent && !documented {
			tb.Errorf("%s: header %s is sent but openapi.yaml does not document it (%s)", r, name, where)
			continue
		}
		if !documented {
			continue
		}
		h, err := o.deref(raw)
		if err != nil {
			tb.Fatalf("openapi.yaml %s header %s: %v", where, name, err)
		}
		if req, _ := h["required"].(bool); req && !sent {
			tb.Errorf("%s: required header %s is missing (%s)", r, name, where)
		}
		if sent {
			if err := o.validate(h["schema"], got[0], name); err != nil {
				tb.Errorf("%s: header %s: %v (%s)", r, name, err, where)
			}
		}
	}
}

func (o *openAPI) checkContent(tb testing.TB, r reply, resp map[string]any, where string) {
	tb.Helper()
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.Body) != 0 {
			tb.Errorf("%s: openapi.yaml documents no body (%s)", r, where)
		}
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		tb.Errorf("%s: Content-Type %q: %v", r, r.Header.Get("Content-Type"), err)
		return
	}
	media, ok := content[mt].(map[string]any)
	if !ok {
		tb.Errorf("%s: Content-Type %s is not documented (%s)", r, mt, where)
		return
	}
	if mt == "application/yaml" || mt == "text/plain" { // the spec itself, the metrics
		return
	}
	v, err := decodeJSON(r.Body)
	if err != nil {
		tb.Errorf("%s: body is not one JSON value: %v", r, err)
		return
	}
	if err := o.validate(media["schema"], v, "body"); err != nil {
		tb.Errorf("%s: does not match openapi.yaml (%s): %v", r, where, err)
	}
}

// checkProblem checks what every error answer must be: an RFC 9457 problem whose status is
// the HTTP status, whose code maps to it in the code table, and that names its code.
func checkProblem(tb testing.TB, r reply) {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Errorf("%s: Content-Type %q, want application/problem+json", r, ct)
		return
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		tb.Errorf("%s: problem: %v", r, err)
		return
	}
	switch {
	case p.Status != r.Status:
		tb.Errorf("%s: problem status %d", r, p.Status)
	case httpapi.StatusOf(ledger.Code(p.Code)) != r.Status:
		tb.Errorf("%s: code %s has status %d in the code table", r, p.Code, httpapi.StatusOf(ledger.Code(p.Code)))
	case p.Type != "https://tpwallet.dev/problems/"+p.Code:
		tb.Errorf("%s: problem type %q", r, p.Type)
	case p.Title != http.StatusText(r.Status):
		tb.Errorf("%s: problem title %q", r, p.Title)
	case p.Detail == "":
		tb.Errorf("%s: problem without detail", r)
	case strings.Contains(string(r.Body), "goroutine ") || strings.Contains(string(r.Body), ".go:"):
		tb.Errorf("%s: looks like a stack trace", r)
	}
	if (r.Status == http.StatusServiceUnavailable || r.Status == http.StatusTooManyRequests) &&
		r.Header.Get("Retry-After") == "" {
		tb.Errorf("%s: no Retry-After", r)
	}
	if r.Status == http.StatusInternalServerError {
		tb.Errorf("%s: an internal error", r)
	}
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the value")
	}
	return v, nil
}

// annotations are keywords that do not constrain a value.
var annotations = map[string]bool{"description": true, "examples": true, "default": true,
	"format": true, "title": true, "summary": true, "deprecated": true}

// validate checks a JSON value (decoded with UseNumber) against a schema, supporting the
// keywords openapi.yaml uses; an unknown keyword is an error, so none is silently ignored.
func (o *openAPI) validate(schema any, v any, at string) error {
	if b, ok := schema.(bool); ok {
		if !b {
			return fmt.Errorf("%s: no value is allowed", at)
		}
		return nil
	}
	m, ok := schema.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: schema is a %T", at, schema)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := o.keyword(m, k, v, at); err != nil {
			return err
		}
	}
	return nil
}

func (o *openAPI) keyword(m map[string]any, k string, v any, at string) error {
	kw := m[k]
	obj, isObj := v.(map[string]any)
	arr, isArr := v.([]any)
	str, isStr := v.(string)
	num, isNum := v.(json.Number)
	switch k {
	case "$ref":
		target, err := o.lookup(kw.(string))
		if err != nil {
			return err
		}
		return o.validate(target, v, at)
	case "type":
		types := []any{kw}
		if list, ok := kw.([]any); ok {
			types = list
		}
		for _, t := range types {
			if hasType(v, t.(string)) {
				return nil
			}
		}
		return fmt.Errorf("%s: %s is not of type %v", at, short(v), kw)
	case "const":
		if !sameValue(v, kw) {
			return fmt.Errorf("%s: %s is not %v", at, short(v), kw)
		}
	case "enum":
		for _, e := range kw.([]any) {
			if sameValue(v, e) {
				return nil
			}
		}
		return fmt.Errorf("%s: %s is not one of %v", at, short(v), kw)
	case "pattern":
		if isStr && !o.regexp(kw.(string)).MatchString(str) {
			return fmt.Errorf("%s: %q does not match %s", at, str, kw)
		}
	case "minLength", "maxLength":
		if isStr {
			n, lim := utf8.RuneCountInString(str), toInt(kw)
			if k == "minLength" && n < lim || k == "maxLength" && n > lim {
				return fmt.Errorf("%s: length %d breaks %s %d", at, n, k, lim)
			}
		}
	case "minimum", "maximum":
		if isNum {
			f, _ := num.Float64()
			lim := float64(toInt(kw))
			if k == "minimum" && f < lim || k == "maximum" && f > lim {
				return fmt.Errorf("%s: %s breaks %s %v", at, num, k, kw)
			}
		}
	case "properties":
		if isObj {
			for name, sub := range kw.(map[string]any) {
				if e, ok := obj[name]; ok {
					if err := o.validate(sub, e, at+"."+name); err != nil {
						return err
					}
				}
			}
		}
	case "required":
		if isObj {
			for _, name := range kw.([]any) {
				if _, ok := obj[name.(string)]; !ok {
					return fmt.Errorf("%s: required %q is missing", at, name)
				}
			}
		}
	case "additionalProperties":
		if isObj {
			props, _ := m["properties"].(map[string]any)
			for name, e := range obj {
				if _, ok := props[name]; ok {
					continue
				}
				if err := o.validate(kw, e, at+"."+name); err != nil {
					return fmt.Errorf("%s: property %q: %w", at, name, err)
				}
			}
		}
	case "propertyNames":
		if isObj {
			for name := range obj {
				if err := o.validate(kw, name, at+" key"); err != nil {
					return err
				}
			}
		}
	case "maxProperties":
		if isObj && len(obj) > toInt(kw) {
			return fmt.Errorf("%s: %d properties, at most %v", at, len(obj), kw)
		}
	case "items":
		if isArr {
			for i, e := range arr {
				if err := o.validate(kw, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case "minItems", "maxItems":
		if isArr {
			n, lim := len(arr), toInt(kw)
			if k == "minItems" && n < lim || k == "maxItems" && n > lim {
				return fmt.Errorf("%s: %d items breaks %s %d", at, n, k, lim)
			}
		}
	case "oneOf":
		var errs []string
		for _, sub := range kw.([]any) {
			if err := o.validate(sub, v, at); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if n := len(kw.([]any)) - len(errs); n != 1 {
			return fmt.Errorf("%s: matches %d of oneOf, want 1 (%s)", at, n, strings.Join(errs, "; "))
		}
	case "allOf":
		for _, sub := range kw.([]any) {
			if err := o.validate(sub, v, at); err != nil {
				return err
			}
		}
	case "not":
		if o.validate(kw, v, at) == nil {
			return fmt.Errorf("%s: %s matches a schema it must not", at, short(v))
		}
	default:
		if !annotations[k] {
			return fmt.Errorf("%s: the validator does not know keyword %q", at, k)
		}
	}
	return nil
}

func (o *openAPI) regexp(p string) *regexp.Regexp {
	if re, ok := o.re.Load(p); ok {
		return re.(*regexp.Regexp)
	}
	re := regexp.MustCompile(p)
	o.re.Store(p, re)
	return re
}

func hasType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		return ok && !strings.ContainsAny(string(n), ".eE")
	}
	return false
}

// sameValue compares a JSON value with a YAML scalar.
func sameValue(v, want any) bool {
	switch x := v.(type) {
	case json.Number:
		return string(x) == fmt.Sprint(want)
	case string, bool, nil:
		return v == want
	}
	return false
}

func toInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case float64:
		return int(x)
	}
	panic(fmt.Sprintf("openapi.yaml: %v is not a number", v))
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
