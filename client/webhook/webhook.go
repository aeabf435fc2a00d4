// Package webhook signs and verifies the webhooks tpwallet sends, as the Standard Webhooks
// specification (https://www.standardwebhooks.com) defines them, so that a receiver can
// check that a request comes from tpwallet, unchanged and recent.
//
// Every webhook is a POST of one CloudEvents JSON event with three headers:
//
//	webhook-id:        the event id ("<seq>-<index>"), the same on every retry: deduplicate by it
//	webhook-timestamp: Unix seconds when this attempt was signed
//	webhook-signature: "v1,<base64 HMAC-SHA256>" over "<id>.<timestamp>.<body>", keyed with
//	                   the base64-decoded endpoint secret (after its "whsec_" prefix);
//	                   several signatures may follow one another, separated by spaces
//
// A receiver calls Verify on the raw body before it parses it. The package has no
// dependency outside the standard library, and a compatibility promise: its names and
// behaviour change only by addition.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a webhook (Standard Webhooks names them in lower case; HTTP headers are
// case-insensitive).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every endpoint secret; base64 (standard, padded) of the key follows.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a webhook's timestamp may be from now, either way, before
// Verify refuses it: it bounds how long a captured request can be replayed.
const DefaultTolerance = 5 * time.Minute

// The errors of Verify. Each is returned as it is (compare with errors.Is).
var (
	ErrBadSecret     = errors.New("webhook: the secret is not whsec_ followed by a base64 key")
	ErrMissingHeader = errors.New("webhook: a webhook-id, webhook-timestamp or webhook-signature header is missing")
	ErrTimestamp     = errors.New("webhook: webhook-timestamp is not Unix seconds within the tolerance of now")
	ErrSignature     = errors.New("webhook: no webhook-signature matches the body")
)

// key decodes an endpoint secret. The prefix is optional, as in the Standard Webhooks
// libraries, so that a bare base64 key works too.
func key(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(k) == 0 {
		return nil, ErrBadSecret
	}
	return k, nil
}

// mac returns the raw HMAC-SHA256 of "<id>.<timestamp>.<body>".
func mac(k []byte, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, k)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns the webhook-signature value ("v1,<base64>") of a webhook with this id,
// timestamp (whole seconds count) and body under secret. tpwallet signs with it; a
// receiver's tests can use it to make requests that Verify accepts.
func Sign(secret, id string, timestamp time.Time, body []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(k, id, timestamp.Unix(), body)), nil
}

// Verify checks a received webhook: header holds its webhook-* headers and body its raw
// bytes. It returns nil when one of the v1 signatures in webhook-signature is the
// HMAC of this id, timestamp and body under secret (compared in constant time), and the
// timestamp is within tolerance of now (DefaultTolerance when tolerance ≤ 0). Otherwise
// it returns ErrBadSecret, ErrMissingHeader, ErrTimestamp or ErrSignature. Signatures of
// other versions are skipped.
func Verify(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	k, err := key(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeader
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// Compare in seconds: a tolerance in seconds cannot overflow, unlike time.Unix(ts)
	// minus now for an absurd ts.
	limit := int64(tolerance / time.Second)
	if d := now.Unix() - unix; d > limit || d < -limit {
		return ErrTimestamp
	}
	want := mac(k, id, unix, body)
	for _, s := range strings.Fields(sigs) {
		version, enc, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}
