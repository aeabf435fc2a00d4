package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	clientwebhook "github.com/tpwallet/tpwallet/client/webhook"
	"github.com/tpwallet/tpwallet/internal/events"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// Limits of an endpoint, checked at registration.
const (
	URLMax         = 2048 // bytes of an endpoint URL
	DescriptionMax = 512  // bytes of a description
	EndpointsMax   = 100  // endpoints one server delivers to: each is a follower reading the journal
	secretBytes    = 32   // random bytes of a secret (Standard Webhooks asks for 24 to 64)
	idPrefix       = "wh_"
	idHexDigits    = 16
)

// Secret is an endpoint's signing secret, "whsec_" and base64 of 32 random bytes. It is
// shown once, by the call that creates the endpoint, and redacts itself in logs.
type Secret string

// LogValue redacts the secret.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Endpoint is a registered receiver of webhooks.
type Endpoint struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"` // empty: every type
	Description string   `json:"description"`
	Secret      Secret   `json:"secret"`
	CreatedAt   int64    `json:"created_at"` // Unix ns
}

// Spec is what a client asks for when it registers an endpoint.
type Spec struct {
	URL         string
	EventTypes  []string
	Description string
}

// check validates everything of s but the URL's addresses, and returns the event types
// without repeats, in the order given.
func (s *Spec) check() ([]string, error) {
	if len(s.Description) > DescriptionMax || !utf8.ValidString(s.Description) {
		return nil, ledger.Errorf(ledger.CodeInvalidRequest, "description must be valid UTF-8 of at most %d bytes", DescriptionMax)
	}
	types := []string{}
	seen := map[string]bool{}
	for _, t := range s.EventTypes {
		if !events.ValidType(t) {
			return nil, ledger.Errorf(ledger.CodeInvalidRequest, "event_types: %q is not an event type (%s)",
				clip(t, 64), strings.Join(events.Types, ", "))
		}
		if !seen[t] {
			seen[t] = true
			types = append(types, t)
		}
	}
	return types, nil
}

// filter is the follower filter that selects an endpoint's event types.
func filter(types []string) events.Filter {
	if len(types) == 0 {
		return nil
	}
	want := make(map[string]bool, len(types))
	for _, t := range types {
		want[t] = true
	}
	return func(e *events.Event) bool { return want[e.Type] }
}

// newID returns "wh_" and 16 random hex digits.
func newID() string {
	var b [idHexDigits / 2]byte
	rand.Read(b[:])
	return idPrefix + hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form of an endpoint id.
func ValidID(id string) bool {
	h, ok := strings.CutPrefix(id, idPrefix)
	return ok && len(h) == idHexDigits && strings.Trim(h, "0123456789abcdef") == ""
}

// newSecret returns a fresh signing secret.
func newSecret() Secret {
	var b [secretBytes]byte
	rand.Read(b[:])
	return Secret(clientwebhook.SecretPrefix + base64.StdEncoding.EncodeToString(b[:]))
}

// Meta keys of the namespace NS (doc.go).
const NS = "webhook"

func endpointKey(id string) string { return "e/" + id }
func stateKey(id string) string    { return "s/" + id }
func deliveryPrefix(id string) string {
	return "d/" + id + "/"
}
func deadPrefix(id string) string { return "x/" + id + "/" }

// followerName is the name of an endpoint's follower, and of its cursor.
func followerName(id string) string { return "webhook:" + id }

func decodeEndpoint(v []byte) (Endpoint, error) {
	var e Endpoint
	if err := json.Unmarshal(v, &e); err != nil || !ValidID(e.ID) {
		return Endpoint{}, fmt.Errorf("webhook: stored endpoint %q is not one", clip(string(v), 80))
	}
	return e, nil
}

// clip shortens s to at most n bytes for a message, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
