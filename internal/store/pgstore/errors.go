package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tpwallet/tpwallet/internal/store"
)

// unavailable wraps err with store.ErrUnavailable when it says the database could not be
// reached or is going away — a retry may succeed — rather than that the statement was
// wrong: connection failures and broken connections, timeouts, and the SQLSTATE classes 08
// (connection exception), 53 (insufficient resources) and 57 (operator intervention, such
// as a shutdown). Other errors are returned as they are.
func unavailable(err error) error {
	if err == nil || errors.Is(err, pgx.ErrNoRows) || errors.Is(err, store.ErrNotFound) ||
		errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if len(pe.Code) == 5 {
			switch pe.Code[:2] {
			case "08", "53", "57":
				return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
			}
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, context.DeadlineExceeded), err.Error() == "conn closed":
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}
