package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tpwallet/tpwallet/internal/store/pgstore"
)

// runMigrate brings a PostgreSQL store's schema up to this build's (serve does the same at
// start); it refuses a database whose schema is newer than the build.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tpwallet migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeURL := fs.String("store", envOr("TPWALLET_STORE", ""), "a postgres:// URL (env TPWALLET_STORE)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case isPebble(*storeURL):
		fmt.Fprintln(stdout, "the embedded Pebble store needs no migrations: serve checks its format at start")
		return nil
	case !isPostgres(*storeURL):
		return fmt.Errorf("migrate: %w", errStoreURL)
	}
	st, err := pgstore.Open(ctx, *storeURL, pgstore.Options{})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer st.Close()
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "PostgreSQL store schema at version %d\n", v)
	return nil
}
