package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Rows is the part of *sql.Rows (and of ent's sql.Rows) that CheckTable
// reads.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Close() error
	Err() error
}

// QueryFunc runs a query with arguments and returns its rows.
type QueryFunc func(ctx context.Context, query string, args ...any) (Rows, error)

// ErrNoTable wraps CheckTable's answer when the session table or some of
// its columns are missing: the migrations that create them were not
// applied.
var ErrNoTable = errors.New("qsessions: the session table is missing or incomplete")

// CheckTable verifies that table exists in the connection's current schema
// (Postgres: the search path; MySQL: the current database; SQLite: main)
// with every one of columns. dialect is ent's dialect name (postgres,
// mysql, sqlite3). The error wraps ErrNoTable and names the table or the
// missing columns and how to fix it. Cost: one catalog query.
func CheckTable(ctx context.Context, query QueryFunc, dialect, table string, columns ...string) error {
	var q string
	switch dialect {
	case "postgres":
		q = "SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema()"
	case "mysql":
		q = "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = DATABASE()"
	case "sqlite3", "sqlite":
		q = "SELECT name FROM pragma_table_info(?)"
	default:
		return fmt.Errorf("qsessions: checking the session table: unknown dialect %q", dialect)
	}
	rows, err := query(ctx, q, table)
	if err != nil {
		return fmt.Errorf("qsessions: checking the session table %s: %w", table, err)
	}
	defer rows.Close()
	var have []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return fmt.Errorf("qsessions: checking the session table %s: %w", table, err)
		}
		have = append(have, strings.ToLower(c))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("qsessions: checking the session table %s: %w", table, err)
	}
	const fix = "apply the migrations that create it (`qsessions migrate apply --db URL --dir DIR`, `atlas migrate apply`, " +
		"or migrations.Apply; an app that adopts qsessions needs a migration file that creates the table after its baseline: see docs/migrations.md)"
	if len(have) == 0 {
		return fmt.Errorf("%w: no table %s in this database: %s", ErrNoTable, table, fix)
	}
	var missing []string
	for _, c := range columns {
		if !slices.Contains(have, strings.ToLower(c)) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: table %s has no column %s: %s", ErrNoTable, table, strings.Join(missing, ", "), fix)
	}
	return nil
}
