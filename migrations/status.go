package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"

	"github.com/qsessions/qsessions/entschema"
)

// Status is a database's migration state against a directory, what
// `atlas migrate status` reports.
type Status struct {
	// Applied are the revision rows, oldest first (a failed or partly
	// applied file included).
	Applied []*migrate.Revision
	// Pending are the files still to apply, a partly applied one first.
	Pending []migrate.File
	// OutOfOrder are files with versions below the latest applied one that
	// were never applied; Apply refuses to run while there are any.
	OutOfOrder []migrate.File
	// Current is the latest applied version, "" when none.
	Current string
	// Error and ErrorStmt are the latest revision's error, if it failed.
	Error, ErrorStmt string
	// SessionTable is the session check's verdict (Options.SessionCheck):
	// SessionNotChecked, SessionOK, SessionPending or SessionMissing.
	SessionTable string
	// SessionErr says, for SessionPending and SessionMissing, what is
	// missing, why, and how to fix it.
	SessionErr *SessionTableError
}

// The verdicts of Status.SessionTable.
const (
	// SessionNotChecked: the check was off, or the directory does not
	// mention the table (CheckAuto).
	SessionNotChecked = ""
	// SessionOK: the table and every column the Store needs exist.
	SessionOK = "ok"
	// SessionPending: the table is missing, and a pending file creates it.
	SessionPending = "pending"
	// SessionMissing: the table or some columns are missing, and applying
	// the pending files would not create them.
	SessionMissing = "missing"
)

// OK reports whether nothing is pending, nothing failed and the session
// table is not missing. Cost: none.
func (s *Status) OK() bool {
	return len(s.Pending) == 0 && len(s.OutOfOrder) == 0 && s.Error == "" && s.SessionTable != SessionMissing
}

// ReadStatus compares db with dir without changing either: no lock, no
// revision table created. dialectName and Options.Schema are Apply's;
// Options.RevisionsSchema, URL and SessionCheck are honoured, the other
// options ignored. Cost: dir's validation, two inspections, one SELECT
// and the session check's catalog query.
func ReadStatus(ctx context.Context, db *sql.DB, dialectName string, dir migrate.Dir, opts Options) (*Status, error) {
	a, err := prepare(ctx, db, dialectName, dir, Options{
		Schema: opts.Schema, URL: opts.URL, RevisionsSchema: opts.RevisionsSchema, SessionCheck: opts.SessionCheck,
	})
	if err != nil {
		return nil, err
	}
	if err := a.checkRevisionsSchema(ctx); err != nil {
		return nil, err
	}
	st := &Status{}
	s, err := a.drv.InspectSchema(ctx, a.revSchema, &schema.InspectOptions{Tables: []string{RevisionTable}, Mode: schema.InspectTables})
	exists := err == nil
	switch {
	case schema.IsNotExistError(err):
	case err != nil:
		return nil, fmt.Errorf("migrations: inspecting schema %q: %w", a.revSchema, err)
	default:
		_, exists = s.Table(RevisionTable)
	}
	if !exists { // no revision table: everything is pending
		if st.Pending, err = migrate.FilesFromLastCheckpoint(dir); err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		return st, a.statusSessions(ctx, st)
	}
	rrw := a.revisions(db)
	if st.Applied, err = rrw.ReadRevisions(ctx); err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if n := len(st.Applied); n > 0 {
		last := st.Applied[n-1]
		st.Current = last.Version
		st.Error, st.ErrorStmt = last.Error, last.ErrorStmt
	}
	// A status never refuses a dirty database: it only reports.
	ex, err := migrate.NewExecutor(a.drv, dir, rrw, migrate.WithAllowDirty(true))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	st.Pending, err = ex.Pending(ctx)
	var nl *migrate.HistoryNonLinearError
	switch {
	case errors.Is(err, migrate.ErrNoPendingFiles):
		st.Pending = nil
	case errors.As(err, &nl):
		st.Pending, st.OutOfOrder = nl.Pending, nl.OutOfOrder
	case err != nil:
		return nil, a.explain(err)
	}
	return st, a.statusSessions(ctx, st)
}

// statusSessions runs the session check for a status.
func (a *applier) statusSessions(ctx context.Context, st *Status) error {
	if ok, err := a.checking(); err != nil || !ok {
		return err
	}
	e, err := a.tableCheck(ctx)
	switch {
	case err != nil:
		return err
	case e == nil:
		st.SessionTable = SessionOK
		return nil
	}
	if err := a.explainMissing(e, st.Applied); err != nil {
		return err
	}
	st.SessionTable, st.SessionErr = SessionMissing, e
	if e.Pending {
		st.SessionTable = SessionPending
	}
	return nil
}

// Write prints the status the way `atlas migrate status` does, followed
// by the applied and pending versions. Cost: formatting and one write.
func (s *Status) Write(w io.Writer) error {
	var b strings.Builder
	state := "OK"
	switch {
	case len(s.Pending) > 0 || len(s.OutOfOrder) > 0 || s.Error != "":
		state = "PENDING"
	case s.SessionTable == SessionMissing:
		state = "SESSION TABLE MISSING"
	}
	fmt.Fprintf(&b, "Migration Status: %s\n", state)
	cur := s.Current
	if cur == "" {
		cur = "No migration applied yet"
	}
	next := "Already at latest version"
	if len(s.Pending) > 0 {
		next = s.Pending[0].Version()
	}
	executed := 0
	for _, r := range s.Applied {
		if r.Applied == r.Total && r.Error == "" {
			executed++
		}
	}
	fmt.Fprintf(&b, "  -- Current Version: %s\n", cur)
	fmt.Fprintf(&b, "  -- Next Version:    %s\n", next)
	fmt.Fprintf(&b, "  -- Executed Files:  %d\n", executed)
	fmt.Fprintf(&b, "  -- Pending Files:   %d\n", len(s.Pending))
	switch s.SessionTable {
	case SessionOK:
		fmt.Fprintf(&b, "  -- Session Table:   present (%s)\n", s.sessionTableName())
	case SessionPending:
		fmt.Fprintf(&b, "  -- Session Table:   missing; pending file %s creates it\n", s.SessionErr.Creator.Name())
	case SessionMissing:
		fmt.Fprintf(&b, "  -- Session Table:   MISSING (%s; see below)\n", s.sessionTableName())
	}
	if s.Error != "" {
		fmt.Fprintf(&b, "\nLast migration attempt had errors:\n  -- SQL:   %s\n  -- ERROR: %s\n", s.ErrorStmt, s.Error)
	}
	if len(s.Applied) > 0 {
		b.WriteString("\nApplied:\n")
		for _, r := range s.Applied {
			note := ""
			switch {
			case r.Type == migrate.RevisionTypeBaseline:
				note = " (baseline)"
			case r.Error != "":
				note = fmt.Sprintf(" (failed after %d of %d statements)", r.Applied, r.Total)
			case r.Applied != r.Total:
				note = fmt.Sprintf(" (%d of %d statements)", r.Applied, r.Total)
			}
			fmt.Fprintf(&b, "  %s  %s  %s%s\n", r.Version, r.Description, r.ExecutedAt.UTC().Format(time.RFC3339), note)
		}
	}
	if len(s.Pending) > 0 {
		b.WriteString("\nPending:\n")
		for _, f := range s.Pending {
			fmt.Fprintf(&b, "  %s  %s\n", f.Version(), f.Desc())
		}
	}
	if len(s.OutOfOrder) > 0 {
		b.WriteString("\nOut of order (never applied, version below the current one):\n")
		for _, f := range s.OutOfOrder {
			fmt.Fprintf(&b, "  %s  %s\n", f.Version(), f.Desc())
		}
	}
	if s.SessionTable == SessionMissing {
		fmt.Fprintf(&b, "\nSession table:\n  %s\n", strings.ReplaceAll(strings.TrimPrefix(s.SessionErr.Error(), "migrations: "), "\n", "\n  "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (s *Status) sessionTableName() string {
	if s.SessionErr != nil {
		return s.SessionErr.Table
	}
	return entschema.Table
}
