package backend

import (
	"errors"
	"strings"
)

// IsDeadlock reports whether err says that the database ended the
// statement (or its transaction) to break a deadlock, having written
// nothing of it: PostgreSQL's deadlock_detected (SQLSTATE 40P01, through
// the SQLState method of pgx's and lib/pq's errors) and MySQL/MariaDB's
// ER_LOCK_DEADLOCK (1213, recognised by go-sql-driver/mysql's text,
// without importing it). A statement that failed so may be run again.
func IsDeadlock(err error) bool {
	if err == nil {
		return false
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) && st.SQLState() == "40P01" {
		return true
	}
	return strings.Contains(err.Error(), "Error 1213")
}
