package django_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/django"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/middleware"
)

// Import copies the live sessions of a Django project into the Go app's
// database ahead of the cut-over, as `qsessions import django` does: the
// Django database is only read, and each batch commits with its ledger
// entries, so running it again imports only what is new.
func ExampleImport() {
	ctx := context.Background()
	djangoDB, err := dburl.Open("postgres://django@db.internal/shop?search_path=public")
	if err != nil {
		log.Fatal(err)
	}
	appDB, err := dburl.Open("postgres://app@db.internal/app?search_path=public")
	if err != nil {
		log.Fatal(err)
	}
	reader, err := django.NewReader(djangoDB.SQL, djangoDB.Dialect, django.DjangoSession)
	if err != nil {
		log.Fatal(err)
	}
	// SECRET_KEY, then SECRET_KEY_FALLBACKS: from the environment, never
	// from the source.
	signer, err := django.NewSigner(os.Getenv("DJANGO_SECRET_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	target, err := django.NewTarget(ctx, appDB.SQL, appDB.Dialect)
	if err != nil {
		log.Fatal(err) // no qsessions_session, or its user_id has no foreign key
	}
	rep, err := django.Import(ctx, django.ImportOptions{Reader: reader, Signer: signer, Target: target})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("imported %d of %d live sessions; %d imported before", rep.Imported, rep.Read, rep.Already)
	for _, r := range django.Reasons {
		if n := rep.Skipped[r]; n > 0 {
			log.Printf("%d not imported: %s", n, r.Explain())
		}
	}
}

// While Django and the Go app serve side by side, Django cookies open
// their sessions on Go routes too: the ones imported ahead of time by
// their key, the newer ones through the fallback, which imports each at
// its first request. After the cut-over, &django.Tokens{} (no fallback)
// keeps the imported sessions open until their Django cookies expire or
// a login rotates them.
func ExampleTokens() {
	ctx := context.Background()
	appDB, err := dburl.Open("postgres://app@db.internal/app?search_path=public")
	if err != nil {
		log.Fatal(err)
	}
	djangoDB, err := dburl.Open("postgres://django_readonly@db.internal/shop?search_path=public")
	if err != nil {
		log.Fatal(err)
	}
	client := ent.NewClient(ent.Driver(entsql.OpenDB(appDB.Dialect, appDB.SQL))) // the app's ent package
	m := qsessions.New(backend.NewDB(ent.NewSessionStore(client)))

	reader, err := django.NewReader(djangoDB.SQL, djangoDB.Dialect, django.DjangoSession)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := django.NewSigner(os.Getenv("DJANGO_SECRET_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	target, err := django.NewTarget(ctx, appDB.SQL, appDB.Dialect)
	if err != nil {
		log.Fatal(err)
	}
	// Backend: the imported session is read back through the app's own
	// store, with the app's user ID type.
	m.Legacy, err = django.NewTokens(ctx, &django.Fallback{Reader: reader, Signer: signer, Target: target, Backend: m.Backend})
	if err != nil {
		log.Fatal(err)
	}
	// After the cut-over: m.Legacy = &django.Tokens{}

	mux := http.NewServeMux()
	log.Fatal(http.ListenAndServe(":8080", middleware.New(m, middleware.Options{})(mux)))
}

// Django's session settings, as qsessions spells them.
func Example_settings() {
	client := ent.NewClient() // the app's ent client
	store := ent.NewSessionStore(client)

	// SESSION_ENGINE = "django.contrib.sessions.backends.db"
	var b backend.Backend = backend.NewDB(store)
	// SESSION_ENGINE = "django.contrib.sessions.backends.cached_db", on
	// the memcached servers of SESSION_CACHE_ALIAS:
	if servers := os.Getenv("MEMCACHED_SERVERS"); servers != "" {
		mc, err := backend.NewMemcache(strings.Split(servers, ","), backend.MemcacheOptions{})
		if err != nil {
			log.Fatal(err)
		}
		keys, err := backend.ParseCacheKeys(os.Getenv(backend.CacheKeysEnv))
		if err != nil {
			log.Fatal(err)
		}
		if b, err = backend.NewCachedDB(store, mc, backend.CachedOptions{Keys: keys}); err != nil {
			log.Fatal(err)
		}
	}
	m := qsessions.New(b)
	m.Lifetime = 1209600 * time.Second // SESSION_COOKIE_AGE (Django's default: two weeks)
	// SESSION_SAVE_EVERY_REQUEST = True: the expiry slides with use. Here
	// IdleTimeout slides it, written at most once per ActivityInterval,
	// and Lifetime stays an absolute bound.
	m.IdleTimeout, m.Lifetime = 1209600*time.Second, 90*24*time.Hour
	m.ActivityInterval = time.Minute
	m.Legacy = &django.Tokens{} // the Django cookies of imported sessions

	cookie := middleware.Cookie{
		Name:           "sessionid",          // SESSION_COOKIE_NAME
		Domain:         ".example.com",       // SESSION_COOKIE_DOMAIN
		Path:           "/",                  // SESSION_COOKIE_PATH
		Insecure:       false,                // SESSION_COOKIE_SECURE = True (Insecure: true for False)
		SameSite:       http.SameSiteLaxMode, // SESSION_COOKIE_SAMESITE = "Lax"
		BrowserSession: false,                // SESSION_EXPIRE_AT_BROWSER_CLOSE = False
	} // SESSION_COOKIE_HTTPONLY: always
	handler := middleware.New(m, middleware.Options{Cookie: cookie})(http.NewServeMux())
	m.StartCleaner(context.Background()) // clearsessions, in the app; or `qsessions clear-expired` from cron
	log.Fatal(http.ListenAndServe(":8080", handler))
}
