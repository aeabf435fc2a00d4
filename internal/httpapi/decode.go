package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Body size limits (api.md).
const (
	bodyMax      = 1 << 20
	batchBodyMax = 16 << 20
)

// amountJSON is an api.md amount: a JSON string of decimal digits, never a number.
type amountJSON struct {
	v   ledger.Amount
	set bool
}

func (a *amountJSON) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '"' {
		return errors.New("amounts are JSON strings of decimal digits, not numbers")
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ledger.ParseAmount(s)
	if err != nil {
		return err
	}
	a.v, a.set = v, true
	return nil
}

// holdJSON, transferJSON and batchJSON are also decoded by hand, by decodeTransfer and
// decodeBatch (fastjson.go): a field added here must be added there too
// (TestFastDecodersKnowEveryField fails until it is).
type holdJSON struct {
	TimeoutSeconds *int64 `json:"timeout_seconds"`
}

type transferJSON struct {
	ID          *string           `json:"id"`
	Source      string            `json:"source"`
	Destination string            `json:"destination"`
	Amount      amountJSON        `json:"amount"`
	Asset       string            `json:"asset"`
	Kind        string            `json:"kind"`
	Reference   string            `json:"reference"`
	Metadata    map[string]string `json:"metadata"`
	Hold        *holdJSON         `json:"hold"`
}

func (t *transferJSON) request() (ledger.Request, error) {
	r := ledger.TransferRequest{Source: t.Source, Destination: t.Destination, Amount: t.Amount.v,
		Asset: t.Asset, Kind: ledger.TransferKind(t.Kind), Reference: t.Reference, Metadata: t.Metadata}
	if t.ID != nil {
		if !ledger.ValidID(*t.ID) {
			return ledger.Request{}, invalid("id must be 1-64 characters of A-Za-z0-9_.:-")
		}
		r.ID = *t.ID
	}
	switch {
	case t.Source == "" || t.Destination == "":
		return ledger.Request{}, invalid("source and destination are required")
	case !t.Amount.set:
		return ledger.Request{}, invalid("amount is required")
	case t.Amount.v.IsZero():
		return ledger.Request{}, invalid("amount must be greater than zero")
	}
	if t.Hold != nil {
		r.Hold = true
		if to := t.Hold.TimeoutSeconds; to != nil {
			if *to < 0 || *to > ledger.HoldTimeoutMax {
				return ledger.Request{}, invalid("hold.timeout_seconds must be 0 (never) to 315360000")
			}
			r.HoldTimeout = uint32(*to)
		}
	}
	return ledger.Request{Op: ledger.OpTransfer, Transfer: r}, nil
}

type accountJSON struct {
	ID            *string           `json:"id"`
	Owner         string            `json:"owner"`
	Asset         string            `json:"asset"`
	Kind          string            `json:"kind"`
	AllowNegative bool              `json:"allow_negative"`
	Metadata      map[string]string `json:"metadata"`
}

type postJSON struct {
	Amount amountJSON `json:"amount"`
	Final  *bool      `json:"final"`
}

type increaseJSON struct {
	Amount amountJSON `json:"amount"`
}

type batchJSON struct {
	Atomic    *bool             `json:"atomic"`
	Transfers []json.RawMessage `json:"transfers"`
}

type assetJSON struct {
	Code  string `json:"code"`
	Scale *int   `json:"scale"`
}

type apiKeyJSON struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

func invalid(format string, args ...any) error {
	return ledger.Errorf(ledger.CodeInvalidRequest, format, args...)
}

// readBody reads a request body up to max bytes, checking its Content-Type. An empty body
// is returned as nil when allowEmpty, else it is an error.
func readBody(w http.ResponseWriter, r *http.Request, max int64, allowEmpty bool) ([]byte, error) {
	if r.ContentLength > max {
		return nil, ledger.Errorf(ledger.CodeRequestTooLarge, "the body exceeds %d bytes", max)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, ledger.Errorf(ledger.CodeRequestTooLarge, "the body exceeds %d bytes", max)
		}
		return nil, invalid("could not read the body")
	}
	if len(body) == 0 && allowEmpty {
		return nil, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return nil, ledger.Errorf(ledger.CodeUnsupportedMediaType, "the body must be application/json")
	}
	if len(body) == 0 {
		return nil, invalid("the body is empty")
	}
	return body, nil
}

// decodeStrict decodes one JSON value into v, rejecting unknown fields and trailing data.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("malformed JSON: %s", jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("malformed JSON: data after the object")
	}
	// encoding/json matches keys case-insensitively and lets a repeated key win, so
	// {"amount":"1","Amount":"900"} would decode; api.md names fields exactly.
	kd := json.NewDecoder(bytes.NewReader(body))
	kd.UseNumber()
	if err := exactKeys(kd, reflect.TypeOf(v)); err != nil {
		return invalid("malformed JSON: %s", err)
	}
	return nil
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
)

// exactKeys reads one JSON value that decodes into a value of type t and fails on an object
// key that is not exactly the json name of a field of t's structs, or that appears twice in
// one object. Values that decode themselves (json.RawMessage, json.Unmarshaler) are skipped:
// their own decodeStrict checks them.
func exactKeys(dec *json.Decoder, t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t == rawMessageType || reflect.PointerTo(t).Implements(unmarshalerType)) {
		var skip json.RawMessage
		return dec.Decode(&skip)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := make(map[string]bool)
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			if seen[key] {
				return fmt.Errorf("field %q appears twice", key)
			}
			seen[key] = true
			var ft reflect.Type
			switch {
			case t == nil:
			case t.Kind() == reflect.Struct:
				if ft = fieldType(t, key); ft == nil {
					return fmt.Errorf("unknown field %q", key)
				}
			case t.Kind() == reflect.Map:
				ft = t.Elem()
			}
			if err := exactKeys(dec, ft); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for dec.More() {
			if err := exactKeys(dec, et); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	}
	return err
}

// fieldType returns the type of t's field whose json name is exactly key, or nil.
func fieldType(t reflect.Type, key string) reflect.Type {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if f.IsExported() && name == key && name != "-" {
			return f.Type
		}
	}
	return nil
}

// jsonError makes a decoder error readable without echoing client data back at length.
func jsonError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q has the wrong type", typ.Field)
		}
		return "a value has the wrong type"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	s := err.Error()
	s = strings.TrimPrefix(s, "json: ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// page reads ?limit= and ?cursor=.
func page(r *http.Request) (limit int, cursor string, err error) {
	q := r.URL.Query()
	limit = 50
	if s := q.Get("limit"); s != "" || q.Has("limit") {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > 1000 || strconv.Itoa(n) != s {
			return 0, "", invalid("limit must be an integer from 1 to 1000")
		}
		limit = n
	}
	return limit, q.Get("cursor"), nil
}
