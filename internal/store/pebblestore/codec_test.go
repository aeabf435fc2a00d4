package pebblestore

// Fuzz tests of the store's own encodings (activity rows, idempotency answers, API keys):
// decoding any bytes never panics, and whatever decodes encodes back to the same bytes.
// They are inside the package because the encodings are not exported.

import (
	"bytes"
	"crypto/sha256"
	"math"
	"reflect"
	"testing"

	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

var activitySeeds = []Activity{
	{Op: ledger.ChangeCreate, Posts: true, Entry: journal.Entry{TransferID: "t1", Direction: journal.Debit,
		Amount: ledger.AmountFromUint64(250), Kind: ledger.TransferP2P, PostedAfter: ledger.Balance{Neg: true, Mag: ledger.AmountFromUint64(250)}}},
	{Op: ledger.ChangeCreate, Entry: journal.Entry{TransferID: "hold-1", Direction: journal.Credit,
		Amount: ledger.AmountMax, Kind: ledger.TransferAdjustment, PostedAfter: ledger.Balance{Mag: ledger.AmountMax}}},
	{Op: ledger.ChangePost, Posts: true, Entry: journal.Entry{TransferID: "tr_0123456789abc", Direction: journal.Credit,
		Amount: ledger.AmountFromParts(1, 0), Kind: ledger.TransferFX}},
	{Op: ledger.ChangeExpire, Entry: journal.Entry{TransferID: "x", Direction: journal.Debit, Amount: ledger.AmountFromUint64(1),
		Kind: ledger.TransferFee}},
}

var idempotencySeeds = []journal.Idempotency{
	{RequestHash: sha256.Sum256([]byte("a")), Status: 201, Body: []byte(`{"id":"t1"}`), ExpiresAt: 1_767_225_600e9},
	{Status: 422, ExpiresAt: -1},
	{Status: 999, Body: bytes.Repeat([]byte{0, 0xff}, 300), ExpiresAt: math.MaxInt64},
	{ExpiresAt: math.MinInt64},
}

var apiKeySeeds = []journal.APIKey{
	{ID: "key_1", Name: "checkout-service", Scopes: []string{"write"}, Hash: sha256.Sum256([]byte("s")), CreatedAt: 1_767_225_600e9},
	{ID: "key_2", Name: "", Scopes: []string{}, CreatedAt: -5, Revoked: true},
	{ID: "key_3", Name: "admin\x00weird", Scopes: []string{"admin", "read", ""}, CreatedAt: math.MaxInt64},
}

func TestCodecRoundTrip(t *testing.T) {
	for _, a := range activitySeeds {
		got, err := decodeActivity(appendActivity(nil, &a))
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Errorf("activity: got %+v (%v), want %+v", got, err, a)
		}
	}
	for _, v := range idempotencySeeds {
		got, err := decodeIdempotency(appendIdempotency(nil, &v))
		if err != nil || got.RequestHash != v.RequestHash || got.Status != v.Status ||
			!bytes.Equal(got.Body, v.Body) || got.ExpiresAt != v.ExpiresAt {
			t.Errorf("idempotency: got %+v (%v), want %+v", got, err, v)
		}
		if at, err := expiresAt(appendIdempotency(nil, &v)); err != nil || at != v.ExpiresAt {
			t.Errorf("expiresAt: got %d (%v), want %d", at, err, v.ExpiresAt)
		}
	}
	for _, k := range apiKeySeeds {
		got, err := decodeAPIKey(k.ID, appendAPIKey(nil, &k))
		if err != nil || !reflect.DeepEqual(got, k) {
			t.Errorf("api key: got %+v (%v), want %+v", got, err, k)
		}
	}
	head := journal.Head{Seq: math.MaxUint64, Hash: sha256.Sum256(nil)}
	if got, err := decodeHead(appendHead(nil, head)); err != nil || got != head {
		t.Errorf("head: got %+v (%v), want %+v", got, err, head)
	}
}

func TestCodecRefuses(t *testing.T) {
	good := appendActivity(nil, &activitySeeds[0])
	for name, b := range map[string][]byte{
		"empty":               nil,
		"op 0":                append([]byte{0}, good[1:]...),
		"op account_create":   append([]byte{byte(ledger.ChangeAccountCreate)}, good[1:]...),
		"posts 2":             append([]byte{good[0], 2}, good[2:]...),
		"post that posts not": append([]byte{byte(ledger.ChangePost), 0}, good[2:]...),
		"void that posts":     append([]byte{byte(ledger.ChangeVoid), 1}, good[2:]...),
		"truncated":           good[:len(good)-1],
		"trailing":            append(append([]byte{}, good...), 0),
	} {
		if _, err := decodeActivity(b); err == nil {
			t.Errorf("decodeActivity(%s): got nil, want an error", name)
		}
	}
	if _, err := decodeIdempotency(append(appendIdempotency(nil, &idempotencySeeds[0])[:1], 0x80)); err == nil {
		t.Errorf("decodeIdempotency(truncated): got nil, want an error")
	}
	if _, err := decodeAPIKey("k", append(appendAPIKey(nil, &apiKeySeeds[0]), 0)); err == nil {
		t.Errorf("decodeAPIKey(trailing): got nil, want an error")
	}
}

func FuzzDecodeActivity(f *testing.F) {
	for _, a := range activitySeeds {
		f.Add(appendActivity(nil, &a))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeActivity(b)
		if err != nil {
			return
		}
		if again := appendActivity(nil, &a); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x decodes to %+v, which encodes to %x", b, a, again)
		}
	})
}

func FuzzDecodeIdempotency(f *testing.F) {
	for _, v := range idempotencySeeds {
		f.Add(appendIdempotency(nil, &v))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeIdempotency(b)
		if err != nil {
			return
		}
		if again := appendIdempotency(nil, &v); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x decodes to %+v, which encodes to %x", b, v, again)
		}
		if at, err := expiresAt(b); err != nil || at != v.ExpiresAt {
			t.Fatalf("expiresAt: got %d (%v), want %d", at, err, v.ExpiresAt)
		}
	})
}

func FuzzDecodeAPIKey(f *testing.F) {
	for _, k := range apiKeySeeds {
		f.Add(appendAPIKey(nil, &k))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := decodeAPIKey("id", b)
		if err != nil {
			return
		}
		if again := appendAPIKey(nil, &k); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x decodes to %+v, which encodes to %x", b, k, again)
		}
	})
}

// TestPrefixes checks that prefixes lists every key prefix in key order, as sortedBatch
// needs to add a batch's keys in order.
func TestPrefixes(t *testing.T) {
	all := []byte{prefixMeta, prefixRecord, prefixTransfer, prefixPending, prefixAccount, prefixOwner,
		prefixAsset, prefixActivity, prefixIdem, prefixAPIKey, prefixKeyHash}
	if len(all) != len(prefixes) {
		t.Errorf("prefixes %q has %d prefixes, the package %d", prefixes, len(prefixes), len(all))
	}
	for _, p := range all {
		if i := prefixIndex[p]; prefixes[i] != p {
			t.Errorf("prefix %c missing from %q", p, prefixes)
		}
	}
	for i := 1; i < len(prefixes); i++ {
		if prefixes[i-1] >= prefixes[i] {
			t.Errorf("prefixes %q out of order at %d", prefixes, i)
		}
	}
}
