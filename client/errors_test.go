package client_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tpwallet/tpwallet/client"
)

// sentinels is every code with its sentinel, as the SDK promises them.
var sentinels = map[client.Code]error{
	client.CodeInvalidRequest:       client.ErrInvalidRequest,
	client.CodeBatchTooLarge:        client.ErrBatchTooLarge,
	client.CodeUnauthenticated:      client.ErrUnauthenticated,
	client.CodeForbidden:            client.ErrForbidden,
	client.CodeNotFound:             client.ErrNotFound,
	client.CodeAccountNotFound:      client.ErrAccountNotFound,
	client.CodeTransferNotFound:     client.ErrTransferNotFound,
	client.CodeMethodNotAllowed:     client.ErrMethodNotAllowed,
	client.CodeAccountExists:        client.ErrAccountExists,
	client.CodeAssetExists:          client.ErrAssetExists,
	client.CodeTransferExists:       client.ErrTransferExists,
	client.CodeTransferNotPending:   client.ErrTransferNotPending,
	client.CodeHoldExpired:          client.ErrHoldExpired,
	client.CodeIdempotencyInFlight:  client.ErrIdempotencyInFlight,
	client.CodeRequestTooLarge:      client.ErrRequestTooLarge,
	client.CodeUnsupportedMediaType: client.ErrUnsupportedMediaType,
	client.CodeIdempotencyKeyReused: client.ErrIdempotencyKeyReused,
	client.CodeAssetUnknown:         client.ErrAssetUnknown,
	client.CodeAccountFrozen:        client.ErrAccountFrozen,
	client.CodeAccountClosed:        client.ErrAccountClosed,
	client.CodeInsufficientFunds:    client.ErrInsufficientFunds,
	client.CodeAssetMismatch:        client.ErrAssetMismatch,
	client.CodeSameAccount:          client.ErrSameAccount,
	client.CodeAmountOverflow:       client.ErrAmountOverflow,
	client.CodeAmountExceedsHold:    client.ErrAmountExceedsHold,
	client.CodeBatchFailed:          client.ErrBatchFailed,
	client.CodeRateLimited:          client.ErrRateLimited,
	client.CodeInternal:             client.ErrInternal,
	client.CodeOverloaded:           client.ErrOverloaded,
	client.CodeNotLeader:            client.ErrNotLeader,
	client.CodeUnavailable:          client.ErrUnavailable,
	client.CodeWebhookNotFound:      client.ErrWebhookNotFound,
	client.CodeWebhookURLForbidden:  client.ErrWebhookURLForbidden,
}

// TestEveryCodeHasASentinel: the codes of openapi.yaml's Code enum (which the server's
// tests hold to its code→status table and docs/api-errors.md) are exactly the SDK's.
func TestEveryCodeHasASentinel(t *testing.T) {
	b, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas struct {
				Code struct {
					Enum []client.Code `yaml:"enum"`
				} `yaml:"Code"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	codes := doc.Components.Schemas.Code.Enum
	if len(codes) == 0 {
		t.Fatal("no Code enum in openapi.yaml")
	}
	for _, c := range codes {
		if _, ok := sentinels[c]; !ok {
			t.Errorf("openapi.yaml code %q has no sentinel in the SDK", c)
		}
	}
	for c := range sentinels {
		if !slices.Contains(codes, c) {
			t.Errorf("the SDK's code %q is not in openapi.yaml", c)
		}
	}
}

// TestErrorIs: an *Error matches its code's sentinel and no other, also wrapped.
func TestErrorIs(t *testing.T) {
	for code, s := range sentinels {
		err := fmt.Errorf("paying: %w", &client.Error{Status: 422, Code: code, Detail: "d", RequestID: "r"})
		for other, o := range sentinels {
			if got := errors.Is(err, o); got != (other == code) {
				t.Errorf("errors.Is(%s error, %s sentinel) = %v", code, other, got)
			}
		}
		if client.CodeOf(err) != code || client.CodeOf(s) != code {
			t.Errorf("CodeOf(%s) = %q / %q", code, client.CodeOf(err), client.CodeOf(s))
		}
	}
	if errors.Is(&client.Error{Status: 502}, client.ErrInternal) || client.CodeOf(errors.New("x")) != "" {
		t.Error("an error without a code matched a sentinel")
	}
	e := &client.Error{Status: 422, Code: client.CodeInsufficientFunds, Detail: "too low", RequestID: "abc"}
	if e.Error() != "tpwallet: 422 insufficient_funds: too low (request abc)" {
		t.Errorf("Error() = %q", e.Error())
	}
}
