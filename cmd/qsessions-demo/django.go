package main

// Django cookies in the demo: --accept-django-cookies lets the session
// cookies of a Django project (the same "sessionid" name) open the demo's
// sessions, as an app does during a move from Django to Go. The sessions
// come from `qsessions import django` run ahead of time into the demo's
// database or, with --django-db, from the cut-over fallback, which
// imports a Django session at its first request: the demo's users alice
// and bob then need the Django users' ids (a fresh demo database gives
// them 1 and 2, as a fresh Django project does).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/django"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/pages"
)

// djangoConfig is what the Django flags set (config.Django).
type djangoConfig struct {
	// Accept turns Django cookies on (--accept-django-cookies).
	Accept bool
	// DB is the Django database (--django-db): set, the fallback imports
	// Django sessions on demand; "" accepts imported sessions only.
	DB string
	// Table is the Django table (--django-table).
	Table string
	// SecretKeyEnv and FallbackKeysEnv name the environment variables of
	// Django's SECRET_KEY and SECRET_KEY_FALLBACKS (comma-separated).
	SecretKeyEnv, FallbackKeysEnv string

	// djangoDB is the Django database the fallback reads, set by setup.
	djangoDB *dburl.DB
}

func init() {
	register(feature{
		name:  "Django cookies",
		flags: djangoFlags,
		setup: djangoSetup,
		close: djangoClose,
	})
}

func djangoFlags(fs *flag.FlagSet, cfg *config) {
	c := &cfg.Django
	fs.BoolVar(&c.Accept, "accept-django-cookies", false, "let Django session cookies open the sessions imported with `qsessions import django` (and, with --django-db, import them on their first request)")
	fs.StringVar(&c.DB, "django-db", "", "the Django database (postgres://, mysql://, maria://, sqlite://): import each Django session at its first request (the cut-over fallback); needs --accept-django-cookies")
	fs.StringVar(&c.Table, "django-table", django.DjangoSession, "the Django session table: "+django.DjangoSession+" or "+django.QSessionsSession)
	fs.StringVar(&c.SecretKeyEnv, "django-secret-key-env", "DJANGO_SECRET_KEY", "the environment variable with Django's SECRET_KEY (for --django-db)")
	fs.StringVar(&c.FallbackKeysEnv, "django-fallback-keys-env", "DJANGO_SECRET_KEY_FALLBACKS", "the environment variable with Django's SECRET_KEY_FALLBACKS, comma-separated (unset: none)")
}

func djangoSetup(ctx context.Context, a *app, _ *middleware.Options, _ *pages.Config) error {
	c := &a.cfg.Django
	if !c.Accept {
		if c.DB != "" {
			return errors.New("--django-db needs --accept-django-cookies")
		}
		return nil
	}
	if c.DB == "" {
		a.m.Legacy = &django.Tokens{}
		a.notes = append(a.notes, "Django session cookies accepted: the sessions imported with `qsessions import django` open with them")
		return nil
	}
	secret := os.Getenv(c.SecretKeyEnv)
	if secret == "" {
		return fmt.Errorf("--django-db: the environment variable %s is empty or unset: export Django's SECRET_KEY in it (--django-secret-key-env names another)", c.SecretKeyEnv)
	}
	var fallbacks []string
	if v := os.Getenv(c.FallbackKeysEnv); c.FallbackKeysEnv != "" && v != "" {
		fallbacks = strings.Split(v, ",")
	}
	signer, err := django.NewSigner(secret, fallbacks...)
	if err != nil {
		return fmt.Errorf("the Django keys: %w", err)
	}
	db, err := dburl.Open(c.DB)
	if err != nil {
		return fmt.Errorf("--django-db: %w", err)
	}
	c.djangoDB = db
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = db.SQL.PingContext(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("--django-db: connecting to %s: %w", db.URL, err)
	}
	if c.Table == django.QSessionsSession && db.URL == a.db.URL {
		return errors.New("--django-db is the demo's database, whose qsessions_session is the demo's own: django-qsessions' table must be read from another database")
	}
	reader, err := django.NewReader(db.SQL, db.Dialect, c.Table)
	if err != nil {
		return fmt.Errorf("--django-table: %w", err)
	}
	target, err := django.NewTarget(ctx, a.db.SQL, a.db.Dialect)
	if err != nil {
		return err
	}
	tokens, err := django.NewTokens(ctx, &django.Fallback{Reader: reader, Signer: signer, Target: target, Backend: a.m.Backend})
	if err != nil {
		return err
	}
	a.m.Legacy = tokens
	a.notes = append(a.notes, fmt.Sprintf("Django session cookies accepted; a Django session of %s %s is imported at its first request", db.URL, c.Table))
	return nil
}

func djangoClose(a *app) {
	if db := a.cfg.Django.djangoDB; db != nil {
		_ = db.Close()
	}
}
