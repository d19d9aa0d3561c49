package django

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/sqlstore"
)

// Target is the Go app's database, where Import and the cut-over fallback
// write: its qsessions_session table (through sqlstore: user IDs go in as
// text and the database converts them to the column's type), the users
// table that qsessions_session.user_id references (to skip sessions of
// users the Go app does not have), and the Ledger. It is safe for
// concurrent use.
type Target struct {
	db     *sql.DB
	store  *sqlstore.Store
	users  *sqlstore.UsersTable
	ledger *Ledger
}

// NewTarget returns the Target over db, the Go app's database in dialect
// (as NewReader), where qsessions_session exists (qsessions' migrations or
// the app's own were applied) and its user_id has a foreign key to the
// users table. It writes nothing: CreateLedger makes the ledger's table.
// Give it the primary, never a replica. Cost: two catalog queries (three
// on SQLite).
func NewTarget(ctx context.Context, db *sql.DB, dialect string) (*Target, error) {
	st, err := sqlstore.New(ctx, db, dialect)
	if err != nil {
		return nil, fmt.Errorf("django: the Go app's database: %w", err)
	}
	users, err := st.UsersTable(ctx)
	if err != nil {
		if errors.Is(err, sqlstore.ErrNoUsersTable) {
			return nil, fmt.Errorf("django: %w; an import checks there that each session's user exists", err)
		}
		return nil, fmt.Errorf("django: the Go app's database: %w", err)
	}
	ledger, err := NewLedger(st.Dialect())
	if err != nil {
		return nil, err
	}
	return &Target{db: db, store: st, users: users, ledger: ledger}, nil
}

// Store returns the sqlstore.Store the Target writes sessions with.
func (t *Target) Store() *sqlstore.Store { return t.store }

// Ledger returns the Target's ledger.
func (t *Target) Ledger() *Ledger { return t.ledger }

// UsersTable names the table and column qsessions_session.user_id
// references, where Import looks users up.
func (t *Target) UsersTable() (table, column string) { return t.users.Table, t.users.Column }

// CreateLedger creates the ledger's table (LedgerTable) if it does not
// exist: Import does it itself, a fallback's app calls it at start-up (or
// NewTokens does), unless the app's migrations create the table
// (Ledger.DDL). Cost: one CREATE TABLE IF NOT EXISTS.
func (t *Target) CreateLedger(ctx context.Context) error { return t.ledger.CreateTable(ctx, t.db) }

// hasLedger reports whether the ledger's table exists (a dry run creates
// nothing). One catalog query.
func (t *Target) hasLedger(ctx context.Context) (bool, error) {
	err := backend.CheckTable(ctx, func(ctx context.Context, q string, args ...any) (backend.Rows, error) {
		return t.db.QueryContext(ctx, q, args...)
	}, t.store.Dialect(), LedgerTable, "session_key")
	if errors.Is(err, backend.ErrNoTable) {
		return false, nil
	}
	return err == nil, err
}

// NewRecord returns the qsessions row of s, as Import and the fallback
// write it (for an importer of one's own): the stored key s.Key; the
// values encoded with qsessions.EncodeData and s.ExpireDate as the
// session's absolute deadline, so it ends when Django would have ended it
// whatever the Go app's Lifetime; the user ID as text (nil when
// anonymous; sqlstore converts it to the column's type); IP and
// User-Agent; created_at from Django's created_at, else the time of
// Django's last save (the signature's), else now; updated_at and
// last_activity from that last save, else now. Django's set_expiry(0)
// (s.BrowserSession) becomes qsessions.PersistBrowser, so the middleware
// sets a cookie that ends with the browser as Django did; the others keep
// PersistDefault (the Go app's middleware.Cookie.BrowserSession decides).
// Cost: one EncodeData.
func NewRecord(s Session, now time.Time) (*backend.Record, error) {
	persist := qsessions.PersistDefault
	if s.BrowserSession {
		persist = qsessions.PersistBrowser
	}
	data, err := qsessions.EncodeData(s.Values, s.ExpireDate, persist)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the values for qsessions: %v", ErrMalformed, err)
	}
	last := s.UpdatedAt
	if last.IsZero() {
		last = now
	}
	created := s.CreatedAt
	if created.IsZero() {
		created = last
	}
	rec := &backend.Record{Key: s.Key, Data: data, ExpireDate: s.ExpireDate, UserAgent: s.UserAgent, IP: s.IP,
		CreatedAt: created, UpdatedAt: last, LastActivity: last}
	if s.UserID != "" {
		rec.UserID = s.UserID
	}
	return rec, nil
}

// Reason says why a live Django session was not imported.
type Reason string

// The reasons a live session is skipped.
const (
	SkipBadSignature Reason = "bad signature"
	SkipPickle       Reason = "pickle"
	SkipMalformed    Reason = "malformed"
	SkipBadUser      Reason = "bad user id"
	SkipMissingUser  Reason = "missing user"
)

// Reasons lists every Reason, in the order reports print them.
var Reasons = []Reason{SkipBadSignature, SkipPickle, SkipMalformed, SkipBadUser, SkipMissingUser}

// Explain says what the reason means and what to do, for people.
func (r Reason) Explain() string {
	switch r {
	case SkipBadSignature:
		return "not signed by the secret key or a fallback key: tampered with, or the keys given are not the Django project's"
	case SkipPickle:
		return "serialized with Django's PickleSerializer, which is never decoded (pickle runs code); these users sign in again"
	case SkipMalformed:
		return "session_data is not in Django's format"
	case SkipBadUser:
		return "the session names its user in a way that is no user ID of the Go app's users table"
	case SkipMissingUser:
		return "the user is not in the Go app's users table (copy the users first, then run the import again)"
	}
	return string(r)
}

// reasonOf classifies an error of Convert or NewRecord.
func reasonOf(err error) Reason {
	switch {
	case errors.Is(err, ErrBadSignature):
		return SkipBadSignature
	case errors.Is(err, ErrPickle):
		return SkipPickle
	case errors.Is(err, ErrUser), errors.Is(err, backend.ErrUserID):
		return SkipBadUser
	}
	return SkipMalformed
}

// Skip is one live Django session that was not imported.
type Skip struct {
	// ID is the public id qsessions gives the session
	// (backend.PublicID of its stored key): it names the row without the
	// Django session_key, which is a live credential.
	ID     string
	Reason Reason
	// Err says precisely what was wrong; it holds at most the first six
	// characters of the session_key.
	Err error
}

// Batch sizes of Import.
const (
	DefaultBatch = 1000
	MaxBatch     = 10000
)

// ImportOptions configure Import.
type ImportOptions struct {
	// Reader reads the Django table; Signer verifies its rows; Target is
	// the Go app's database. All three are required.
	Reader *Reader
	Signer *Signer
	Target *Target
	// Convert chooses what Convert keeps (Django's _auth_* keys).
	Convert ConvertOptions
	// BatchSize is how many rows each read and each transaction holds:
	// default DefaultBatch, at most MaxBatch.
	BatchSize int
	// DryRun reads and checks everything and writes nothing: no session,
	// no ledger entry, no ledger table.
	DryRun bool
	// Now decides which rows are live and stamps the ledger; zero means
	// time.Now().
	Now time.Time
	// Progress, if set, is called after each batch with the counts so far.
	Progress func(Report)
	// OnSkip, if set, hears of each live session that was not imported,
	// once its batch committed.
	OnSkip func(Skip)
}

// Report counts what an Import did.
type Report struct {
	// Table is the Django table read.
	Table string
	// LiveAtStart is the number of live rows when the import began (for
	// progress; sessions come and go while it runs).
	LiveAtStart int64
	// Expired counts the rows left behind because they had expired (not
	// read).
	Expired int64
	// Read counts the live rows read.
	Read int64
	// Imported counts the sessions written (a dry run: that would be).
	// Anonymous counts those without a user (of Imported and Present).
	Imported  int64
	Anonymous int64
	// Already counts the sessions imported before (by an earlier run or
	// the fallback, as the ledger says, or marked by Mark): not imported
	// again, whatever became of them since.
	Already int64
	// Present counts the sessions whose key qsessions_session already
	// held without a ledger entry (imported by other means): left as they
	// are, and now in the ledger.
	Present int64
	// Skipped counts the live sessions not imported, by reason.
	Skipped map[Reason]int64
	// DryRun is ImportOptions.DryRun.
	DryRun bool
	// Elapsed is the time the import took.
	Elapsed time.Duration
}

// NotImported is the number of live sessions that could not be imported:
// the sum of Skipped.
func (r Report) NotImported() int64 {
	var n int64
	for _, c := range r.Skipped {
		n += c
	}
	return n
}

// maxAttempts bounds how often a batch is retried after a concurrent
// writer (the fallback) recorded one of its sessions first.
const maxAttempts = 3

// Import copies every live session of the Django table into the Go app's
// qsessions_session: the stored key is the SHA-256 of the Django
// session_key, so the Django cookie opens it (with Tokens set as the
// Manager's Legacy); see Convert and NewRecord for what each column
// becomes. Rows are read in session_key order, BatchSize at a time, and
// each batch is written in one transaction of the Go database together
// with its ledger entries (CreateLedger runs first): a failure leaves
// whole batches, and a re-run, or the fallback, imports nothing twice.
//
// Live sessions with a bad signature, pickle data, malformed data, an
// unreadable user id or a user missing from the Go app's users table are
// skipped and counted by Reason (OnSkip hears of each); expired rows are
// counted and not read. A skipped session is not recorded in the ledger: a
// later run (after the users were copied, say) imports it. The error is
// for what stops the import (a database error, ctx ended); the Report
// holds what was done until then.
//
// Reading and decoding the next batch overlaps writing the current one;
// decoding runs on every CPU. Cost per batch: one SELECT of the Django
// table; in the Go database one transaction of a ledger SELECT, a users
// SELECT, the multi-row INSERTs of the sessions (sqlstore.InsertNew) and
// one INSERT of the ledger entries. Two COUNTs of the Django table first.
func Import(ctx context.Context, opts ImportOptions) (rep Report, err error) {
	start := time.Now()
	rep = Report{Skipped: map[Reason]int64{}, DryRun: opts.DryRun}
	if opts.Reader == nil || opts.Signer == nil || opts.Target == nil {
		return rep, errors.New("django: Import needs a Reader, a Signer and a Target")
	}
	rep.Table = opts.Reader.Table()
	size := opts.BatchSize
	if size == 0 {
		size = DefaultBatch
	}
	if size < 1 || size > MaxBatch {
		return rep, fmt.Errorf("django: batch size %d: want 1 to %d", size, MaxBatch)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = backend.Time(now)
	defer func() { rep.Elapsed = time.Since(start) }()

	if rep.LiveAtStart, err = opts.Reader.CountLive(ctx, now); err != nil {
		return rep, err
	}
	if rep.Expired, err = opts.Reader.CountExpired(ctx, now); err != nil {
		return rep, err
	}
	ledger := true
	if opts.DryRun {
		if ledger, err = opts.Target.hasLedger(ctx); err != nil {
			return rep, err
		}
	} else if err := opts.Target.CreateLedger(ctx); err != nil {
		return rep, err
	}

	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan readBatch, 1)
	go opts.read(ctx, size, now, batches)
	defer func() {
		// The reader stops at the cancel; wait for it, so nothing reads
		// the Django database after Import returned.
		cancel()
		for range batches {
		}
	}()
	for b := range batches {
		if b.err != nil {
			return rep, b.err
		}
		rep.Read += int64(len(b.items))
		var res batchResult
		for attempt := 1; ; attempt++ {
			res, err = opts.Target.write(ctx, b.items, now, opts.DryRun, ledger)
			if err == nil {
				break
			}
			if attempt == maxAttempts || !(errors.Is(err, backend.ErrKeyExists) || sqlstore.IsUniqueViolation(err)) {
				return rep, err
			}
		}
		rep.Imported += res.imported
		rep.Anonymous += res.anonymous
		rep.Already += res.already
		rep.Present += res.present
		for _, it := range b.items {
			switch {
			case it.already:
				rep.Already++
			case it.skip != "":
				rep.Skipped[it.skip]++
				if opts.OnSkip != nil {
					opts.OnSkip(Skip{ID: backend.PublicID(backend.KeyOf(it.djangoKey)), Reason: it.skip, Err: it.err})
				}
			}
		}
		if opts.Progress != nil {
			p := rep
			p.Skipped = maps.Clone(rep.Skipped)
			p.Elapsed = time.Since(start)
			opts.Progress(p)
		}
	}
	return rep, ctx.Err()
}

// item is one live Django row on its way to the Go database.
type item struct {
	djangoKey string
	rec       *backend.Record // nil when skipped or already imported
	uid       string          // the user ID as sqlstore reads it back; "" when anonymous
	already   bool            // marked imported by Mark
	skip      Reason          // set when the row cannot be imported
	err       error
}

// readBatch is one batch read and converted, or the error that ended the
// reading.
type readBatch struct {
	items []item
	err   error
}

// read reads the live rows in batches, converts each batch on every CPU,
// and sends it on out, one batch ahead of the writer; it closes out at the
// end, after an error, or when ctx ends.
func (o *ImportOptions) read(ctx context.Context, size int, now time.Time, out chan<- readBatch) {
	defer close(out)
	after := ""
	for {
		rows, err := o.Reader.Batch(ctx, after, size, now)
		if err != nil {
			select {
			case out <- readBatch{err: err}:
			case <-ctx.Done():
			}
			return
		}
		items := make([]item, len(rows))
		parallel(len(rows), func(i int) { items[i] = o.convert(rows[i], now) })
		if len(items) > 0 {
			select {
			case out <- readBatch{items: items}:
			case <-ctx.Done():
				return
			}
		}
		if len(rows) < size {
			return
		}
		after = rows[len(rows)-1].SessionKey
	}
}

// convert turns one row into an item: the record to write, or why not.
func (o *ImportOptions) convert(row Row, now time.Time) item {
	it := item{djangoKey: row.SessionKey}
	s, err := o.Signer.Convert(row, o.Convert)
	if errors.Is(err, ErrAlreadyImported) {
		it.already = true
		return it
	}
	if err == nil && s.UserID != "" {
		it.uid, err = o.Target.store.ParseUserID(s.UserID)
	}
	var rec *backend.Record
	if err == nil {
		rec, err = NewRecord(s, now)
	}
	if err != nil {
		it.skip, it.err = reasonOf(err), err
		return it
	}
	it.rec = rec
	return it
}

// parallel runs f(0) ... f(n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+63)/64)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				f(i)
			}
		})
	}
	wg.Wait()
}

// batchResult is what one committed batch did.
type batchResult struct {
	imported, anonymous, already, present int64
}

// write imports the convertible items of one batch in one transaction:
// the users table says which users exist, the ledger records the others'
// keys and says which it had not recorded before, and those are inserted.
// It marks the items of missing users skipped (unless imported before);
// everything else it counts. A dry run reads the ledger and the users and
// writes nothing (ledger false: no ledger table yet).
func (t *Target) write(ctx context.Context, items []item, now time.Time, dry, ledger bool) (res batchResult, err error) {
	var q sqlstore.DBTX = t.db
	var tx *sql.Tx
	if !dry {
		if tx, err = t.db.BeginTx(ctx, nil); err != nil {
			return res, fmt.Errorf("django: starting a transaction in the Go app's database: %w", err)
		}
		defer func() {
			if err != nil {
				_ = tx.Rollback()
			}
		}()
		q = tx
	}
	var keys, uids []string
	for i := range items {
		it := &items[i]
		if it.skip == SkipMissingUser { // from an attempt rolled back
			it.skip, it.err = "", nil
		}
		if it.rec != nil {
			keys = append(keys, it.rec.Key)
			if it.uid != "" {
				uids = append(uids, it.uid)
			}
		}
	}
	if len(keys) == 0 {
		if tx != nil {
			err = tx.Commit()
		}
		return res, err
	}
	exists := map[string]bool{}
	if len(uids) > 0 {
		if exists, err = t.users.Existing(ctx, q, uids); err != nil {
			return res, fmt.Errorf("django: %w", err)
		}
	}
	// Sessions of missing users: skipped, unless imported before (their
	// user was deleted since).
	keys = keys[:0]
	var orphans []string
	for _, it := range items {
		if it.rec == nil {
			continue
		}
		if it.uid != "" && !exists[it.uid] {
			orphans = append(orphans, it.rec.Key)
		} else {
			keys = append(keys, it.rec.Key)
		}
	}
	before := map[string]bool{}
	if len(orphans) > 0 && ledger {
		if before, err = t.ledger.Imported(ctx, q, orphans); err != nil {
			return res, err
		}
	}
	var fresh map[string]bool
	if dry {
		done := map[string]bool{}
		if ledger {
			if done, err = t.ledger.Imported(ctx, q, keys); err != nil {
				return res, err
			}
		}
		fresh = make(map[string]bool, len(keys))
		for _, k := range keys {
			fresh[k] = !done[k]
		}
	} else if fresh, err = t.ledger.RecordNew(ctx, tx, keys, now); err != nil {
		return res, err
	}
	recs := make([]*backend.Record, 0, len(keys))
	for i := range items {
		it := &items[i]
		switch {
		case it.rec == nil:
		case before[it.rec.Key]:
			res.already++
		case it.uid != "" && !exists[it.uid]:
			it.skip, it.err = SkipMissingUser, fmt.Errorf("user %s is not in %s", it.uid, t.users.Table)
		case !fresh[it.rec.Key]:
			res.already++
		default:
			recs = append(recs, it.rec)
			if it.uid == "" {
				res.anonymous++
			}
		}
	}
	if dry {
		res.imported = int64(len(recs))
		return res, nil
	}
	n, err := t.store.InsertNew(ctx, tx, recs)
	if err != nil {
		return res, fmt.Errorf("django: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return res, fmt.Errorf("django: committing a batch of %d sessions: %w", len(recs), err)
	}
	res.imported, res.present = int64(n), int64(len(recs)-n)
	return res, nil
}
