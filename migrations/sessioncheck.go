package migrations

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/entschema"
)

// SessionCheck says whether Apply and ReadStatus verify that the session
// table, qsessions_session, and every column the generated Store needs
// exist. The check is one catalog query (backend.CheckTable, the same the
// generated Store's Check runs at start-up).
type SessionCheck int

const (
	// CheckAuto checks when a file of the directory mentions
	// qsessions_session: qsessions' reference directories and every app
	// directory that creates the table. A directory that never mentions it
	// is not about sessions and is not checked. The default.
	CheckAuto SessionCheck = iota
	// CheckAlways checks whatever the directory holds, so an app directory
	// that never creates the table fails. `qsessions migrate` uses it
	// unless told --no-session-check.
	CheckAlways
	// CheckNever skips the check.
	CheckNever
)

// SessionColumns are the columns of qsessions_session the generated Store
// reads and writes; the session check requires each of them.
var SessionColumns = []string{
	entschema.ColumnKey, entschema.ColumnData, entschema.ColumnExpireDate, entschema.ColumnUserID,
	entschema.ColumnUserAgent, entschema.ColumnIP, entschema.ColumnCreatedAt, entschema.ColumnUpdatedAt,
	entschema.ColumnLastActivity, entschema.ColumnDeviceKey, entschema.ColumnDeviceSecret,
}

// SessionTableError is the session check's finding: qsessions_session, or
// some of its columns, are missing, with the reason found in the directory
// and the revision table and how to fix it. It wraps backend.ErrNoTable.
type SessionTableError struct {
	// Table is qsessions_session.
	Table string
	// Missing are the missing columns; nil when the table itself is missing.
	Missing []string
	// Creator is the directory's file that creates the table, nil if none.
	Creator migrate.File
	// Pending reports that Creator is still pending: the table is missing
	// because its file was not applied yet, which is no fault by itself.
	Pending bool
	// Baseline is the baseline version Apply refused because of this,
	// before writing anything; "" for a finding after an apply or in a
	// status.
	Baseline string
	// Reason says why the table is missing; Fix what to do.
	Reason, Fix string

	err error // backend.CheckTable's
}

// Error returns what is missing, why and how to fix it.
func (e *SessionTableError) Error() string {
	what := "the database has no table " + e.Table
	if len(e.Missing) > 0 {
		what = fmt.Sprintf("the session table %s lacks column %s", e.Table, strings.Join(e.Missing, ", "))
	}
	s := "migrations: " + what
	if e.Baseline != "" {
		s = fmt.Sprintf("migrations: refusing --baseline %s (Options.Baseline): %s", e.Baseline, what)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Fix != "" {
		s += ".\nTo fix it: " + e.Fix
	}
	return s
}

// Unwrap returns backend.CheckTable's error, which wraps backend.ErrNoTable.
func (e *SessionTableError) Unwrap() error { return e.err }

// docsRef points to the recipes.
const docsRef = `docs/migrations.md ("Adopting qsessions in an app that has a database")`

// mentionsSessions reports whether a file of dir mentions the session table.
func mentionsSessions(files []migrate.File) bool {
	for _, f := range files {
		if bytes.Contains(bytes.ToLower(f.Bytes()), []byte(entschema.Table)) {
			return true
		}
	}
	return false
}

// createsSessions matches a statement that creates qsessions_session,
// quoted or not, qualified or not.
var createsSessions = regexp.MustCompile("(?i)CREATE\\s+TABLE\\s+(IF\\s+NOT\\s+EXISTS\\s+)?([`\"]?[A-Za-z0-9_$]+[`\"]?\\.)?[`\"]?" + entschema.Table + "[`\"]?\\s*\\(")

// creator returns the first of files that creates the session table.
func creator(files []migrate.File) migrate.File {
	for _, f := range files {
		if createsSessions.Match(f.Bytes()) {
			return f
		}
	}
	return nil
}

// checking reports whether this run checks the session table.
func (a *applier) checking() (bool, error) {
	switch a.opts.SessionCheck {
	case CheckNever:
		return false, nil
	case CheckAlways:
		return true, nil
	}
	files, err := a.dir.Files()
	if err != nil {
		return false, fmt.Errorf("migrations: reading the migration directory: %w", err)
	}
	return mentionsSessions(files), nil
}

// recordingRows remembers the column names backend.CheckTable scans.
type recordingRows struct {
	backend.Rows
	names *[]string
}

func (r recordingRows) Scan(dest ...any) error {
	if err := r.Rows.Scan(dest...); err != nil {
		return err
	}
	if s, ok := dest[0].(*string); ok {
		*r.names = append(*r.names, strings.ToLower(*s))
	}
	return nil
}

// tableCheck runs backend.CheckTable on the connection's schema. On a
// finding it returns a SessionTableError naming what is missing, without
// reason or fix yet; other errors are returned as they are.
func (a *applier) tableCheck(ctx context.Context) (*SessionTableError, error) {
	var have []string
	query := func(ctx context.Context, q string, args ...any) (backend.Rows, error) {
		rows, err := a.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		return recordingRows{Rows: rows, names: &have}, nil
	}
	err := backend.CheckTable(ctx, query, a.dialect, entschema.Table, SessionColumns...)
	switch {
	case err == nil:
		return nil, nil
	case !errors.Is(err, backend.ErrNoTable):
		return nil, fmt.Errorf("migrations: checking the session table: %w", err)
	}
	e := &SessionTableError{Table: entschema.Table, err: err}
	if len(have) > 0 {
		for _, c := range SessionColumns {
			if !slices.Contains(have, c) {
				e.Missing = append(e.Missing, c)
			}
		}
	}
	return e, nil
}

// dirName names the directory in messages.
func (a *applier) dirName() string {
	if p, ok := a.dir.(interface{ Path() string }); ok && p.Path() != "" {
		return p.Path()
	}
	return "the migration directory"
}

// dbArg is the --db argument shown in a suggested command.
func (a *applier) dbArg() string {
	if a.opts.URL != "" {
		return "'" + a.opts.URL + "'"
	}
	return "URL"
}

// adoptFix is the fix for a directory whose baseline would cover, or
// covered, the file that creates the session table.
func (a *applier) adoptFix() string {
	return "write a directory whose baseline is the database as it is and whose later file creates " + entschema.Table +
		"; adopt writes it from this database, which it only reads:\n" +
		"  qsessions migrate adopt --db " + a.dbArg() + " --dir NEWDIR\n" +
		"and apply that directory with the --baseline version adopt prints (the app's ent schema can write it too: " +
		"`go run gen.go -adopt` into an empty directory, see package migrations/gen). See " + docsRef
}

// checkBaseline refuses, before anything is written, a first apply whose
// baseline marks the file creating the session table as applied while
// the database lacks the table: the table would never be created.
func (a *applier) checkBaseline(ctx context.Context) error {
	if a.opts.Baseline == "" {
		return nil
	}
	if ok, err := a.checking(); err != nil || !ok {
		return err
	}
	revs, err := a.readRevisionsIfAny(ctx)
	if err != nil || len(revs) > 0 {
		return err // a baseline applies to a first apply only
	}
	all, err := a.dir.Files()
	if err != nil {
		return fmt.Errorf("migrations: reading the migration directory: %w", err)
	}
	files := migrate.SkipCheckpointFiles(all)
	i := migrate.FilesLastIndex(files, func(f migrate.File) bool { return f.Version() == a.opts.Baseline })
	if i < 0 {
		return nil // the Executor reports the unknown version
	}
	f := creator(files[:i+1])
	if f == nil {
		return nil
	}
	e, err := a.tableCheck(ctx)
	if err != nil || e == nil {
		return err
	}
	e.Creator, e.Baseline = f, a.opts.Baseline
	e.Reason = fmt.Sprintf("the baseline would mark %s, which creates it, as applied without running it, so the table would never be created. "+
		"Nothing was applied or recorded", f.Name())
	e.Fix = a.adoptFix() + "."
	return e
}

// readRevisionsIfAny reads the revision table, or returns nil when there
// is none yet. Cost: one inspection and, if the table exists, one SELECT.
func (a *applier) readRevisionsIfAny(ctx context.Context) ([]*migrate.Revision, error) {
	s, err := a.drv.InspectSchema(ctx, a.revSchema, &schema.InspectOptions{Tables: []string{RevisionTable}, Mode: schema.InspectTables})
	switch {
	case schema.IsNotExistError(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("migrations: inspecting schema %q: %w", a.revSchema, err)
	}
	if _, ok := s.Table(RevisionTable); !ok {
		return nil, nil
	}
	revs, err := a.revisions(a.db).ReadRevisions(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return revs, nil
}

// checkSessions is the check after an apply.
func (a *applier) checkSessions(ctx context.Context, res *Result) error {
	if ok, err := a.checking(); err != nil || !ok {
		return err
	}
	e, err := a.tableCheck(ctx)
	if err != nil || e == nil {
		return err
	}
	revs, err := a.readRevisionsIfAny(ctx)
	if err != nil {
		return errors.Join(e, err)
	}
	if err := a.explainMissing(e, revs); err != nil {
		return errors.Join(e, err)
	}
	if e.Pending {
		return nil // applied in steps (Options.Amount): not a fault yet
	}
	if res != nil && len(res.Applied) > 0 {
		e.Reason += fmt.Sprintf(" (this run applied %s)", strings.Join(res.Applied, ", "))
	}
	return e
}

// explainMissing fills e's Creator, Pending, Reason and Fix from the
// directory and the revisions read after the apply.
func (a *applier) explainMissing(e *SessionTableError, revs []*migrate.Revision) error {
	all, err := a.dir.Files()
	if err != nil {
		return fmt.Errorf("migrations: reading the migration directory: %w", err)
	}
	f := creator(migrate.SkipCheckpointFiles(all))
	e.Creator = f
	skip := "if this directory is not about sessions, skip the check (--no-session-check, Options.SessionCheck = CheckNever)"
	switch {
	case f == nil && e.Missing != nil:
		e.Reason = fmt.Sprintf("no file of %s creates %s, and the table in the database is not the one the generated Store uses", a.dirName(), entschema.Table)
		e.Fix = "generate a migration from the app's ent schema, which includes entschema's mixins (`atlas migrate diff add_session_columns --env ENV`, " +
			"or the generator: `go run gen.go`), and apply it; " + skip + "."
		return nil
	case f == nil:
		e.Reason = fmt.Sprintf("no file of %s creates it", a.dirName())
		e.Fix = "add entschema's mixins to the app's ent schema, generate the file that adds the table (`atlas migrate diff add_sessions --env ENV`, " +
			"or the generator: `go run gen.go -name add_sessions`) and apply it; " + skip + ". See " + docsRef + "."
		return nil
	}
	var cover *migrate.Revision // the revision that counts f as applied
	for _, r := range revs {
		if r.Version == f.Version() || (r.Type.Has(migrate.RevisionTypeBaseline) && f.Version() <= r.Version) {
			cover = r
			break
		}
	}
	switch {
	case cover == nil || (cover.Version == f.Version() && cover.Applied < cover.Total && !cover.Type.Has(migrate.RevisionTypeBaseline)):
		e.Pending = true
		e.Reason = fmt.Sprintf("%s, which creates it, is not applied yet", f.Name())
		e.Fix = "apply the pending files (`qsessions migrate apply` without an amount, or migrations.Apply without Options.Amount)."
	case cover.Type.Has(migrate.RevisionTypeBaseline):
		e.Reason = fmt.Sprintf("the baseline %s recorded in %s on %s marked %s, which creates %s, as applied without running it",
			cover.Version, RevisionTable, cover.ExecutedAt.UTC().Format("2006-01-02"), f.Name(), entschema.Table)
		del := fmt.Sprintf("DELETE FROM %s WHERE version = '%s'", a.revisions(nil).table(), cover.Version)
		e.Fix = "if no file was applied after that baseline, remove its row (" + del + "); then " + a.adoptFix() +
			". If files were applied after it, create the table by running the " + entschema.Table + " statements of " + f.Name() + " by hand."
	case e.Missing != nil:
		e.Reason = fmt.Sprintf("%s created it, but the table now lacks what the generated Store uses (it was changed by hand, or the app's schema is newer than %s)", f.Name(), a.dirName())
		e.Fix = "generate a migration from the app's ent schema (`atlas migrate diff --env ENV`, or `go run gen.go`) and apply it."
	default:
		e.Reason = fmt.Sprintf("%s, which creates it, was applied on %s, but the table is not in this schema now: it was dropped later, or the file ran on another schema (search_path, database)",
			f.Name(), cover.ExecutedAt.UTC().Format("2006-01-02"))
		e.Fix = "find what dropped it; to create it again, run the " + entschema.Table + " statements of " + f.Name() + " by hand (" + RevisionTable + " already counts the file as applied)."
	}
	return nil
}
