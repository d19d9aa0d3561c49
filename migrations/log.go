package migrations

import (
	"fmt"
	"github.com/qsessions/qsessions/internal/text"
	"io"
	"time"

	"ariga.io/atlas/sql/migrate"
)

// textLogger writes the Executor's progress like the CLI's default output.
type textLogger struct {
	w            io.Writer
	start, fileT time.Time
	files, stmts int
}

func (l *textLogger) printf(format string, args ...any) {
	if l.w != nil {
		fmt.Fprintf(l.w, format, args...)
	}
}

// Log implements migrate.Logger.
func (l *textLogger) Log(e migrate.LogEntry) {
	switch e := e.(type) {
	case migrate.LogExecution:
		l.start = time.Now()
		switch {
		case len(e.Files) == 0:
			l.printf("No migration files to execute\n")
		case e.From == "":
			l.printf("Migrating to version %s (%s in total):\n", e.To, text.Count(len(e.Files), "migration"))
		default:
			l.printf("Migrating to version %s from %s (%s in total):\n", e.To, e.From, text.Count(len(e.Files), "migration"))
		}
	case migrate.LogFile:
		l.fileT = time.Now()
		if e.Skip > 0 {
			l.printf("\n  -- migrating version %s (continuing after statement %d)\n", e.File.Version(), e.Skip)
		} else {
			l.printf("\n  -- migrating version %s\n", e.File.Version())
		}
	case migrate.LogStmt:
		l.stmts++
		l.printf("    -> %s\n", e.SQL)
	case migrate.LogError:
		l.printf("    -- error: %v\n", e.Error)
	case migrate.LogDone:
		if l.files > 0 {
			l.printf("\n  -------------------------\n  -- %s\n  -- %s\n  -- %s\n",
				round(time.Since(l.start)), text.Count(l.files, "migration"), text.Count(l.stmts, "sql statement"))
		}
	}
}

// fileDone reports that a file was applied.
func (l *textLogger) fileDone() {
	l.files++
	l.printf("  -- ok (%s)\n", round(time.Since(l.fileT)))
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
