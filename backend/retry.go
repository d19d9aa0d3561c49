package backend

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// staleConn reports whether err says that the connection a statement ran
// on was dead, not that the statement failed: a pooled connection that a
// database restart or a network cut ended while it sat idle. An idempotent
// read that failed so is worth one more try on a fresh connection. It
// recognises, without importing any driver:
//   - PostgreSQL's admin_shutdown, crash_shutdown and cannot_connect_now
//     (SQLSTATE 57P01-57P03) and connection exceptions (class 08), through
//     the SQLState method of pgx's error;
//   - driver.ErrBadConn, EOFs, connection resets and broken pipes;
//   - go-sql-driver/mysql's ErrInvalidConn ("invalid connection") and
//     "server has gone away"/"lost connection" (MySQL 2006/2013), by text.
//
// A context that ended is never stale: the caller gave up.
func staleConn(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		code := st.SQLState()
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
	}
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return true
	case errors.As(err, &ne) && !ne.Timeout():
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "invalid connection") || strings.Contains(msg, "server has gone away") ||
		strings.Contains(msg, "Lost connection to")
}

// readOnce runs an idempotent read and, when it failed on a stale pooled
// connection (staleConn), once more: the pool then hands out or opens
// another connection.
func readOnce[T any](ctx context.Context, read func() (T, error)) (T, error) {
	v, err := read()
	if staleConn(ctx, err) {
		return read()
	}
	return v, err
}
