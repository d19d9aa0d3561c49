package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"

	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/migrations"
)

func init() {
	commands["migrate"] = command{
		summary: "apply Atlas migration directories (qsessions' own or an app's) or show their status",
		run:     group(migrateUsage, sub{"apply", migrateApply}, sub{"status", migrateStatus}),
	}
}

const migrateUsage = `usage:
  qsessions migrate apply --db URL [--dir DIR] [--allow-dirty] [--revisions-schema S] [flags] [N]
  qsessions migrate status --db URL [--dir DIR] [--revisions-schema S]

apply runs the pending files of an Atlas migration directory (at most N),
each in its own transaction, recording them in atlas_schema_revisions like
'atlas migrate apply', whose lock it shares. status lists the applied and
pending versions without changing anything.

URL is an Atlas URL: postgres://, mysql://, maria:// or sqlite://. Without
--dir, qsessions' own reference directory for the URL's dialect is used;
an app passes its own directory (a path, or file://path).
`

// migrateFlags are the flags apply and status share.
type migrateFlags struct {
	db, dir, revisionsSchema string
}

func (m *migrateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.db, "db", "", "database URL: postgres://, mysql://, maria:// or sqlite:// (required)")
	fs.StringVar(&m.dir, "dir", "", "migration directory (path or file://path); default: qsessions' reference directory for the URL's dialect")
	fs.StringVar(&m.revisionsSchema, "revisions-schema", "", "schema (MySQL: database) holding atlas_schema_revisions; default: the URL's, else atlas_schema_revisions")
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
	res, err := migrations.Apply(ctx, db, dir, migrations.Options{
		RevisionsSchema: m.revisionsSchema,
		AllowDirty:      *allowDirty,
		Baseline:        *baseline,
		Amount:          amount,
		TxMode:          migrations.TxMode(*txMode),
		LockTimeout:     *lockTimeout,
		Log:             stdout,
	})
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
	st, err := migrations.ReadStatus(ctx, db, dir, migrations.Options{RevisionsSchema: m.revisionsSchema})
	if err != nil {
		return err
	}
	return st.Write(stdout)
}
