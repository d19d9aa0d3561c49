package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"

	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/migrations"
	"github.com/qsessions/qsessions/migrations/gen"
)

func init() {
	commands["migrate"] = command{
		summary: "apply Atlas migration directories (qsessions' own or an app's), show their status, or adopt an existing database",
		run:     group(migrateUsage, sub{"apply", migrateApply}, sub{"status", migrateStatus}, sub{"adopt", migrateAdopt}),
	}
}

const migrateUsage = `usage:
  qsessions migrate apply --db URL [--dir DIR] [--allow-dirty | --baseline V] [--revisions-schema S] [flags] [N]
  qsessions migrate status --db URL [--dir DIR] [--revisions-schema S]
  qsessions migrate adopt --db URL --dir NEWDIR [--users TABLE] [--dev-url URL] [--version V]

apply runs the pending files of an Atlas migration directory (at most N),
each in its own transaction, recording them in atlas_schema_revisions like
'atlas migrate apply', whose lock it shares. Then it checks that
qsessions_session and every column the generated Store needs exist, and
fails naming what is missing and how to fix it (--no-session-check skips
that, for directories that are not about sessions). status lists the
applied and pending versions and the session table's state without
changing anything.

adopt is for an app whose database was created by ent's Schema.Create and
that has no migration directory yet: it reads the database (and writes
nothing to it) and writes NEWDIR with two files, a baseline of the tables
as they are and a later file that creates qsessions_session, plus
atlas.sum, then prints the apply --baseline command that records the first
and runs the second.

URL is an Atlas URL: postgres://, mysql://, maria:// or sqlite://. Without
--dir, qsessions' own reference directory for the URL's dialect is used;
an app passes its own directory (a path, or file://path).
`

// migrateFlags are the flags apply and status share.
type migrateFlags struct {
	db, dir, revisionsSchema string
	noSessionCheck           bool
}

func (m *migrateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.db, "db", "", "database URL: postgres://, mysql://, maria:// or sqlite:// (required)")
	fs.StringVar(&m.dir, "dir", "", "migration directory (path or file://path); default: qsessions' reference directory for the URL's dialect")
	fs.StringVar(&m.revisionsSchema, "revisions-schema", "", "schema (MySQL: database) holding atlas_schema_revisions; default: the URL's, else atlas_schema_revisions")
	fs.BoolVar(&m.noSessionCheck, "no-session-check", false, "do not check that qsessions_session and its columns exist (for a directory that is not about sessions)")
}

// options are the migrations.Options the flags and the URL give.
func (m *migrateFlags) options(db *dburl.DB) migrations.Options {
	check := migrations.CheckAlways
	if m.noSessionCheck {
		check = migrations.CheckNever
	}
	return migrations.Options{Schema: db.Schema, URL: db.URL, RevisionsSchema: m.revisionsSchema, SessionCheck: check}
}

// open parses the flags' URL and directory; the caller closes the DB.
func (m *migrateFlags) open() (*dburl.DB, migrate.Dir, error) {
	if m.db == "" {
		return nil, nil, errors.New("--db is required (an Atlas URL such as postgres://user@host/db?search_path=public)")
	}
	db, err := dburl.Open(m.db)
	if err != nil {
		return nil, nil, err
	}
	dir, err := openMigrationDir(m.dir, db.Dialect)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, dir, nil
}

// openMigrationDir opens --dir, or the embedded reference directory of
// dialect when it is empty.
func openMigrationDir(path, dialect string) (migrate.Dir, error) {
	if path == "" {
		return migrations.Dir(dialect)
	}
	if strings.Contains(path, "://") {
		u, err := url.Parse(path)
		if err != nil {
			return nil, fmt.Errorf("--dir %q: %w", path, err)
		}
		if u.Scheme != "file" {
			return nil, fmt.Errorf("--dir %q: only local directories (a path or file://path) are supported", path)
		}
		path = u.Host + u.Path
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("migration directory: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("migration directory %s is not a directory", path)
	}
	return migrate.NewLocalDir(path)
}

func migrateApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions migrate apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var m migrateFlags
	m.register(fs)
	allowDirty := fs.Bool("allow-dirty", false, "allow the first apply on a database that already has tables")
	baseline := fs.String("baseline", "", "on the first apply, mark the files up to this version as applied without running them")
	lockTimeout := fs.Duration("lock-timeout", migrations.DefaultLockTimeout, "how long to wait for another migration run's lock")
	txMode := fs.String("tx-mode", string(migrations.TxModeFile), "transaction mode: file, all or none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	amount := 0
	switch fs.NArg() {
	case 0:
	case 1:
		n, err := strconv.Atoi(fs.Arg(0))
		if err != nil || n < 1 {
			return fmt.Errorf("invalid amount %q: give a positive number of files, or none for all", fs.Arg(0))
		}
		amount = n
	default:
		return fmt.Errorf("unexpected arguments %q (flags go before the amount)", fs.Args()[1:])
	}
	db, dir, err := m.open()
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	opts := m.options(db)
	opts.AllowDirty = *allowDirty
	opts.Baseline = *baseline
	opts.Amount = amount
	opts.TxMode = migrations.TxMode(*txMode)
	opts.LockTimeout = *lockTimeout
	opts.Log = stdout
	res, err := migrations.Apply(ctx, db.SQL, db.Dialect, dir, opts)
	if err != nil {
		return err
	}
	if len(res.Applied) > 0 {
		fmt.Fprintf(stdout, "\napplied %d file(s) to %s in %s; now at version %s\n", len(res.Applied), db.URL, time.Since(start).Round(time.Millisecond), res.To)
	}
	return nil
}

func migrateStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions migrate status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var m migrateFlags
	m.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	db, dir, err := m.open()
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := migrations.ReadStatus(ctx, db.SQL, db.Dialect, dir, m.options(db))
	if err != nil {
		return err
	}
	return st.Write(stdout)
}

func migrateAdopt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions migrate adopt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rawURL := fs.String("db", "", "the app's database URL: postgres://, mysql://, maria:// or sqlite:// (required; only read)")
	path := fs.String("dir", "", "the new migration directory to write (required; created if missing, must hold no migration files)")
	users := fs.String("users", "users", "the table of the app's user type, which qsessions_session.user_id references")
	devURL := fs.String("dev-url", "", "a clean dev database (an empty Postgres schema or MySQL database) to replay the new directory into and compare; SQLite needs none")
	version := fs.String("version", "", "the baseline's version (default: the current UTC time, as atlas migrate diff names files)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case *rawURL == "":
		return errors.New("--db is required (the app's database, only read)")
	case *path == "":
		return errors.New("--dir is required (the new migration directory to write)")
	}
	dirPath := strings.TrimPrefix(*path, "file://")
	db, err := dburl.Open(*rawURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SQL.PingContext(ctx); err != nil {
		return fmt.Errorf("connecting to %s: %w", db.URL, err)
	}
	r, err := gen.AdoptDatabase(ctx, db, dirPath, gen.AdoptOptions{UserTable: *users, Version: *version, DevURL: *devURL})
	if r != nil && r.Baseline != "" {
		writeAdoption(stdout, db, dirPath, r)
	}
	if err != nil {
		if r != nil && r.Baseline != "" {
			return fmt.Errorf("%w\n(the files were written to %s; remove them after fixing the cause, then run adopt again)", err, dirPath)
		}
		return err
	}
	writeAdoptionNext(stdout, db, dirPath, r)
	return nil
}

// writeAdoption reports the files adopt wrote.
func writeAdoption(w io.Writer, db *dburl.DB, dir string, r *gen.AdoptResult) {
	fmt.Fprintf(w, "Read schema %q of %s (read only, nothing was written to it): %d table(s): %s.\n",
		r.Schema, db.URL, len(r.Tables), strings.Join(r.Tables, ", "))
	fmt.Fprintf(w, "Wrote %s: the baseline, those tables as they are.\n", filepath.Join(dir, r.Baseline))
	if r.AddSessions != "" {
		fmt.Fprintf(w, "Wrote %s: creates qsessions_session, its indexes and its foreign key to %s(%s) ON DELETE CASCADE.\n",
			filepath.Join(dir, r.AddSessions), r.UserTable, r.UserKey)
	} else {
		fmt.Fprintf(w, "The database has qsessions_session already: the baseline includes it, and no other file is needed.\n")
	}
	fmt.Fprintf(w, "Wrote %s.\n", filepath.Join(dir, migrate.HashFileName))
}

// writeAdoptionNext prints how the directory was verified and the next
// command.
func writeAdoptionNext(w io.Writer, db *dburl.DB, dir string, r *gen.AdoptResult) {
	if r.Verified != "" {
		fmt.Fprintf(w, "Verified: %s, the baseline gives these tables exactly and the directory as a whole gives qsessions_session.\n", r.Verified)
	} else {
		fmt.Fprintf(w, "Not verified: pass --dev-url with an empty schema or database to replay the directory and compare it with this database.\n")
	}
	what := "record the baseline without running it and create the session table"
	if r.AddSessions == "" {
		what = "record the baseline without running it"
	}
	fmt.Fprintf(w, "\nNext, %s:\n\n  qsessions migrate apply --db '%s' --dir %s --baseline %s\n", what, db.URL, dir, r.BaselineVersion)
	if strings.Contains(db.URL, ":xxxxx@") {
		fmt.Fprintf(w, "\n(with your password in place of xxxxx)\n")
	}
	fmt.Fprintf(w, "\nor, with the atlas CLI: atlas migrate apply --url URL --dir file://%s --baseline %s\n", dir, r.BaselineVersion)
}
