package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tpwallet/tpwallet/client/webhook"
)

// The Standard Webhooks test vector (standard-webhooks libraries, TestWebhookSign).
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorUnix   = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestWebhookSignVector(t *testing.T) {
	got, err := webhook.Sign(vectorSecret, vectorID, time.Unix(vectorUnix, 0), []byte(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSig {
		t.Errorf("got %s, want %s", got, vectorSig)
	}
	// The prefix is optional.
	got, _ = webhook.Sign(strings.TrimPrefix(vectorSecret, webhook.SecretPrefix), vectorID, time.Unix(vectorUnix, 0), []byte(vectorBody))
	if got != vectorSig {
		t.Errorf("without the prefix: got %s, want %s", got, vectorSig)
	}
}

func headers(id string, unix int64, sig string) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(unix, 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestWebhookVerify(t *testing.T) {
	now := time.Unix(vectorUnix, 0)
	const other = "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // a valid key, but not the signer's
	for _, tc := range []struct {
		name   string
		secret string
		header http.Header
		body   string
		now    time.Time
		tol    time.Duration
		want   error
	}{
		{"valid", vectorSecret, headers(vectorID, vectorUnix, vectorSig), vectorBody, now, 0, nil},
		{"valid at the edge of the tolerance", vectorSecret, headers(vectorID, vectorUnix, vectorSig), vectorBody, now.Add(5 * time.Minute), 0, nil},
		{"another secret", other, headers(vectorID, vectorUnix, vectorSig), vectorBody, now, 0, webhook.ErrSignature},
		{"tampered body", vectorSecret, headers(vectorID, vectorUnix, vectorSig), `{"test": 2432232315}`, now, 0, webhook.ErrSignature},
		{"another id", vectorSecret, headers("msg_other", vectorUnix, vectorSig), vectorBody, now, 0, webhook.ErrSignature},
		{"timestamp changed", vectorSecret, headers(vectorID, vectorUnix+1, vectorSig), vectorBody, now, 0, webhook.ErrSignature},
		{"old timestamp", vectorSecret, headers(vectorID, vectorUnix, vectorSig), vectorBody, now.Add(5*time.Minute + time.Second), 0, webhook.ErrTimestamp},
		{"future timestamp", vectorSecret, headers(vectorID, vectorUnix, vectorSig), vectorBody, now.Add(-5*time.Minute - time.Second), 0, webhook.ErrTimestamp},
		{"old for a tighter tolerance", vectorSecret, headers(vectorID, vectorUnix, vectorSig), vectorBody, now.Add(11 * time.Second), 10 * time.Second, webhook.ErrTimestamp},
		{"timestamp not a number", vectorSecret, func() http.Header {
			h := headers(vectorID, vectorUnix, vectorSig)
			h.Set(webhook.HeaderTimestamp, "1614265330.0")
			return h
		}(), vectorBody, now, 0, webhook.ErrTimestamp},
		{"several signatures, one valid", vectorSecret, headers(vectorID, vectorUnix,
			"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+vectorSig+" v1a,xx"), vectorBody, now, 0, nil},
		{"several signatures, none valid", vectorSecret, headers(vectorID, vectorUnix,
			"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,!!notbase64"), vectorBody, now, 0, webhook.ErrSignature},
		{"right MAC with another version", vectorSecret, headers(vectorID, vectorUnix,
			"v2,"+strings.TrimPrefix(vectorSig, "v1,")), vectorBody, now, 0, webhook.ErrSignature},
		{"no id", vectorSecret, headers("", vectorUnix, vectorSig), vectorBody, now, 0, webhook.ErrMissingHeader},
		{"no signature", vectorSecret, headers(vectorID, vectorUnix, ""), vectorBody, now, 0, webhook.ErrMissingHeader},
		{"bad secret", "whsec_not base64!", headers(vectorID, vectorUnix, vectorSig), vectorBody, now, 0, webhook.ErrBadSecret},
		{"empty secret", "whsec_", headers(vectorID, vectorUnix, vectorSig), vectorBody, now, 0, webhook.ErrBadSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := webhook.Verify(tc.secret, tc.header, []byte(tc.body), tc.now, tc.tol)
			if !errors.Is(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWebhookSignVerifyRoundTrip signs fresh webhooks and verifies them, and checks that every
// single-byte change of the body is refused.
func TestWebhookSignVerifyRoundTrip(t *testing.T) {
	now := time.Now()
	body := []byte(`{"specversion":"1.0","id":"7-0","type":"transfer.posted"}`)
	sig, err := webhook.Sign(vectorSecret, "7-0", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := headers("7-0", now.Unix(), sig)
	if err := webhook.Verify(vectorSecret, h, body, now, 0); err != nil {
		t.Fatalf("fresh webhook refused: %v", err)
	}
	for i := range body {
		b := []byte(string(body))
		b[i] ^= 0x01
		if err := webhook.Verify(vectorSecret, h, b, now, 0); !errors.Is(err, webhook.ErrSignature) {
			t.Fatalf("body changed at byte %d: got %v, want ErrSignature", i, err)
		}
	}
}
