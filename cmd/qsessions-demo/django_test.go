package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/qsessions/qsessions/django"
	"github.com/qsessions/qsessions/django/djangotest"
	"github.com/qsessions/qsessions/internal/testutil"
)

// withDjangoCookie returns a client of the demo whose browser holds the
// Django session cookie token.
func (ta *testApp) withDjangoCookie(token string) *client {
	c := ta.device(uaWindows)
	u, _ := url.Parse(ta.srv.URL)
	c.c.Jar.SetCookies(u, []*http.Cookie{{Name: "sessionid", Value: token, Path: "/"}})
	return c
}

// TestDjangoCookies: sessions Django 3.2 made (on a fresh SQLite project
// whose users alice and bob have the ids of the demo's) open in the demo
// with their Django cookies: through the cut-over fallback
// (--accept-django-cookies --django-db), and, without it, once
// `qsessions import django`'s library imported them; never without the
// option.
func TestDjangoCookies(t *testing.T) {
	djangotest.Require(t)
	djangoDB := testutil.Open(t, testutil.SQLite)
	made := djangotest.Create(t, djangotest.ConfigFor(t, djangoDB.Dialect, djangoDB.URL))
	if made.Users["alice"] != "1" || made.Users["bob"] != "2" {
		t.Fatalf("Django's users: %v", made.Users)
	}
	t.Setenv("QSESSIONS_TEST_DJANGO_SECRET", djangotest.SecretKey)
	t.Setenv("QSESSIONS_TEST_DJANGO_FALLBACKS", djangotest.OldSecretKey)
	alice := made.Case(t, "login_sha256")
	bob := made.Case(t, "fallback_key")

	// Off by default: a Django cookie is no session.
	off := newTestApp(t, testutil.Open(t, testutil.SQLite), config{})
	if r := off.withDjangoCookie(alice.Key).get("/"); r.code != http.StatusSeeOther || r.loc != "/login" {
		t.Fatalf("without the option: %d %s", r.code, r.loc)
	}

	// The fallback: the Django cookie opens the user's session at once.
	fb := newTestApp(t, testutil.Open(t, testutil.SQLite), config{Django: djangoConfig{
		Accept: true, DB: djangoDB.URL, Table: django.DjangoSession,
		SecretKeyEnv: "QSESSIONS_TEST_DJANGO_SECRET", FallbackKeysEnv: "QSESSIONS_TEST_DJANGO_FALLBACKS",
	}})
	if !strings.Contains(strings.Join(fb.notes, "\n"), "Django session cookies accepted") {
		t.Errorf("notes: %q", fb.notes)
	}
	c := fb.withDjangoCookie(alice.Key)
	r := c.get("/")
	if r.code != http.StatusOK || !strings.Contains(r.body, "Hello, alice") || !strings.Contains(r.body, "<code>str</code>") {
		t.Fatalf("alice's Django cookie: %d %s\n%s", r.code, r.loc, r.body)
	}
	if r := fb.withDjangoCookie(bob.Key).get("/"); !strings.Contains(r.body, "Hello, bob") {
		t.Fatalf("bob's Django cookie (signed with the fallback key): %d\n%s", r.code, r.body)
	}
	if r := fb.withDjangoCookie(made.Case(t, "tampered").Key).get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("a tampered Django cookie: %d %s", r.code, r.loc)
	}
	// Signing out ends it for good: the Django cookie opens nothing again.
	if r := c.do("POST", "/logout", url.Values{}, map[string]string{"Origin": fb.srv.URL}); r.code != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", r.code, r.body)
	}
	if r := fb.withDjangoCookie(alice.Key).get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("after the logout, alice's Django cookie: %d\n%s", r.code, r.body)
	}

	// Imported ahead of time, accepted without a fallback.
	db := testutil.Open(t, testutil.SQLite)
	imp := newTestApp(t, db, config{Django: djangoConfig{Accept: true}})
	if r := imp.withDjangoCookie(alice.Key).get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("before the import: %d", r.code)
	}
	ctx := context.Background()
	signer, _ := django.NewSigner(djangotest.SecretKey, djangotest.OldSecretKey)
	reader, _ := django.NewReader(djangoDB.SQL, djangoDB.Dialect, django.DjangoSession)
	target, err := django.NewTarget(ctx, db.SQL, db.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := django.Import(ctx, django.ImportOptions{Reader: reader, Signer: signer, Target: target}); err != nil {
		t.Fatal(err)
	}
	if r := imp.withDjangoCookie(alice.Key).get("/"); !strings.Contains(r.body, "Hello, alice") {
		t.Fatalf("an imported session: %d %s\n%s", r.code, r.loc, r.body)
	}
}

// TestDjangoCookiesErrors: the flags that do not go together, and a
// missing key, stop the demo with a message that says what to do.
func TestDjangoCookiesErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		cfg  djangoConfig
		want string
	}{
		{djangoConfig{DB: "sqlite://django.db"}, "--django-db needs --accept-django-cookies"},
		{djangoConfig{Accept: true, DB: "sqlite://django.db", Table: django.DjangoSession, SecretKeyEnv: "QSESSIONS_TEST_UNSET_VARIABLE"}, "QSESSIONS_TEST_UNSET_VARIABLE is empty or unset"},
	} {
		_, err := newApp(ctx, config{DB: testutil.Open(t, testutil.SQLite).URL, Django: c.cfg})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want an error containing %q", c.cfg, err, c.want)
		}
	}
}
