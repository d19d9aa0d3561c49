package migrations

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"

	"github.com/qsessions/qsessions/dburl"
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
}

// OK reports whether nothing is pending and nothing failed. Cost: none.
func (s *Status) OK() bool {
	return len(s.Pending) == 0 && len(s.OutOfOrder) == 0 && s.Error == ""
}

// ReadStatus compares db with dir without changing either: no lock, no
// revision table created. Options.RevisionsSchema is honoured; the other
// options are ignored. Cost: dir's validation, two inspections and one
// SELECT.
func ReadStatus(ctx context.Context, db *dburl.DB, dir migrate.Dir, opts Options) (*Status, error) {
	a, err := prepare(ctx, db, dir, Options{RevisionsSchema: opts.RevisionsSchema})
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
		return st, nil
	}
	rrw := a.revisions(db.SQL)
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
	return st, nil
}

// Write prints the status the way `atlas migrate status` does, followed
// by the applied and pending versions. Cost: formatting and one write.
func (s *Status) Write(w io.Writer) error {
	var b strings.Builder
	state := "OK"
	if !s.OK() {
		state = "PENDING"
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
	_, err := io.WriteString(w, b.String())
	return err
}
