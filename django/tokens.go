package django

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/ratelog"
)

// Tokens lets Django session cookies into a qsessions.Manager: set it as
// the Manager's Legacy. A cookie of Django's shape (ValidSessionKey: 32
// characters of [a-z0-9]) is then looked up like a qsessions token, by its
// SHA-256, so the sessions Import brought over open with the cookies the
// browsers already hold; anything else of another shape still costs no
// query. Login rotates such a session to a qsessions token, as every login
// does.
//
// With a Fallback, a Django cookie whose session was not imported (it was
// created on the Django side after the import, while both apps run) is
// imported at its first request. Without one (the zero Tokens), only
// imported sessions open: the setting for after the cut-over, until the
// last Django cookie has expired or been rotated.
type Tokens struct {
	// Fallback, when set, imports a Django session the first time its
	// cookie reaches the Go app. Build it with NewTokens, which checks it
	// and creates the ledger's table.
	Fallback *Fallback
}

var _ qsessions.LegacyTokens = (*Tokens)(nil)

// NewTokens returns Tokens with fb as the fallback after checking fb and
// creating the ledger's table if it is missing (Target.CreateLedger).
// Cost: one CREATE TABLE IF NOT EXISTS.
func NewTokens(ctx context.Context, fb *Fallback) (*Tokens, error) {
	if err := fb.check(); err != nil {
		return nil, err
	}
	if err := fb.Target.CreateLedger(ctx); err != nil {
		return nil, err
	}
	return &Tokens{Fallback: fb}, nil
}

// Valid implements qsessions.LegacyTokens: ValidSessionKey. No
// allocation, no query.
func (t *Tokens) Valid(token string) bool { return ValidSessionKey(token) }

// Import implements qsessions.LegacyTokens: the fallback's Import, or
// backend.ErrNotFound without a fallback.
func (t *Tokens) Import(ctx context.Context, token string, now time.Time) (*backend.Record, error) {
	if t == nil || t.Fallback == nil {
		return nil, backend.ErrNotFound
	}
	return t.Fallback.Import(ctx, token, now)
}

// Fallback imports one Django session on demand, during a cut-over in
// which Django and the Go app serve side by side: a session created or
// signed into on the Django side after the import opens on Go routes too.
// A session imported once, by Import or by the fallback, is never imported
// again (the Ledger says so): revoked or signed out on the Go side, it
// stays ended, whatever Django does to its own row meanwhile. Django's
// database is only read.
type Fallback struct {
	// Reader reads the Django table (required). Its database may be the Go
	// app's or another.
	Reader *Reader
	// Signer verifies the Django rows (required).
	Signer *Signer
	// Target is the Go app's database (required).
	Target *Target
	// Convert chooses what Convert keeps.
	Convert ConvertOptions
	// Backend, when set, is the app's Manager's Backend: the imported
	// session is read back through it, so the Manager gets it in the
	// app's own types (an int user ID from an ent store with int IDs, a
	// uuid.UUID from one with UUIDs) and a cached backend caches it. Nil:
	// the session as the Target's sqlstore reads it, its user ID as text
	// (right for an app that runs on sqlstore).
	Backend backend.Backend
	// Logger hears of Django sessions that could not be imported (bad
	// signature, unknown user, ...), each reason at most once a minute;
	// nil means slog.Default().
	Logger *slog.Logger

	logs ratelog.Limiter
}

func (f *Fallback) check() error {
	if f == nil || f.Reader == nil || f.Signer == nil || f.Target == nil {
		return errors.New("django: a Fallback needs a Reader, a Signer and a Target")
	}
	return nil
}

// Import imports the Django session whose session_key is token, if it is
// live, verifies, and was never imported before, and returns it as the
// Go app's Backend (or the Target's store) reads it back. In one
// transaction of the Go database it claims the session in the ledger,
// checks that its user exists, and inserts it; a session the ledger
// already holds is only looked up in the Go table, so a session ended on
// the Go side answers backend.ErrNotFound, and concurrent first requests
// of one cookie all get the one session. A row that cannot be imported
// (bad signature, unknown user, ...) is backend.ErrNotFound, logged with
// its reason; database errors are returned as they are.
//
// Cost: for a cookie imported before, one ledger SELECT and one session
// SELECT in the Go database; for a new one, one SELECT of the Django row,
// Convert, then a ledger INSERT, a users SELECT and a session INSERT in
// one transaction, and one SELECT to read it back.
func (f *Fallback) Import(ctx context.Context, token string, now time.Time) (*backend.Record, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	if !ValidSessionKey(token) {
		return nil, backend.ErrNotFound
	}
	now = backend.Time(now)
	t := f.Target
	key := backend.KeyOf(token)
	done, err := t.ledger.Imported(ctx, t.db, []string{key})
	if err != nil {
		return nil, err
	}
	if done[key] {
		return f.load(ctx, key, now)
	}
	row, err := f.Reader.Lookup(ctx, token, now)
	if errors.Is(err, ErrNotFound) {
		return nil, backend.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	s, err := f.Signer.Convert(row, f.Convert)
	if errors.Is(err, ErrAlreadyImported) {
		return f.load(ctx, key, now)
	}
	uid := ""
	if err == nil && s.UserID != "" {
		uid, err = t.store.ParseUserID(s.UserID)
	}
	var rec *backend.Record
	if err == nil {
		rec, err = NewRecord(s, now)
	}
	if err != nil {
		f.skipped(ctx, reasonOf(err), key, err)
		return nil, backend.ErrNotFound
	}
	rec.LastActivity = now // it is in use now

	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("django: starting a transaction in the Go app's database: %w", err)
	}
	defer tx.Rollback()
	claimed, err := t.ledger.Claim(ctx, tx, key, now)
	if err != nil {
		return nil, err
	}
	if !claimed {
		// A concurrent request of the same cookie imported it first.
		_ = tx.Rollback()
		return f.load(ctx, key, now)
	}
	if uid != "" {
		exists, err := t.users.Existing(ctx, tx, []string{uid})
		if err != nil {
			return nil, fmt.Errorf("django: %w", err)
		}
		if !exists[uid] {
			// Not claimed after all (rolled back): once the user exists,
			// the session can be imported.
			f.skipped(ctx, SkipMissingUser, key, fmt.Errorf("user %s is not in %s", uid, t.users.Table))
			return nil, backend.ErrNotFound
		}
	}
	if _, err := t.store.InsertNew(ctx, tx, []*backend.Record{rec}); err != nil {
		return nil, fmt.Errorf("django: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("django: committing an imported session: %w", err)
	}
	return f.load(ctx, key, now)
}

// load reads the session key of the Go table, through Backend when set.
func (f *Fallback) load(ctx context.Context, key string, now time.Time) (*backend.Record, error) {
	if f.Backend != nil {
		return f.Backend.Load(ctx, key, now)
	}
	return f.Target.store.Get(ctx, key, now)
}

// skipped logs a session the fallback could not import, once a minute per
// reason.
func (f *Fallback) skipped(ctx context.Context, r Reason, key string, err error) {
	level := slog.LevelInfo
	if r == SkipBadSignature {
		level = slog.LevelWarn // tampered, or the configured keys are wrong
	}
	f.logs.Log(ctx, f.Logger, level, "django-fallback-"+string(r),
		"django: a Django session cookie was not imported: "+r.Explain(),
		"session", backend.PublicID(key), "reason", string(r), "err", err)
}
