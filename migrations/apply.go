package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"net/url"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/mysql"
	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlite"
	"entgo.io/ent/dialect"
)

// LockName is the name of the lock Apply holds while it runs: the atlas
// CLI's, so the two never apply at the same time on one database
// (Postgres: an advisory lock; MySQL: GET_LOCK; SQLite: a lock file in
// the temp directory).
const LockName = "atlas_migrate_execute"

// DefaultLockTimeout is how long Apply waits for the lock by default, the
// CLI's default.
const DefaultLockTimeout = 10 * time.Second

// TxMode says how Apply wraps migration files in transactions, as the
// CLI's --tx-mode flag does.
type TxMode string

// Transaction modes. A file may also set its own with an
// "-- atlas:txmode none" (or file) directive.
const (
	// TxModeFile runs each file in a transaction of its own (the default).
	// Where DDL is transactional (Postgres, SQLite) a failing file leaves
	// nothing behind, not even a revision row; MySQL and MariaDB commit
	// each DDL statement by themselves, so there the revision row records
	// how far the file got and its error.
	TxModeFile TxMode = "file"
	// TxModeAll runs all pending files in one transaction.
	TxModeAll TxMode = "all"
	// TxModeNone runs statements without a transaction.
	TxModeNone TxMode = "none"
)

// Errors Apply and ReadStatus wrap; test them with errors.Is.
var (
	// ErrLocked reports that another apply (this package's or the atlas
	// CLI's) held the lock for longer than Options.LockTimeout.
	ErrLocked = errors.New("another migration run holds the database lock " + LockName)
	// ErrNotClean reports a first apply on a database that already holds
	// tables; Options.AllowDirty or Options.Baseline is required.
	ErrNotClean = errors.New("the database is not clean")
	// ErrChecksum reports a migration directory that does not match its
	// atlas.sum: a file was edited, added or removed after hashing.
	ErrChecksum = errors.New("the migration directory does not match its atlas.sum")
)

// Options tune Apply and ReadStatus; the zero value is the CLI's defaults
// for a URL that names no schema.
type Options struct {
	// Schema is the schema the connection works in, what the atlas CLI's
	// URL says: the first entry of search_path (Postgres), the database
	// (MySQL); SQLite always works in "main". "" means the URL names none:
	// then, as with the CLI, the revision table lives in
	// DefaultRevisionsSchema and the clean-database check of a first apply
	// looks at every schema. An app that also runs the atlas CLI (or
	// `qsessions migrate`) on the same database gives the schema its URL
	// names, so both keep one revision table: dburl.DB.Schema is that
	// value for a URL opened with package dburl.
	Schema string
	// URL is the database's URL without its password (dburl.DB.URL), used
	// in messages and, for an in-memory SQLite database ("mode=memory"),
	// to name the lock as the CLI does. Optional.
	URL string
	// RevisionsSchema is the schema (MySQL: database) that holds the
	// revision table, the CLI's --revisions-schema. "" means the CLI's
	// rule: Schema (SQLite: main) or, when that is "",
	// DefaultRevisionsSchema.
	RevisionsSchema string
	// AllowDirty lets the first apply run on a database that already holds
	// tables (the CLI's --allow-dirty).
	AllowDirty bool
	// Baseline marks the files up to and including this version as applied
	// on the first apply without running them (the CLI's --baseline).
	Baseline string
	// Amount is the most files to apply; 0 applies all pending ones.
	Amount int
	// TxMode defaults to TxModeFile.
	TxMode TxMode
	// LockTimeout is how long to wait for the lock; 0 means
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// OperatorVersion is stored in each revision row (the CLI stores
	// "Atlas CLI vX.Y.Z"); "" means "qsessions " and the module version.
	OperatorVersion string
	// Log, when set, receives a progress report like the CLI's.
	Log io.Writer
	// SessionCheck says whether Apply and ReadStatus verify that
	// qsessions_session and every column the generated Store needs exist;
	// the zero value, CheckAuto, checks directories that mention the table.
	// See SessionCheck.
	SessionCheck SessionCheck
}

// Result reports what Apply did.
type Result struct {
	// From is the latest applied version before Apply ("" if none); To the
	// latest after it.
	From, To string
	// Applied are the names of the files applied, in order.
	Applied []string
	// Statements counts the statements of the applied files.
	Statements int
}

// Apply applies the pending files of dir to db the way `atlas migrate
// apply` does: it validates dir against its atlas.sum, takes the CLI's
// lock, keeps the CLI's revision table (created if missing, in the CLI's
// schema), and runs each pending file through Atlas' Executor in its own
// transaction (Options.TxMode). dir may be any Atlas directory: Dir's
// embedded reference ones or an app's own (migrate.NewLocalDir).
//
// db is any pool; dialectName is ent's dialect name (dialect.Postgres,
// dialect.MySQL, dialect.SQLite; "postgresql", "maria", "mariadb" and
// "sqlite" are accepted too). Package migrations links no database
// driver: db comes from the app's own. Options.Schema says what the CLI's
// URL says about the schema.
//
// Unless Options.SessionCheck says otherwise, Apply then verifies that
// qsessions_session and the columns the generated Store needs exist, and
// fails naming what is missing and how to fix it (the error wraps
// backend.ErrNoTable). It refuses a baseline (Options.Baseline) that would
// mark the file creating qsessions_session as applied on a database that
// lacks the table, before it writes anything: that baseline would never
// create it.
//
// On an error the Result still says which files were applied before it
// (it is nil when nothing started). A database with nothing pending costs
// the lock, about ten small catalog queries and the session check's one
// (with Options.Baseline on a first apply, one inspection and one more);
// each applied file costs its statements plus one revision upsert per
// statement and two more.
func Apply(ctx context.Context, db *sql.DB, dialectName string, dir migrate.Dir, opts Options) (*Result, error) {
	a, err := prepare(ctx, db, dialectName, dir, opts)
	if err != nil {
		return nil, err
	}
	unlock, err := a.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := a.checkRevisionsSchema(ctx); err != nil {
		return nil, err
	}
	if err := a.checkBaseline(ctx); err != nil {
		return nil, err
	}
	if err := ensureRevisionTable(ctx, a.db, a.drv, a.dialect, a.opts.Schema, a.revSchema); err != nil {
		return nil, err
	}
	res, err := a.apply(ctx)
	if err != nil {
		return res, err
	}
	if err := a.checkSessions(ctx, res); err != nil {
		return res, err
	}
	return res, nil
}

// applier holds what one Apply or ReadStatus call works with.
type applier struct {
	db        *sql.DB
	dialect   string // ent's name
	dir       migrate.Dir
	opts      Options
	drv       migrate.Driver // on the pool
	revSchema string
	log       *textLogger
}

// prepare checks its arguments and the directory, connects and opens an
// Atlas driver on the pool.
func prepare(ctx context.Context, db *sql.DB, dialectName string, dir migrate.Dir, opts Options) (*applier, error) {
	if db == nil {
		return nil, errors.New("migrations: no database given")
	}
	if dir == nil {
		return nil, errors.New("migrations: no migration directory given")
	}
	d, err := entDialect(dialectName)
	if err != nil {
		return nil, err
	}
	switch opts.TxMode {
	case "":
		opts.TxMode = TxModeFile
	case TxModeFile, TxModeAll, TxModeNone:
	default:
		return nil, fmt.Errorf("migrations: unknown transaction mode %q (want file, all or none)", opts.TxMode)
	}
	switch opts.SessionCheck {
	case CheckAuto, CheckAlways, CheckNever:
	default:
		return nil, fmt.Errorf("migrations: unknown SessionCheck %d (want CheckAuto, CheckAlways or CheckNever)", opts.SessionCheck)
	}
	if opts.AllowDirty && opts.Baseline != "" {
		return nil, errors.New("migrations: AllowDirty (--allow-dirty) and Baseline (--baseline) exclude each other")
	}
	if opts.Amount < 0 {
		return nil, fmt.Errorf("migrations: cannot apply %d files", opts.Amount)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.OperatorVersion == "" {
		opts.OperatorVersion = operatorVersion()
	}
	if d == dialect.SQLite {
		opts.Schema = "main"
	}
	if err := validate(dir); err != nil {
		return nil, err
	}
	a := &applier{db: db, dialect: d, dir: dir, opts: opts, log: &textLogger{w: opts.Log}}
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("migrations: connecting to %s: %w", a.where(), err)
	}
	if a.drv, err = openDriver(d, db, opts.Schema); err != nil {
		return nil, fmt.Errorf("migrations: %s: %w", a.where(), err)
	}
	if a.revSchema, err = revisionsSchema(d, opts.Schema, opts.RevisionsSchema); err != nil {
		return nil, err
	}
	return a, nil
}

// entDialect returns ent's name of a dialect given by ent's or Atlas' name.
func entDialect(name string) (string, error) {
	switch name {
	case dialect.Postgres, "postgresql":
		return dialect.Postgres, nil
	case dialect.MySQL, "maria", "mariadb":
		return dialect.MySQL, nil
	case dialect.SQLite, "sqlite":
		return dialect.SQLite, nil
	}
	return "", fmt.Errorf("migrations: unsupported dialect %q (want %s, %s or %s)", name, dialect.Postgres, dialect.MySQL, dialect.SQLite)
}

// where names the database in messages.
func (a *applier) where() string {
	if a.opts.URL != "" {
		return a.opts.URL
	}
	return "the " + a.dialect + " database"
}

// validate checks dir against its atlas.sum and explains a mismatch.
func validate(dir migrate.Dir) error {
	name := "the migration directory"
	if p, ok := dir.(interface{ Path() string }); ok && p.Path() != "" {
		name = "migration directory " + p.Path()
	}
	err := migrate.Validate(dir)
	if err == nil {
		// Two files of one version would make Atlas' executor panic.
		files, ferr := dir.Files()
		if ferr != nil {
			return fmt.Errorf("migrations: reading %s: %w", name, ferr)
		}
		seen := map[string]string{}
		for _, f := range files {
			if other, dup := seen[f.Version()]; dup {
				return fmt.Errorf("migrations: %s: %s and %s have the same version %s; give one a later version (and re-hash)",
					name, other, f.Name(), f.Version())
			}
			seen[f.Version()] = f.Name()
		}
		return nil
	}
	var cerr *migrate.ChecksumError
	switch {
	case errors.As(err, &cerr):
		return fmt.Errorf("migrations: %w: %s: file %s was %s since atlas.sum was written (atlas.sum line %d); "+
			"nothing was applied. Restore the file, or if the change is intended and not yet applied anywhere, "+
			"re-hash with `atlas migrate hash` (or regenerate the directory)", ErrChecksum, name, cerr.File, cerr.Reason, cerr.Line)
	case errors.Is(err, migrate.ErrChecksumNotFound):
		return fmt.Errorf("migrations: %w: %s has migration files but no atlas.sum; create it with `atlas migrate hash`", ErrChecksum, name)
	case errors.Is(err, migrate.ErrChecksumFormat), errors.Is(err, migrate.ErrChecksumMismatch):
		return fmt.Errorf("migrations: %w: %s: atlas.sum is malformed or was edited (%v)", ErrChecksum, name, err)
	}
	return fmt.Errorf("migrations: reading %s: %w", name, err)
}

// revisionsSchema applies the CLI's rule for where the revision table is.
func revisionsSchema(d, connected, flag string) (string, error) {
	if d == dialect.SQLite {
		if flag != "" && flag != "main" {
			return "", fmt.Errorf("migrations: SQLite keeps the revision table in the main schema, not %q", flag)
		}
		return "main", nil
	}
	switch {
	case flag != "":
		return flag, nil
	case connected != "":
		return connected, nil
	default:
		return DefaultRevisionsSchema, nil
	}
}

// checkRevisionsSchema refuses, as the CLI does, a URL bound to a schema
// without a revision table while the old default schema has one: it is
// not clear which one is meant.
func (a *applier) checkRevisionsSchema(ctx context.Context) error {
	if a.dialect == dialect.SQLite || a.opts.Schema == "" || a.opts.RevisionsSchema != "" {
		return nil
	}
	has := func(name string) (bool, error) {
		s, err := a.drv.InspectSchema(ctx, name, &schema.InspectOptions{Tables: []string{RevisionTable}, Mode: schema.InspectTables})
		switch {
		case schema.IsNotExistError(err):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("migrations: inspecting schema %q: %w", name, err)
		}
		_, ok := s.Table(RevisionTable)
		return ok, nil
	}
	if ok, err := has(a.opts.Schema); err != nil || ok {
		return err
	}
	if a.opts.Schema == DefaultRevisionsSchema {
		return nil
	}
	if ok, err := has(DefaultRevisionsSchema); err != nil || !ok {
		return err
	}
	return fmt.Errorf("migrations: ambiguous revision table: schema %q has no %s but schema %q has one; "+
		"set RevisionsSchema (--revisions-schema) to %q to keep using it, or to %q to start a new one",
		a.opts.Schema, RevisionTable, DefaultRevisionsSchema, DefaultRevisionsSchema, a.opts.Schema)
}

// lock takes the CLI's lock through the Atlas driver's schema.Locker.
func (a *applier) lock(ctx context.Context) (func(), error) {
	var (
		unlock schema.UnlockFunc
		err    error
	)
	if a.dialect == dialect.SQLite {
		unlock, err = a.lockSQLite(ctx, sqliteLockName(a.opts.URL))
	} else {
		unlock, err = a.drv.Lock(ctx, LockName, a.opts.LockTimeout)
	}
	switch {
	case errors.Is(err, schema.ErrLocked):
		return nil, fmt.Errorf("migrations: %w (waited %s); try again when it is done", ErrLocked, a.opts.LockTimeout)
	case err != nil:
		return nil, fmt.Errorf("migrations: acquiring the lock %s: %w", LockName, err)
	}
	return func() { _ = unlock() }, nil
}

// lockSQLite takes the SQLite driver's lock file. The driver checks for
// the file and then creates it, so two appliers of one process could both
// take it: they are serialised in-process first. Nor does the driver wait
// for a taken lock; this waits for it like the server-side locks do.
func (a *applier) lockSQLite(ctx context.Context, name string) (schema.UnlockFunc, error) {
	deadline := time.Now().Add(a.opts.LockTimeout)
	release, err := processLock(ctx, name, a.opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	for {
		unlock, err := a.drv.Lock(ctx, name, a.opts.LockTimeout)
		switch {
		case err == nil:
			return func() error {
				defer release()
				return unlock()
			}, nil
		case !strings.Contains(err.Error(), "already taken"):
			release()
			return nil, err
		case time.Now().After(deadline):
			release()
			return nil, fmt.Errorf("%w: %v", schema.ErrLocked, err)
		}
		select {
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// processLocks serialise the SQLite appliers of this process by lock name.
var (
	processMu    sync.Mutex
	processLocks = map[string]chan struct{}{}
)

// processLock takes the process-wide lock name, waiting up to timeout.
func processLock(ctx context.Context, name string, timeout time.Duration) (func(), error) {
	processMu.Lock()
	ch := processLocks[name]
	if ch == nil {
		ch = make(chan struct{}, 1)
		processLocks[name] = ch
	}
	processMu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-t.C:
		return nil, schema.ErrLocked
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sqliteLockName is the lock name the CLI's SQLite driver uses for a URL:
// the plain name for a file, the name and a checksum of the path for a
// "file:" (in-memory) DSN.
func sqliteLockName(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Query().Get("mode") != "memory" {
		return LockName
	}
	p := filepath.Join(u.Host, u.Path)
	return fmt.Sprintf("%s_%x", LockName, adler32.Checksum([]byte(p)))
}

// openDriver opens the Atlas driver of dialect d on q. For a Postgres
// connection bound to a schema it adds what the CLI's URL-opened driver
// knows: which schema is the connected one.
func openDriver(d string, q schema.ExecQuerier, connected string) (migrate.Driver, error) {
	switch d {
	case dialect.Postgres:
		drv, err := postgres.Open(q)
		if err != nil || connected == "" {
			return drv, err
		}
		return &boundPostgres{Driver: drv, schema: connected}, nil
	case dialect.MySQL:
		return mysql.Open(q)
	case dialect.SQLite:
		return sqlite.Open(q)
	}
	return nil, fmt.Errorf("unsupported dialect %q", d)
}

// boundPostgres is a Postgres driver that knows its connection is bound
// to one schema (search_path), so a clean-database check looks at that
// schema only, not at every schema of the database.
type boundPostgres struct {
	migrate.Driver
	schema string
}

// ScanStmts splits files with the Postgres driver's scanner.
func (d *boundPostgres) ScanStmts(input string) ([]*migrate.Stmt, error) {
	if s, ok := d.Driver.(migrate.StmtScanner); ok {
		return s.ScanStmts(input)
	}
	return migrate.NewLocalFile("", []byte(input)).StmtDecls()
}

// CheckClean reports a NotCleanError when the connected schema holds a
// table other than the revision table.
func (d *boundPostgres) CheckClean(ctx context.Context, rev *migrate.TableIdent) error {
	s, err := d.InspectSchema(ctx, d.schema, nil)
	switch {
	case schema.IsNotExistError(err):
		return nil
	case err != nil:
		return err
	}
	for _, t := range s.Tables {
		if rev != nil && t.Name == rev.Name && (rev.Schema == "" || rev.Schema == s.Name) {
			continue
		}
		return &migrate.NotCleanError{State: schema.NewRealm(s), Reason: fmt.Sprintf("found table %q in schema %q", t.Name, s.Name)}
	}
	return nil
}

func operatorVersion() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == "github.com/qsessions/qsessions" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/qsessions/qsessions" {
				v = d.Version
			}
		}
	}
	return "qsessions " + v
}

func (a *applier) executorOptions() []migrate.ExecutorOption {
	opts := []migrate.ExecutorOption{
		migrate.WithOperatorVersion(a.opts.OperatorVersion),
		migrate.WithLogger(a.log),
	}
	if a.opts.AllowDirty {
		opts = append(opts, migrate.WithAllowDirty(true))
	}
	if a.opts.Baseline != "" {
		opts = append(opts, migrate.WithBaselineVersion(a.opts.Baseline))
	}
	return opts
}

func (a *applier) revisions(q schema.ExecQuerier) *revisions {
	return &revisions{q: q, dialect: a.dialect, schema: a.revSchema}
}

// apply finds the pending files and runs them, as `atlas migrate apply`.
func (a *applier) apply(ctx context.Context) (*Result, error) {
	rrw := a.revisions(a.db)
	ex, err := migrate.NewExecutor(a.drv, a.dir, rrw, a.executorOptions()...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	pending, err := ex.Pending(ctx)
	noPending := errors.Is(err, migrate.ErrNoPendingFiles)
	if err != nil && !noPending {
		return nil, a.explain(err)
	}
	applied, err := rrw.ReadRevisions(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	res := &Result{}
	if len(applied) > 0 {
		res.From = applied[len(applied)-1].Version
	}
	res.To = res.From
	if noPending {
		migrate.LogNoPendingFiles(a.log, applied)
		return res, nil
	}
	if n := a.opts.Amount; n > 0 && n < len(pending) {
		pending = pending[:n]
	}
	migrate.LogIntro(a.log, applied, pending)
	var tx *fileTx // open transaction, if any
	finish := func(err error) error {
		if tx == nil {
			return err
		}
		t := tx
		tx = nil
		if err != nil {
			return errors.Join(err, t.rollback())
		}
		return t.commit()
	}
	for _, f := range pending {
		mode, err := a.txModeFor(f)
		if err != nil {
			return res, errors.Join(err, finish(errors.New("rolled back")))
		}
		var (
			drv = a.drv
			q   schema.ExecQuerier
		)
		q = a.db
		if mode != TxModeNone {
			if tx == nil {
				if tx, err = a.begin(ctx); err != nil {
					return res, fmt.Errorf("migrations: starting a transaction for %s: %w", f.Name(), err)
				}
			}
			q = tx.tx
			if drv, err = openDriver(a.dialect, tx.tx, a.opts.Schema); err != nil {
				return res, errors.Join(fmt.Errorf("migrations: %w", err), finish(errors.New("rolled back")))
			}
		}
		fex, err := migrate.NewExecutor(drv, a.dir, a.revisions(q), a.executorOptions()...)
		if err != nil {
			return res, errors.Join(fmt.Errorf("migrations: %w", err), finish(errors.New("rolled back")))
		}
		n, _ := countStmts(drv, f)
		if err := fex.Execute(ctx, f); err != nil {
			err = a.fileError(f, mode, err)
			if mode == TxModeAll {
				res.Applied, res.Statements, res.To = nil, 0, res.From
			}
			return res, finish(err)
		}
		if mode == TxModeFile {
			if err := finish(nil); err != nil {
				return res, fmt.Errorf("migrations: committing %s: %w", f.Name(), err)
			}
		}
		a.log.fileDone()
		res.Applied = append(res.Applied, f.Name())
		res.Statements += n
		res.To = f.Version()
	}
	if err := finish(nil); err != nil {
		return &Result{From: res.From, To: res.From}, fmt.Errorf("migrations: committing: %w", err)
	}
	a.log.Log(migrate.LogDone{})
	return res, nil
}

func countStmts(drv migrate.Driver, f migrate.File) (int, error) {
	s, err := migrate.FileStmtDecls(drv, f)
	return len(s), err
}

// txModeFor honours a file's "-- atlas:txmode" directive like the CLI.
func (a *applier) txModeFor(f migrate.File) (TxMode, error) {
	l, ok := f.(*migrate.LocalFile)
	if !ok {
		return a.opts.TxMode, nil
	}
	ds := l.Directive("txmode")
	switch {
	case len(ds) == 0:
		return a.opts.TxMode, nil
	case len(ds) > 1:
		return "", fmt.Errorf("migrations: %s: more than one txmode directive: %q", f.Name(), ds)
	}
	switch m := TxMode(ds[0]); m {
	case a.opts.TxMode:
		return m, nil
	case TxModeNone, TxModeFile:
		if a.opts.TxMode == TxModeAll {
			return "", fmt.Errorf("migrations: %s sets txmode %q, which conflicts with transaction mode all", f.Name(), m)
		}
		return m, nil
	case TxModeAll:
		return "", fmt.Errorf("migrations: %s: txmode all is not allowed in a file; use file", f.Name())
	default:
		return "", fmt.Errorf("migrations: %s: unknown txmode %q", f.Name(), m)
	}
}

// fileTx is a transaction on a connection of its own.
type fileTx struct {
	conn     *sql.Conn
	tx       *sql.Tx
	commitFn func() error
	rollFn   func() error
}

func (t *fileTx) commit() error {
	defer t.conn.Close()
	return t.commitFn()
}

func (t *fileTx) rollback() error {
	defer t.conn.Close()
	return t.rollFn()
}

// begin opens a transaction. On SQLite, as the CLI's driver does, foreign
// keys are switched off on its connection for the transaction (so table
// rebuilds work) and any violation it introduced fails the commit.
func (a *applier) begin(ctx context.Context) (*fileTx, error) {
	conn, err := a.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	t := &fileTx{conn: conn}
	if a.dialect != dialect.SQLite {
		if t.tx, err = conn.BeginTx(ctx, nil); err != nil {
			conn.Close()
			return nil, err
		}
		t.commitFn, t.rollFn = t.tx.Commit, t.tx.Rollback
		return t, nil
	}
	var on sql.NullBool
	if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&on); err != nil {
		conn.Close()
		return nil, err
	}
	if on.Bool {
		if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = off"); err != nil {
			conn.Close()
			return nil, err
		}
	}
	if t.tx, err = conn.BeginTx(ctx, nil); err != nil {
		if on.Bool {
			_, _ = conn.ExecContext(ctx, "PRAGMA foreign_keys = on")
		}
		conn.Close()
		return nil, err
	}
	if t.commitFn, err = sqlite.CommitFunc(ctx, conn, t.tx, on.Bool); err != nil {
		_ = t.tx.Rollback()
		conn.Close()
		return nil, err
	}
	t.rollFn = sqlite.RollbackFunc(ctx, conn, t.tx, on.Bool)
	return t, nil
}

// explain turns the Executor's planning errors into messages that say
// what to do.
func (a *applier) explain(err error) error {
	var nc *migrate.NotCleanError
	var nl *migrate.HistoryNonLinearError
	var mm *migrate.MissingMigrationError
	switch {
	case errors.As(err, &nc):
		return fmt.Errorf("migrations: %w: %s, and no migration was applied to it yet. "+
			"To add this directory's tables next to the existing ones, apply with --allow-dirty (Options.AllowDirty); "+
			"if the database already has the schema of some version, use --baseline VERSION (Options.Baseline)", ErrNotClean, notCleanReason(nc))
	case errors.As(err, &nl):
		names := make([]string, len(nl.OutOfOrder))
		for i, f := range nl.OutOfOrder {
			names[i] = f.Name()
		}
		return fmt.Errorf("migrations: %s never applied, but their versions are below the latest applied one: "+
			"the history is not linear; give them versions after it", strings.Join(names, ", "))
	case errors.As(err, &mm):
		return fmt.Errorf("migrations: %v", mm)
	}
	return fmt.Errorf("migrations: %w", err)
}

// notCleanReason names the tables that make a database dirty; the
// drivers' own reason may name the revision table or only count tables.
func notCleanReason(nc *migrate.NotCleanError) string {
	if nc.State == nil {
		return nc.Reason
	}
	var found []string
	for _, s := range nc.State.Schemas {
		for _, t := range s.Tables {
			if t.Name != RevisionTable {
				found = append(found, fmt.Sprintf("%q", t.Name))
			}
		}
	}
	switch {
	case len(found) == 0:
		return nc.Reason
	case len(found) > 5:
		return fmt.Sprintf("found tables %s and %d more", strings.Join(found[:5], ", "), len(found)-5)
	case len(found) == 1:
		return "found table " + found[0]
	}
	return "found tables " + strings.Join(found, ", ")
}

// fileError names the file and, for a failed statement, the statement.
func (a *applier) fileError(f migrate.File, mode TxMode, err error) error {
	var se *migrate.StmtExecError
	if errors.As(err, &se) {
		pos := ""
		if n, e := countStmts(a.drv, f); e == nil {
			stmts, _ := migrate.FileStmtDecls(a.drv, f)
			for i, s := range stmts {
				if s.Text == se.Stmt.Text {
					pos = fmt.Sprintf(" %d of %d", i+1, n)
					break
				}
			}
		}
		how := "the file's transaction was rolled back: nothing of it was applied"
		switch {
		case a.dialect == dialect.MySQL:
			how = "MySQL commits DDL statements by themselves: the statements before it stay applied and " + RevisionTable + " records the error; fix the failed statement (leave the ones before it as they are) and apply again to continue"
		case mode == TxModeNone:
			how = "no transaction was used: the statements before it stay applied and " + RevisionTable + " records the error"
		case mode == TxModeAll:
			how = "the transaction was rolled back: none of this run's files were applied"
		}
		return fmt.Errorf("migrations: file %s: statement%s failed: %w\n  statement: %s\n  (%s)", f.Name(), pos, se.Err, se.Stmt.Text, how)
	}
	var hc migrate.HistoryChangedError
	if errors.As(err, &hc) {
		return fmt.Errorf("migrations: file %s: statement %d changed after it was applied; restore it (only the statements after the failed one may change)", hc.File, hc.Stmt)
	}
	return fmt.Errorf("migrations: file %s: %w", f.Name(), err)
}
