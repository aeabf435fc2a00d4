package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tpwallet/tpwallet/internal/engine"
	"github.com/tpwallet/tpwallet/internal/journal"
	"github.com/tpwallet/tpwallet/internal/ledger"
	"github.com/tpwallet/tpwallet/internal/store/pebblestore"
	"github.com/tpwallet/tpwallet/internal/store/pgstore"
)

// backend is a store as the commands use it: what the engine needs (serve), plus the walks
// over everything that verify makes. Both stores are one.
type backend interface {
	engine.Store
	EachRecord(ctx context.Context, fn func(*journal.Record) error) error
	EachAccount(ctx context.Context, fn func(*ledger.Account) error) error
	EachPending(ctx context.Context, fn func(id string) error) error
	EachEntry(ctx context.Context, account string, fn func(journal.Entry) error) error
}

var (
	_ backend = (*pebblestore.Store)(nil)
	_ backend = (*pgstore.Store)(nil)
)

const storeFlagHelp = "storage: empty for embedded Pebble in --data, or a postgres:// URL (env TPWALLET_STORE; put passwords in the environment or ~/.pgpass, not on the command line)"

var errStoreURL = errors.New("--store must be empty (Pebble) or a postgres:// URL")

// isPebble reports whether --store selects the embedded Pebble store.
func isPebble(storeURL string) bool { return storeURL == "" || storeURL == "pebble" }

// isPostgres reports whether --store is a PostgreSQL URL.
func isPostgres(storeURL string) bool {
	return strings.HasPrefix(storeURL, "postgres://") || strings.HasPrefix(storeURL, "postgresql://")
}

// openStore opens Pebble in dir, or PostgreSQL when storeURL is a postgres:// URL. Errors
// name the store without its URL, which may hold a password.
func openStore(ctx context.Context, storeURL, dir string, log *slog.Logger) (backend, error) {
	switch {
	case isPebble(storeURL):
		st, err := pebblestore.Open(dir, pebblestore.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open data directory %s (is a server still running on it?): %w", dir, err)
		}
		return st, nil
	case isPostgres(storeURL):
		st, err := pgstore.Open(ctx, storeURL, pgstore.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return st, nil
	}
	return nil, errStoreURL
}

// storeName names the store in messages without the URL, which may hold a password.
func storeName(storeURL, dir string) string {
	if isPebble(storeURL) {
		return "data directory " + dir
	}
	return "PostgreSQL store"
}
