package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// rest is the transport of api.md: JSON over HTTP.
type rest struct {
	base      string // scheme://host[:port][/prefix], without a trailing slash
	key       string
	hc        *http.Client
	userAgent string
}

func newREST(baseURL, apiKey string, hc *http.Client, userAgent string) (*rest, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host[:port]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q: no query or fragment", baseURL)
	}
	return &rest{base: strings.TrimRight(u.String(), "/"), key: apiKey, hc: hc, userAgent: userAgent}, nil
}

// transportError is a request that got no answer. Unless notSent, the server may have
// received and even applied it.
type transportError struct {
	err     error
	notSent bool
}

func (e *transportError) Error() string { return "tpwallet: no answer: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func (r *rest) do(ctx context.Context, c *call) error {
	req, err := r.request(ctx, c)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("tpwallet: %s: %w", c.op.name, ctx.Err())
		}
		return &transportError{err: err, notSent: notSent(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil { // the connection broke inside the answer: its outcome is unknown
		if ctx.Err() != nil {
			return fmt.Errorf("tpwallet: %s: %w", c.op.name, ctx.Err())
		}
		return &transportError{err: err}
	}
	c.got = answer{status: resp.StatusCode, requestID: resp.Header.Get("X-Request-Id"),
		replayed: resp.Header.Get("Idempotent-Replayed") == "true"}
	if resp.StatusCode >= 400 {
		return problem(resp, body)
	}
	if c.out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(body, c.out); err != nil {
		return fmt.Errorf("tpwallet: %s: decode the %d answer: %w", c.op.name, resp.StatusCode, err)
	}
	return nil
}

// request builds the HTTP request of one attempt; a write's body is encoded on the first
// attempt and the same bytes sent on every later one.
func (r *rest) request(ctx context.Context, c *call) (*http.Request, error) {
	u := r.base + strings.Replace(c.op.path, "{id}", url.PathEscape(c.id), 1)
	if q, ok := c.in.(queryer); ok {
		if v := q.query(); len(v) > 0 {
			u += "?" + v.Encode()
		}
	}
	var body io.Reader
	if c.op.method == http.MethodPost && c.in != nil {
		if c.encoded == nil {
			b, err := json.Marshal(c.in)
			if err != nil {
				return nil, fmt.Errorf("tpwallet: %s: encode the request: %w", c.op.name, err)
			}
			c.encoded = b
		}
		body = bytes.NewReader(c.encoded)
	}
	req, err := http.NewRequestWithContext(ctx, c.op.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("tpwallet: %s: %w", c.op.name, err)
	}
	h := req.Header
	if r.key != "" {
		h.Set("Authorization", "Bearer "+r.key)
	}
	h.Set("Accept", "application/json")
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	if c.idemKey != "" {
		h.Set("Idempotency-Key", c.idemKey)
	}
	if c.requestID != "" {
		h.Set("X-Request-Id", c.requestID)
	}
	if r.userAgent != "" {
		h.Set("User-Agent", r.userAgent)
	}
	return req, nil
}

// notSent reports whether err surely happened before the request left: the connection was
// never made.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// problem turns an error answer into an *Error: the RFC 9457 body when there is one, else
// what the status says (a proxy's 502, say).
func problem(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode),
		RequestID: resp.Header.Get("X-Request-Id"), RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/problem+json" {
		var p struct {
			Type   string       `json:"type"`
			Title  string       `json:"title"`
			Detail string       `json:"detail"`
			Code   Code         `json:"code"`
			Errors []BatchError `json:"errors"`
			Leader string       `json:"leader"`
		}
		if json.Unmarshal(body, &p) == nil {
			e.Type, e.Code, e.Detail, e.Errors, e.Leader = p.Type, p.Code, p.Detail, p.Errors, p.Leader
			if p.Title != "" {
				e.Title = p.Title
			}
		}
	}
	return e
}

// retryAfter reads Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
