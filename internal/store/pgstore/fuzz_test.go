package pgstore_test

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/tpwallet/tpwallet/internal/store"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
)

// FuzzCursors sends any cursor, as a client may, to every paged read of a real database:
// the answer is a page or store.ErrBadCursor, never another error (an invalid UTF-8 id
// reaching PostgreSQL as text, say, would be a 500).
func FuzzCursors(f *testing.F) {
	ctx := f.Context()
	s, err := pgstore.Open(ctx, newDatabase(f), pgstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	if _, _, err := s.Load(ctx); err != nil {
		f.Fatal(err)
	}
	if err := createAccount(ctx, s, "alice"); err != nil {
		f.Fatal(err)
	}
	// Real cursors from each list, and some damaged ones.
	for _, c := range []string{"", "x", "AA", "!!", base64.RawURLEncoding.EncodeToString([]byte{'a', 0xff, 0xfe}),
		base64.RawURLEncoding.EncodeToString([]byte{'t', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1}),
		base64.RawURLEncoding.EncodeToString([]byte{'e', 0x80, 0, 0, 0, 0, 0, 0, 1, 'a', 'l', 'i', 'c', 'e'})} {
		f.Add(c, "alice")
	}
	f.Add("", "")
	f.Add("", "\xff")
	f.Fuzz(func(t *testing.T, cursor, account string) {
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, store.ErrBadCursor) && !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s with cursor %q account %q: %v", what, cursor, account, err)
			}
		}
		_, _, err := s.Transfers(ctx, "", cursor, 10)
		check("Transfers", err)
		_, _, err = s.Transfers(ctx, account, cursor, 10)
		check("Transfers of an account", err)
		_, _, err = s.Accounts(ctx, "", cursor, 10)
		check("Accounts", err)
		_, _, err = s.Accounts(ctx, account, cursor, 10)
		check("Accounts of an owner", err)
		_, _, err = s.Entries(ctx, account, cursor, 10)
		check("Entries", err)
	})
}
