package migrations

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	entschema "entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/schema/field"
)

// The revision table is the atlas CLI's: the same name, columns, types
// and values, so that the CLI and Apply can take turns on one database.
const (
	// RevisionTable is the table that records applied migration files.
	RevisionTable = "atlas_schema_revisions"
	// DefaultRevisionsSchema is the schema (MySQL: database) that holds
	// RevisionTable when the URL names none, as with the CLI.
	DefaultRevisionsSchema = "atlas_schema_revisions"
	// cloudIdentifier is the version of the row the CLI keeps for Atlas
	// Cloud; it is never a migration.
	cloudIdentifier = ".atlas_cloud_identifier"
)

// revisionColumns are the table's columns in the order read and written.
var revisionColumns = []string{
	"version", "description", "type", "applied", "total", "executed_at",
	"execution_time", "error", "error_stmt", "hash", "partial_hashes", "operator_version",
}

// revisionTable describes RevisionTable to ent's migration engine, which
// creates and upgrades it exactly as the CLI (itself built on ent) does.
func revisionTable() *entschema.Table {
	cols := []*entschema.Column{
		{Name: "version", Type: field.TypeString},
		{Name: "description", Type: field.TypeString},
		{Name: "type", Type: field.TypeUint, Default: uint(migrate.RevisionTypeExecute)},
		{Name: "applied", Type: field.TypeInt, Default: 0},
		{Name: "total", Type: field.TypeInt, Default: 0},
		{Name: "executed_at", Type: field.TypeTime},
		{Name: "execution_time", Type: field.TypeInt64},
		{Name: "error", Type: field.TypeString, Nullable: true, Size: 2147483647},
		{Name: "error_stmt", Type: field.TypeString, Nullable: true, Size: 2147483647},
		{Name: "hash", Type: field.TypeString},
		{Name: "partial_hashes", Type: field.TypeJSON, Nullable: true},
		{Name: "operator_version", Type: field.TypeString},
	}
	return &entschema.Table{Name: RevisionTable, Columns: cols, PrimaryKey: cols[:1]}
}

// revisions is a migrate.RevisionReadWriter over RevisionTable, in plain
// SQL on a pool or a transaction.
type revisions struct {
	q       schema.ExecQuerier
	dialect string
	// schema qualifies the table; "" for SQLite, whose table lives in main.
	schema string
}

var _ migrate.RevisionReadWriter = (*revisions)(nil)

// Ident returns the table's name and schema.
func (r *revisions) Ident() *migrate.TableIdent {
	s := r.schema
	if r.dialect == dialect.SQLite {
		s = "main"
	}
	return &migrate.TableIdent{Name: RevisionTable, Schema: s}
}

func (r *revisions) quote(id string) string {
	if r.dialect == dialect.Postgres {
		return `"` + strings.ReplaceAll(id, `"`, `""`) + `"`
	}
	return "`" + strings.ReplaceAll(id, "`", "``") + "`"
}

func (r *revisions) table() string {
	if r.schema == "" || r.dialect == dialect.SQLite {
		return r.quote(RevisionTable)
	}
	return r.quote(r.schema) + "." + r.quote(RevisionTable)
}

func (r *revisions) arg(i int) string {
	if r.dialect == dialect.Postgres {
		return fmt.Sprintf("$%d", i)
	}
	return "?"
}

func (r *revisions) selectList() string {
	cols := make([]string, len(revisionColumns))
	for i, c := range revisionColumns {
		cols[i] = r.quote(c)
	}
	return strings.Join(cols, ", ")
}

// ReadRevisions returns all revisions but the CLI's cloud-identifier row,
// ordered by version. Cost: one SELECT.
func (r *revisions) ReadRevisions(ctx context.Context) ([]*migrate.Revision, error) {
	rows, err := r.q.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s <> %s ORDER BY %s",
		r.selectList(), r.table(), r.quote("version"), r.arg(1), r.quote("version")), cloudIdentifier)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", RevisionTable, err)
	}
	defer rows.Close()
	var revs []*migrate.Revision
	for rows.Next() {
		rev, err := scanRevision(rows)
		if err != nil {
			return nil, err
		}
		revs = append(revs, rev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", RevisionTable, err)
	}
	return revs, nil
}

// ReadRevision returns the revision of version v, or
// migrate.ErrRevisionNotExist. Cost: one SELECT.
func (r *revisions) ReadRevision(ctx context.Context, v string) (*migrate.Revision, error) {
	if v == cloudIdentifier {
		return nil, errors.New("the revision table's identifier row is not a revision")
	}
	rows, err := r.q.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s = %s",
		r.selectList(), r.table(), r.quote("version"), r.arg(1)), v)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", RevisionTable, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", RevisionTable, err)
		}
		return nil, migrate.ErrRevisionNotExist
	}
	return scanRevision(rows)
}

// WriteRevision inserts rev or, when its version exists, updates it the
// way the CLI does: every column but version, description and executed_at,
// which keep the values of the first write. Cost: one upsert.
func (r *revisions) WriteRevision(ctx context.Context, rev *migrate.Revision) error {
	if rev.Version == cloudIdentifier {
		return errors.New("writing the revision table's identifier row is not allowed")
	}
	// The CLI (ent) stores the JSON encoding of the slice: "null" when nil.
	ph, err := json.Marshal(rev.PartialHashes)
	if err != nil {
		return err
	}
	args := []any{
		rev.Version, rev.Description, int64(rev.Type), rev.Applied, rev.Total, rev.ExecutedAt,
		int64(rev.ExecutionTime), rev.Error, rev.ErrorStmt, rev.Hash, string(ph), rev.OperatorVersion,
	}
	marks := make([]string, len(args))
	for i := range args {
		marks[i] = r.arg(i + 1)
	}
	var set []string
	for _, c := range revisionColumns {
		switch c {
		case "version", "description", "executed_at":
			continue
		}
		switch r.dialect {
		case dialect.MySQL:
			set = append(set, fmt.Sprintf("%s = VALUES(%s)", r.quote(c), r.quote(c)))
		default:
			set = append(set, fmt.Sprintf("%s = excluded.%s", r.quote(c), r.quote(c)))
		}
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ", r.table(), r.selectList(), strings.Join(marks, ", "))
	if r.dialect == dialect.MySQL {
		q += "ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	} else {
		q += fmt.Sprintf("ON CONFLICT (%s) DO UPDATE SET %s", r.quote("version"), strings.Join(set, ", "))
	}
	if _, err := r.q.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("writing %s: %w", RevisionTable, err)
	}
	return nil
}

// DeleteRevision deletes the revision of version v. Cost: one DELETE.
func (r *revisions) DeleteRevision(ctx context.Context, v string) error {
	if v == cloudIdentifier {
		return errors.New("deleting the revision table's identifier row is not allowed")
	}
	_, err := r.q.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s = %s", r.table(), r.quote("version"), r.arg(1)), v)
	if err != nil {
		return fmt.Errorf("deleting from %s: %w", RevisionTable, err)
	}
	return nil
}

func scanRevision(rows *sql.Rows) (*migrate.Revision, error) {
	var (
		rev           migrate.Revision
		typ           int64
		at            anyTime
		execTime      int64
		errMsg, errSt sql.NullString
		partial       sql.NullString
	)
	if err := rows.Scan(&rev.Version, &rev.Description, &typ, &rev.Applied, &rev.Total, &at,
		&execTime, &errMsg, &errSt, &rev.Hash, &partial, &rev.OperatorVersion); err != nil {
		return nil, fmt.Errorf("reading %s: %w", RevisionTable, err)
	}
	rev.Type = migrate.RevisionType(typ)
	rev.ExecutedAt = at.t
	rev.ExecutionTime = time.Duration(execTime)
	rev.Error, rev.ErrorStmt = errMsg.String, errSt.String
	if partial.Valid && partial.String != "" {
		if err := json.Unmarshal([]byte(partial.String), &rev.PartialHashes); err != nil {
			return nil, fmt.Errorf("reading %s: partial_hashes of version %s: %w", RevisionTable, rev.Version, err)
		}
	}
	return &rev, nil
}

// anyTime scans a time column whether the driver returns a time.Time or
// the text SQLite stores.
type anyTime struct{ t time.Time }

func (a *anyTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		a.t = time.Time{}
	case time.Time:
		a.t = v
	case string:
		return a.parse(v)
	case []byte:
		return a.parse(string(v))
	default:
		return fmt.Errorf("executed_at: unexpected %T", v)
	}
	return nil
}

func (a *anyTime) parse(s string) error {
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999-07:00", "2006-01-02T15:04:05.999999999-07:00",
		"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.RFC3339Nano,
	} {
		if t, err := time.Parse(layout, s); err == nil {
			a.t = t
			return nil
		}
	}
	return fmt.Errorf("executed_at: cannot parse %q", s)
}

// ensureRevisionTable creates the revisions schema (not for SQLite) and
// creates or upgrades RevisionTable with ent's engine on a connection
// bound to that schema, as the CLI does. Cost: a schema inspection, a
// table inspection and, the first time, a CREATE.
func ensureRevisionTable(ctx context.Context, db *sql.DB, drv migrate.Driver, d, connected, revSchema string) error {
	if d != dialect.SQLite {
		_, err := drv.InspectSchema(ctx, revSchema, &schema.InspectOptions{Mode: schema.InspectSchemas})
		switch {
		case schema.IsNotExistError(err):
			if err := drv.ApplyChanges(ctx, []schema.Change{&schema.AddSchema{S: schema.New(revSchema)}}); err != nil {
				return fmt.Errorf("creating schema %q for %s: %w", revSchema, RevisionTable, err)
			}
		case err != nil:
			return fmt.Errorf("inspecting schema %q: %w", revSchema, err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	rebound := false
	defer func() {
		if rebound {
			// The connection's schema was changed: drop it from the pool
			// rather than hand it back bound to the revisions schema.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}()
	opts := []entschema.MigrateOption{
		entschema.WithDropColumn(true),
		entschema.WithDiffHook(onlyRevisionTable),
	}
	switch d {
	case dialect.Postgres:
		if revSchema != connected {
			rebound = true
			if _, err := conn.ExecContext(ctx, "SELECT set_config('search_path', $1, false)", `"`+strings.ReplaceAll(revSchema, `"`, `""`)+`"`); err != nil {
				return fmt.Errorf("switching to schema %q: %w", revSchema, err)
			}
		}
		opts = append(opts, entschema.WithSchemaName(revSchema))
	case dialect.MySQL:
		if revSchema != connected {
			rebound = true
			if _, err := conn.ExecContext(ctx, "USE `"+strings.ReplaceAll(revSchema, "`", "``")+"`"); err != nil {
				return fmt.Errorf("switching to database %q: %w", revSchema, err)
			}
		}
		opts = append(opts, entschema.WithSchemaName(revSchema))
	case dialect.SQLite:
		// ent's engine insists on foreign keys; turn them on for this
		// connection if they are off, as the CLI does.
		var on sql.NullBool
		if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&on); err != nil {
			return err
		}
		if !on.Bool {
			if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = on"); err != nil {
				return err
			}
			defer func() { _, _ = conn.ExecContext(ctx, "PRAGMA foreign_keys = off") }()
		}
	}
	m, err := entschema.NewMigrate(&connDriver{Driver: entsql.NewDriver(d, entsql.Conn{ExecQuerier: conn}), conn: conn}, opts...)
	if err != nil {
		return err
	}
	if err := m.Create(ctx, revisionTable()); err != nil {
		return fmt.Errorf("creating %s: %w", RevisionTable, err)
	}
	return nil
}

// onlyRevisionTable keeps ent's engine to RevisionTable: it never touches
// another table of the schema.
func onlyRevisionTable(next entschema.Differ) entschema.Differ {
	return entschema.DiffFunc(func(current, desired *schema.Schema) ([]schema.Change, error) {
		changes, err := next.Diff(current, desired)
		if err != nil {
			return nil, err
		}
		for _, c := range changes {
			switch c := c.(type) {
			case *schema.AddTable:
				if c.T.Name == RevisionTable {
					return schema.Changes{c}, nil
				}
			case *schema.ModifyTable:
				if c.T.Name == RevisionTable {
					return schema.Changes{c}, nil
				}
			}
		}
		return nil, nil
	})
}

// connDriver is an ent driver on one connection; ent's own needs a pool to
// begin transactions.
type connDriver struct {
	*entsql.Driver
	conn *sql.Conn
}

func (d *connDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &entsql.Tx{Conn: entsql.Conn{ExecQuerier: tx}, Tx: tx}, nil
}
