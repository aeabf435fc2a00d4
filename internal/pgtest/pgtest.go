// Package pgtest gives tests a PostgreSQL database of their own on the local server
// (127.0.0.1:5432, user postgres; TPWALLET_TEST_PG overrides it), dropped when the test
// ends. Without PostgreSQL it fails the test, never skips: scripts/services.sh starts it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// AdminURL is the server the tests use.
func AdminURL() string {
	if d := os.Getenv("TPWALLET_TEST_PG"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// TortureURL is the server of the tests that stop and start PostgreSQL under load: the
// cluster tpwtorture that scripts/services.sh creates on port 5433, so that stopping it
// leaves the other tests alone.
const TortureURL = "postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable"

// NewDatabase creates an empty database for tb and returns its URL.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return NewDatabaseOn(tb, AdminURL())
}

// NewDatabaseOn creates an empty database on the server adminURL names (a postgres://
// URL of a user that may create databases), dropped when tb ends.
func NewDatabaseOn(tb testing.TB, adminURL string) string {
	tb.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		tb.Fatalf("PostgreSQL unreachable (%s; scripts/services.sh starts it): %v", adminURL, err)
	}
	defer admin.Close(ctx)
	var b [8]byte
	rand.Read(b[:])
	name := "tpwallet_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			tb.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		tb.Fatalf("TPWALLET_TEST_PG must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
