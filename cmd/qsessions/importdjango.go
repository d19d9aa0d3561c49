package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/qsessions/qsessions/internal/text"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/django"
)

func init() {
	commands["import"] = command{
		summary: "bring another system's sessions over: import django (no one is signed out)",
		run:     group(importUsage, sub{"django", importDjango}),
	}
}

const importUsage = `usage:
  qsessions import django --from URL --db URL [--table django_session|qsessions_session]
                          [--secret-key-env NAME] [--fallback-keys-env NAME] [--batch N]
                          [--dry-run] [--verbose] [--quiet] [--store-class NAME]
                          [--django-time-zone ZONE] [--keep-auth-keys]

import django copies every live session of a Django project's session table
(--from, which is only read) into the Go app's qsessions_session (--db, whose
users table already holds the same user ids). Each session is stored under
the SHA-256 of its Django session_key, so the cookie the browser holds opens
it once the app accepts Django cookies (Manager.Legacy = &django.Tokens{}).
The user comes from _auth_user_id, IP and User-Agent from django-qsessions'
columns, created_at and the expiry are kept, the other values become the
session's data (Django's _auth_* keys are dropped unless --keep-auth-keys).

The session data is verified with Django's SECRET_KEY, read from the
environment variable --secret-key-env names (default DJANGO_SECRET_KEY), and
SECRET_KEY_FALLBACKS, comma-separated, from --fallback-keys-env (default
DJANGO_SECRET_KEY_FALLBACKS; unset means none). Keys are never flags: a
command line is visible to every user of the machine.

Rows are read in batches of N (default 1000); each batch is written in one
transaction together with its entries in the ledger table
qsessions_django_import (created in --db if missing), so a failure leaves
whole batches and a re-run imports nothing twice, not even a session
revoked since. Expired rows are counted and left. Live sessions with a bad
signature, pickle data, malformed data, an unreadable user id or a user
missing from the users table are skipped and counted by reason (--verbose
prints each, by the public id qsessions gives it, never its session_key);
the exit status is 1 when any live session was not imported. --dry-run
reads and checks everything and writes nothing. Progress goes to stderr on
a terminal, the counts to stdout.

When Django uses django-qsessions, its table is also named
qsessions_session: --from and --db must then be different databases.
--store-class is the class name of Django's session store when it is not
SessionStore (it salts the signatures); --django-time-zone is Django's
TIME_ZONE for a project with USE_TZ = False on MySQL or SQLite.
`

// Environment variables the Django keys are read from by default.
const (
	defaultSecretKeyEnv    = "DJANGO_SECRET_KEY"
	defaultFallbackKeysEnv = "DJANGO_SECRET_KEY_FALLBACKS"
)

func importDjango(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions import django", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage); fs.PrintDefaults() }
	from := fs.String("from", "", "the Django database URL: postgres://, mysql://, maria:// or sqlite:// (required; only read)")
	dbURL := fs.String("db", "", "the Go app's database URL, with qsessions_session and the users (required)")
	table := fs.String("table", django.DjangoSession, "the Django table: "+django.DjangoSession+" or "+django.QSessionsSession+" (django-qsessions)")
	secretEnv := fs.String("secret-key-env", defaultSecretKeyEnv, "the environment variable that holds Django's SECRET_KEY")
	fallbackEnv := fs.String("fallback-keys-env", defaultFallbackKeysEnv, "the environment variable that holds SECRET_KEY_FALLBACKS, comma-separated (unset: none)")
	batch := fs.Int("batch", django.DefaultBatch, "rows per read and per transaction, 1 to "+strconv.Itoa(django.MaxBatch))
	dry := fs.Bool("dry-run", false, "read and check everything, write nothing")
	verbose := fs.Bool("verbose", false, "print each live session not imported, with the reason")
	quiet := fs.Bool("quiet", false, "no progress output even on a terminal")
	storeClass := fs.String("store-class", django.DefaultStoreClass, "the class name of Django's session store (part of the signing salt)")
	zone := fs.String("django-time-zone", "", "Django's TIME_ZONE when the project has USE_TZ = False (MySQL, SQLite)")
	keepAuth := fs.Bool("keep-auth-keys", false, "keep _auth_user_id, _auth_user_backend and _auth_user_hash in the session data")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case *from == "":
		return errors.New("--from is required: the Django database's URL (postgres://, mysql://, maria:// or sqlite://)")
	case *dbURL == "":
		return errors.New("--db is required: the Go app's database URL")
	case *table != django.DjangoSession && *table != django.QSessionsSession:
		return fmt.Errorf("--table %q: want %s or %s", *table, django.DjangoSession, django.QSessionsSession)
	case *batch < 1 || *batch > django.MaxBatch:
		return fmt.Errorf("--batch %d: must be between 1 and %d", *batch, django.MaxBatch)
	}
	signer, err := djangoSigner(*storeClass, *secretEnv, *fallbackEnv)
	if err != nil {
		return err
	}
	var loc *time.Location
	if *zone != "" {
		if loc, err = time.LoadLocation(*zone); err != nil {
			return fmt.Errorf("--django-time-zone: %w", err)
		}
	}

	src, err := openPinged(ctx, *from, "--from")
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openPinged(ctx, *dbURL, "--db")
	if err != nil {
		return err
	}
	defer dst.Close()
	if *table == django.QSessionsSession && src.URL == dst.URL {
		return fmt.Errorf("--from and --db are the same database, where the Go app's qsessions_session would be Django's: import into another database (or schema)")
	}
	reader, err := django.NewReader(src.SQL, src.Dialect, *table)
	if err != nil {
		return err
	}
	reader.TimeZone = loc
	target, err := django.NewTarget(ctx, dst.SQL, dst.Dialect)
	if err != nil {
		return fmt.Errorf("%s: %w", dst.URL, unprefixed(err))
	}

	opts := django.ImportOptions{
		Reader: reader, Signer: signer, Target: target, BatchSize: *batch, DryRun: *dry,
		Convert: django.ConvertOptions{KeepAuthKeys: *keepAuth},
	}
	progress := !*quiet && isTerminal(stderr)
	clear := func() {}
	if progress {
		clear = func() { fmt.Fprint(stderr, "\r\033[K") }
		var last time.Time
		opts.Progress = func(r django.Report) {
			if time.Since(last) < 200*time.Millisecond {
				return
			}
			last = time.Now()
			fmt.Fprintf(stderr, "\rimporting %s: %d of %d live sessions read, %d imported (%s/s)...",
				r.Table, r.Read, r.LiveAtStart, r.Imported, rate(r.Read, r.Elapsed))
		}
	}
	if *verbose {
		opts.OnSkip = func(s django.Skip) {
			clear()
			fmt.Fprintf(stdout, "skipped %s: %s: %s\n", s.ID, s.Reason, termCell(s.Err.Error()))
		}
	}
	rep, err := django.Import(ctx, opts)
	clear()
	writeImportReport(stdout, rep, *verbose)
	if err != nil {
		return fmt.Errorf("stopped: %w (what was committed stays; run the import again to continue)", unprefixed(err))
	}
	if n := rep.NotImported(); n > 0 {
		noun := "sessions were"
		if n == 1 {
			noun = "session was"
		}
		return fmt.Errorf("%d live Django %s not imported (reasons above; after a fix, run the import again: nothing is imported twice)", n, noun)
	}
	return nil
}

// djangoSigner reads the Django keys from the environment variables named
// and returns their Signer.
func djangoSigner(storeClass, secretEnv, fallbackEnv string) (*django.Signer, error) {
	if secretEnv == "" {
		return nil, errors.New("--secret-key-env: name the environment variable that holds Django's SECRET_KEY")
	}
	secret := os.Getenv(secretEnv)
	if secret == "" {
		return nil, fmt.Errorf("the environment variable %s is empty or unset: export Django's SECRET_KEY in it "+
			"(--secret-key-env names another variable; keys never go on the command line)", secretEnv)
	}
	var fallbacks []string
	if v := os.Getenv(fallbackEnv); fallbackEnv != "" && v != "" {
		fallbacks = strings.Split(v, ",")
		for i, k := range fallbacks {
			if k == "" {
				return nil, fmt.Errorf("%s: key %d of %d is empty (comma-separated keys, no empty ones)", fallbackEnv, i+1, len(fallbacks))
			}
		}
	}
	s, err := django.NewSignerFor(storeClass, secret, fallbacks...)
	if err != nil {
		return nil, fmt.Errorf("--store-class or the keys: %w", err)
	}
	return s, nil
}

// openPinged opens rawURL (named by flag in errors) and checks that it
// connects.
func openPinged(ctx context.Context, rawURL, flagName string) (*dburl.DB, error) {
	db, err := dburl.Open(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.SQL.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: connecting to %s: %w", flagName, db.URL, err)
	}
	return db, nil
}

// rate is n per elapsed, rounded, for people.
func rate(n int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(n)/elapsed.Seconds(), 'f', 0, 64)
}

// writeImportReport writes the counts of rep.
func writeImportReport(w io.Writer, rep django.Report, verbose bool) {
	fmt.Fprintf(w, "read %s from %s; left %s (Django's clearsessions deletes expired rows)\n",
		text.Count(rep.Read, "live session"), rep.Table, text.Count(rep.Expired, "expired row"))
	verb := "imported"
	if rep.DryRun {
		verb = "dry run, nothing written: would import"
	}
	fmt.Fprintf(w, "%s %s (%d anonymous) in %v: %s a second\n", verb, text.Count(rep.Imported, "session"), rep.Anonymous,
		rep.Elapsed.Round(time.Millisecond), rate(rep.Read, rep.Elapsed))
	if rep.Already > 0 {
		fmt.Fprintf(w, "already imported before, left as they are: %d\n", rep.Already)
	}
	if rep.Present > 0 {
		fmt.Fprintf(w, "already in qsessions_session without a ledger entry, left as they are and recorded: %d\n", rep.Present)
	}
	if n := rep.NotImported(); n > 0 {
		fmt.Fprintf(w, "not imported: %s\n", text.Count(n, "live session"))
		for _, r := range django.Reasons {
			if c := rep.Skipped[r]; c > 0 {
				fmt.Fprintf(w, "  %-13s %6d  %s\n", r, c, r.Explain())
			}
		}
		if !verbose {
			fmt.Fprintln(w, "(--verbose names each)")
		}
	}
}
