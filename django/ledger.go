package django

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// LedgerTable is the table a Ledger keeps in the Go app's database.
const LedgerTable = "qsessions_django_import"

// Ledger records, in the Go app's own database, the stored key
// (backend.KeyOf of the Django session_key) of every Django session ever
// imported, so none is imported twice: not by a second run of the importer,
// and not by the cut-over fallback after the Go side revoked it, whatever
// Django does to its own row meanwhile. (Mark cannot promise that: Django
// rewrites its whole row when it saves, so a Django request that loaded the
// session before Mark and saves after erases the mark.) Write to the ledger
// in the transaction that inserts the qsessions rows; keep its rows for as
// long as the Django table can still be read (the cut-over), then drop the
// table. It holds SHA-256 keys only, never a Django cookie.
type Ledger struct {
	dialect string
}

// NewLedger returns the Ledger for a database of dialect (as NewReader).
// Cost: none.
func NewLedger(dialect string) (*Ledger, error) {
	r, err := NewReader(nil, dialect, DjangoSession)
	if err != nil {
		return nil, err
	}
	return &Ledger{dialect: r.dialect}, nil
}

// DDL returns the CREATE TABLE IF NOT EXISTS statement of LedgerTable for
// the Ledger's dialect: a 64-character primary key and the import time.
// Apps that manage their schema with migrations add it there.
func (l *Ledger) DDL() string {
	switch l.dialect {
	case "postgres":
		return "CREATE TABLE IF NOT EXISTS " + LedgerTable + " (session_key varchar(64) NOT NULL PRIMARY KEY, imported_at timestamptz NOT NULL)"
	case "mysql":
		return "CREATE TABLE IF NOT EXISTS " + LedgerTable + " (session_key varchar(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, imported_at datetime(6) NOT NULL)"
	}
	return "CREATE TABLE IF NOT EXISTS " + LedgerTable + " (session_key text NOT NULL PRIMARY KEY, imported_at datetime NOT NULL)"
}

// CreateTable runs DDL. Cost: one statement.
func (l *Ledger) CreateTable(ctx context.Context, db Execer) error {
	if _, err := db.ExecContext(ctx, l.DDL()); err != nil {
		return fmt.Errorf("django: creating %s: %w", LedgerTable, err)
	}
	return nil
}

func (l *Ledger) ph(n int) string {
	if l.dialect == "postgres" {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// Claim records key (a qsessions stored key) as imported at now and
// reports whether this call recorded it: false when it was already there,
// so the caller imports nothing. Concurrent claims of one key in
// transactions get true once: the others wait for the first transaction
// and then see its row (or, if it rolled back, claim it themselves). For
// the fallback's one-session imports. Cost: one INSERT by primary key.
func (l *Ledger) Claim(ctx context.Context, db Execer, key string, now time.Time) (bool, error) {
	var q string
	switch l.dialect {
	case "mysql":
		q = "INSERT IGNORE INTO " + LedgerTable + " (session_key, imported_at) VALUES (?, ?)"
	default:
		q = "INSERT INTO " + LedgerTable + " (session_key, imported_at) VALUES (" + l.ph(1) + ", " + l.ph(2) + ") ON CONFLICT (session_key) DO NOTHING"
	}
	res, err := db.ExecContext(ctx, q, key, l.timeArg(now))
	if err != nil {
		return false, fmt.Errorf("django: recording an import in %s: %w", LedgerTable, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("django: recording an import in %s: %w", LedgerTable, err)
	}
	return n == 1, nil
}

// Imported returns which of keys the ledger holds. For the importer's
// batches: skip those, then Record the rest in the same transaction as
// their sessions. Cost: one SELECT by primary key for up to len(keys) keys
// (keep batches within the database's parameter limit: 999 on old SQLite).
func (l *Ledger) Imported(ctx context.Context, q Querier, keys []string) (map[string]bool, error) {
	out := make(map[string]bool, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	var b strings.Builder
	b.WriteString("SELECT session_key FROM " + LedgerTable + " WHERE session_key IN (")
	args := make([]any, len(keys))
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.ph(i + 1))
		args[i] = k
	}
	b.WriteString(")")
	rows, err := q.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("django: reading %s: %w", LedgerTable, err)
	}
	if err := scanKeys(rows, out); err != nil {
		return nil, fmt.Errorf("django: reading %s: %w", LedgerTable, err)
	}
	return out, nil
}

// scanKeys adds each row's one column (a session key) to out and closes
// rows.
func scanKeys(rows *sql.Rows, out map[string]bool) error {
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		out[k] = true
	}
	return rows.Err()
}

// Record records keys as imported at now with one multi-row INSERT. A key
// already there is an error (a concurrent importer got it first: roll the
// batch back and run it again). Cost: one INSERT of len(keys) rows.
func (l *Ledger) Record(ctx context.Context, db Execer, keys []string, now time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	ins, args := l.insertValues(keys, now)
	if _, err := db.ExecContext(ctx, ins, args...); err != nil {
		return fmt.Errorf("django: recording %d imports in %s: %w", len(keys), LedgerTable, err)
	}
	return nil
}

// insertValues returns the multi-row INSERT of keys, imported at now,
// into the ledger and its arguments.
func (l *Ledger) insertValues(keys []string, now time.Time) (string, []any) {
	var b strings.Builder
	b.WriteString("INSERT INTO " + LedgerTable + " (session_key, imported_at) VALUES ")
	args := make([]any, 0, 2*len(keys))
	t := l.timeArg(now)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + l.ph(2*i+1) + ", " + l.ph(2*i+2) + ")")
		args = append(args, k, t)
	}
	return b.String(), args
}

// RecordNew records those of keys the ledger does not hold yet as
// imported at now and returns them: the keys this call recorded, so the
// caller imports exactly those (in the same transaction). A concurrent
// transaction that records one of keys first makes this call wait for it
// and then leave that key out, or, on MySQL/MariaDB, fail with a
// duplicate-key error (roll back and run the batch again). Cost on
// PostgreSQL and SQLite: one INSERT ... ON CONFLICT DO NOTHING RETURNING
// of len(keys) rows; on MySQL/MariaDB: Imported and Record, two statements.
func (l *Ledger) RecordNew(ctx context.Context, q interface {
	Execer
	Querier
}, keys []string, now time.Time) (map[string]bool, error) {
	out := make(map[string]bool, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if l.dialect == "mysql" {
		done, err := l.Imported(ctx, q, keys)
		if err != nil {
			return nil, err
		}
		var fresh []string
		for _, k := range keys {
			if !done[k] && !out[k] {
				fresh = append(fresh, k)
				out[k] = true
			}
		}
		return out, l.Record(ctx, q, fresh, now)
	}
	ins, args := l.insertValues(keys, now)
	rows, err := q.QueryContext(ctx, ins+" ON CONFLICT (session_key) DO NOTHING RETURNING session_key", args...)
	if err != nil {
		return nil, fmt.Errorf("django: recording %d imports in %s: %w", len(keys), LedgerTable, err)
	}
	if err := scanKeys(rows, out); err != nil {
		return nil, fmt.Errorf("django: recording imports in %s: %w", LedgerTable, err)
	}
	return out, nil
}

func (l *Ledger) timeArg(now time.Time) any {
	now = now.UTC()
	if l.dialect == "sqlite3" {
		return now.Format("2006-01-02 15:04:05.000000")
	}
	return now
}
