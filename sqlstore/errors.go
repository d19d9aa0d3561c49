package sqlstore

import (
	"errors"
	"reflect"
	"strings"
)

// IsUniqueViolation reports whether err (or an error it wraps) is a
// unique-key violation as the drivers report it, without importing them:
// SQLSTATE 23505 from an error with a SQLState method (pgx's
// *pgconn.PgError, lib/pq's *pq.Error), error number 1062 in a
// go-sql-driver/mysql *MySQLError (its Number field), or SQLite's
// "UNIQUE constraint failed" (mattn/go-sqlite3 and modernc.org/sqlite
// alike; SQLite's messages are not translated). Cost: a walk of the error
// chain.
func IsUniqueViolation(err error) bool {
	found := false
	walk(err, func(e error) bool {
		if st, ok := e.(interface{ SQLState() string }); ok && st.SQLState() == "23505" {
			found = true
		} else if mysqlNumber(e) == 1062 {
			found = true
		} else if strings.Contains(e.Error(), "UNIQUE constraint failed") {
			found = true
		}
		return found
	})
	return found
}

// walk calls f on err and every error it wraps (Unwrap() error and
// Unwrap() []error) until f returns true.
func walk(err error, f func(error) bool) bool {
	for err != nil {
		if f(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walk(e, f) {
					return true
				}
			}
			return false
		default:
			err = errors.Unwrap(err)
		}
	}
	return false
}

// mysqlNumber returns the Number of a go-sql-driver/mysql *MySQLError,
// or 0 for any other error.
func mysqlNumber(err error) uint64 {
	v := reflect.ValueOf(err)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return 0
	}
	v = v.Elem()
	t := v.Type()
	if v.Kind() != reflect.Struct || t.Name() != "MySQLError" || !strings.HasSuffix(t.PkgPath(), "go-sql-driver/mysql") {
		return 0
	}
	if f := v.FieldByName("Number"); f.IsValid() && f.CanUint() {
		return f.Uint()
	}
	return 0
}
