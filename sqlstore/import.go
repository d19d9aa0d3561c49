package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/entschema"
)

// DBTX runs statements and queries: a *sql.Tx (the caller's transaction,
// so what the methods below write commits or rolls back with everything
// else it writes), a *sql.Conn or a *sql.DB.
type DBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ImportChunk is the most rows one INSERT of InsertNew carries, and the
// most IDs one query of UsersTable.Existing asks for: 1000 rows of eleven
// columns are 11,000 parameters, within every database's limit (SQLite's
// 32,766, PostgreSQL's and MySQL's 65,535).
const ImportChunk = 1000

// InsertNew inserts recs on q (pass the transaction that also records the
// import elsewhere) and skips every record whose key the table already
// holds, or that an earlier record of recs has: it never overwrites a row.
// It returns how many rows it inserted. It is for importers that bring
// sessions from another system (package django); an app's requests create
// sessions with Insert, whose conflict means "draw a new key".
//
// Every record is checked first (key, user ID), so a bad one is an error
// before any statement runs. A user ID that is not in the users table is
// a foreign-key error of the database: check users first
// (UsersTable.Existing). A concurrent writer of the same key can make the
// call fail with an error wrapping backend.ErrKeyExists (MySQL/MariaDB
// only): roll the transaction back and run it again.
//
// Cost: on PostgreSQL and SQLite, one INSERT ... ON CONFLICT
// (session_key) DO NOTHING per ImportChunk records; on MySQL/MariaDB, one
// SELECT of the keys that exist and one INSERT of the others per chunk.
// (Not INSERT IGNORE, which also turns a foreign-key violation or a value
// the column cannot hold into a warning and a silently skipped or altered
// row.)
func (s *Store) InsertNew(ctx context.Context, q DBTX, recs []*backend.Record) (int, error) {
	args := make([][]any, 0, len(recs))
	seen := make(map[string]bool, len(recs))
	for _, rec := range recs {
		if err := checkKey(rec.Key); err != nil {
			return 0, err
		}
		if seen[rec.Key] {
			continue
		}
		seen[rec.Key] = true
		a, err := s.insertArgs(rec)
		if err != nil {
			return 0, fmt.Errorf("session %s: %w", backend.PublicID(rec.Key), err)
		}
		args = append(args, a)
	}
	total := 0
	for start := 0; start < len(args); start += ImportChunk {
		n, err := s.insertChunk(ctx, q, args[start:min(start+ImportChunk, len(args))])
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// insertChunk inserts one chunk of InsertNew (rows of insertArgs).
func (s *Store) insertChunk(ctx context.Context, q DBTX, rows [][]any) (int, error) {
	if s.dialect == MySQL {
		keys := make([]any, len(rows))
		for i, r := range rows {
			keys[i] = r[0]
		}
		have, err := s.existingKeys(ctx, q, keys)
		if err != nil {
			return 0, err
		}
		if len(have) > 0 {
			kept := rows[:0:0]
			for _, r := range rows {
				if !have[r[0].(string)] {
					kept = append(kept, r)
				}
			}
			rows = kept
		}
		if len(rows) == 0 {
			return 0, nil
		}
	}
	query, params := s.multiInsert(rows)
	res, err := q.ExecContext(ctx, query, params...)
	if err != nil {
		if IsUniqueViolation(err) {
			return 0, fmt.Errorf("inserting %d imported sessions: %w (a concurrent writer; run the batch again)", len(rows), backend.ErrKeyExists)
		}
		return 0, fmt.Errorf("inserting %d imported sessions: %w", len(rows), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("inserting %d imported sessions: %w", len(rows), err)
	}
	return int(n), nil
}

// multiInsert builds the INSERT of rows (each the parameters of the
// store's insert, in its column order), skipping conflicting keys on
// PostgreSQL and SQLite.
func (s *Store) multiInsert(rows [][]any) (string, []any) {
	// The store's own INSERT names the columns, so both write the same.
	head, _, _ := strings.Cut(s.insert, " VALUES ")
	cols := strings.Split(head[strings.IndexByte(head, '(')+1:len(head)-1], ", ")
	user := slices.Index(cols, entschema.ColumnUserID)
	var b strings.Builder
	b.WriteString(head + " VALUES ")
	params := make([]any, 0, len(rows)*len(cols))
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c, v := range r {
			if c > 0 {
				b.WriteByte(',')
			}
			n := len(params) + 1
			params = append(params, v)
			switch {
			case s.dialect != Postgres:
				b.WriteByte('?')
			case c == user: // text, cast to the column's type
				b.WriteString("CAST($" + strconv.Itoa(n) + "::text AS " + s.uid.typ + ")")
			default:
				b.WriteString("$" + strconv.Itoa(n))
			}
		}
		b.WriteByte(')')
	}
	if s.dialect != MySQL {
		b.WriteString(" ON CONFLICT (" + entschema.ColumnKey + ") DO NOTHING")
	}
	return b.String(), params
}

// existingKeys returns which of keys the table holds, live or expired.
// One SELECT by primary key.
func (s *Store) existingKeys(ctx context.Context, q DBTX, keys []any) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, s.inList("SELECT "+entschema.ColumnKey+" FROM "+entschema.Table+" WHERE "+entschema.ColumnKey+" IN (", 1, len(keys)), keys...)
	if err != nil {
		return nil, fmt.Errorf("selecting existing session keys: %w", err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("selecting existing session keys: %w", err)
		}
		have[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("selecting existing session keys: %w", err)
	}
	return have, nil
}

// ErrNoUsersTable is returned by Store.UsersTable when user_id has no
// foreign key, so no table says which users exist.
var ErrNoUsersTable = errors.New("sqlstore: qsessions_session.user_id has no foreign key to a users table")

// UsersTable is the table and column the user_id foreign key of
// qsessions_session references: the app's users. Importers check with it
// that the users of the sessions they bring exist, rather than fail a
// whole batch on a foreign-key error.
type UsersTable struct {
	s *Store
	// Table and Column name the referenced table and column, as the
	// catalog spells them.
	Table, Column string
	// query is the SELECT prefix, names quoted.
	query string
}

// UsersTable reads from the catalog which table and column user_id
// references; an error wrapping ErrNoUsersTable when there is no foreign
// key. Cost: one catalog query (two on SQLite when the key names no
// column); keep the result.
func (s *Store) UsersTable(ctx context.Context) (*UsersTable, error) {
	var q string
	switch s.dialect {
	case Postgres:
		q = `SELECT n.nspname, t.relname, a.attname FROM pg_constraint c
		 JOIN pg_attribute sa ON sa.attrelid = c.conrelid AND sa.attnum = c.conkey[1]
		 JOIN pg_class t ON t.oid = c.confrelid
		 JOIN pg_namespace n ON n.oid = t.relnamespace
		 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = c.confkey[1]
		 WHERE c.conrelid = to_regclass($1) AND c.contype = 'f' AND cardinality(c.conkey) = 1 AND sa.attname = $2`
	case MySQL:
		q = `SELECT referenced_table_schema, referenced_table_name, referenced_column_name
		 FROM information_schema.key_column_usage
		 WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ? AND referenced_table_name IS NOT NULL`
	default:
		q = `SELECT 'main', "table", COALESCE("to", '') FROM pragma_foreign_key_list(?) WHERE "from" = ?`
	}
	var schema, table, column string
	err := s.db.QueryRowContext(ctx, q, entschema.Table, entschema.ColumnUserID).Scan(&schema, &table, &column)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoUsersTable
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: reading the foreign key of %s.%s: %w", entschema.Table, entschema.ColumnUserID, err)
	}
	if column == "" { // SQLite: REFERENCES users, the primary key
		err := s.db.QueryRowContext(ctx, `SELECT name FROM pragma_table_info(?) WHERE pk = 1`, table).Scan(&column)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: reading the primary key of %s: %w", table, err)
		}
	}
	quote := func(name string) string {
		if s.dialect == MySQL {
			return "`" + strings.ReplaceAll(name, "`", "``") + "`"
		}
		return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
	}
	text := "TEXT"
	if s.dialect == MySQL {
		text = "CHAR"
	}
	col := quote(column)
	u := &UsersTable{s: s, Table: table, Column: column}
	u.query = "SELECT CAST(" + col + " AS " + text + ") FROM " + quote(schema) + "." + quote(table) + " WHERE " + col + " IN ("
	return u, nil
}

// Existing returns which of ids (user IDs as ParseUserID gives them)
// have a row in the users table, keyed by that text; an ID that cannot be
// a user_id is an error wrapping ErrUserID. Run it on the transaction
// that inserts the sessions, so the answer holds until it commits (a user
// deleted meanwhile makes the insert fail, not the session orphaned).
// Cost: one SELECT by primary key per ImportChunk distinct IDs.
func (u *UsersTable) Existing(ctx context.Context, q DBTX, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	params := make([]any, 0, min(len(ids), ImportChunk))
	seen := make(map[string]bool, len(ids))
	flush := func() error {
		if len(params) == 0 {
			return nil
		}
		var b strings.Builder
		b.WriteString(u.query)
		for i := range params {
			if i > 0 {
				b.WriteByte(',')
			}
			if u.s.dialect == Postgres {
				b.WriteString("CAST($" + strconv.Itoa(i+1) + "::text AS " + u.s.uid.typ + ")")
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
		rows, err := q.QueryContext(ctx, b.String(), params...)
		params = params[:0]
		if err != nil {
			return fmt.Errorf("sqlstore: reading users of %s: %w", u.Table, err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return fmt.Errorf("sqlstore: reading users of %s: %w", u.Table, err)
			}
			out[id] = true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlstore: reading users of %s: %w", u.Table, err)
		}
		return nil
	}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		_, p, err := u.s.parseUserID(id)
		if err != nil {
			return nil, err
		}
		params = append(params, p)
		if len(params) == ImportChunk {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}
