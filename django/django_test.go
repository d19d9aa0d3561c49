package django

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/django/djangotest"
	"github.com/qsessions/qsessions/internal/testutil"
)

// createdByDjango runs the script's create mode on a fresh database of
// dialect and returns the database and the cases.
func createdByDjango(t *testing.T, dialect string) (*testutil.DB, djangotest.Config, []djangoCase) {
	t.Helper()
	requireDjango(t)
	db := testutil.Open(t, dialect)
	cfg := djangoConfig(t, db)
	var made struct {
		Cases  []djangoCase `json:"cases"`
		Django string       `json:"django"`
	}
	if err := json.Unmarshal(runDjango(t, "create", cfg), &made); err != nil {
		t.Fatal(err)
	}
	t.Logf("Django %s made %d sessions", made.Django, len(made.Cases))
	return db, cfg, made.Cases
}

func caseByName(t *testing.T, cases []djangoCase, name string) djangoCase {
	t.Helper()
	for _, c := range cases {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no case %q", name)
	return djangoCase{}
}

func parseISO(t *testing.T, s *string) time.Time {
	t.Helper()
	if s == nil {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// TestRealDjango reads sessions that Django 3.2 itself created, in
// django_session and in a django-qsessions qsessions_session table, on each
// database, and checks every one against what Django decodes from it.
func TestRealDjango(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			db, _, cases := createdByDjango(t, d)
			checkCases(t, db, cases)
		})
	}
}

func checkCases(t *testing.T, db *testutil.DB, cases []djangoCase) {
	ctx := context.Background()
	signer, err := NewSigner(secretKey, oldSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	noFallback, _ := NewSigner(secretKey)
	now := time.Now()
	rows := map[string]Row{}
	for _, table := range []string{DjangoSession, QSessionsSession} {
		r, err := NewReader(db.SQL, db.Dialect, table)
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for _, c := range cases {
			if c.Table == table && c.Live {
				want = append(want, c.Key)
			}
		}
		slices.Sort(want)
		batches := 0
		for row, err := range r.All(ctx, 7, now) {
			if err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			got = append(got, row.SessionKey)
			rows[row.SessionKey] = row
			batches++
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: live keys in order\n got %q\nwant %q", table, got, want)
		}
		n, err := r.CountLive(ctx, now)
		if err != nil || n != int64(len(want)) {
			t.Fatalf("%s: CountLive = %d, %v; want %d", table, n, err, len(want))
		}
		// Keyset pagination: the batch after the last key is empty, a batch
		// from the middle starts right after it.
		if b, err := r.Batch(ctx, want[len(want)-1], 7, now); err != nil || len(b) != 0 {
			t.Fatalf("%s: batch after the last key: %d rows, %v", table, len(b), err)
		}
		if b, err := r.Batch(ctx, want[2], 2, now); err != nil || len(b) != 2 || b[0].SessionKey != want[3] || b[1].SessionKey != want[4] {
			t.Fatalf("%s: batch after want[2]: %v, %v", table, b, err)
		}
	}

	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r, _ := NewReader(db.SQL, db.Dialect, c.Table)
			if !c.Live {
				if _, err := r.Lookup(ctx, c.Key, now); !errors.Is(err, ErrNotFound) {
					t.Fatalf("expired row: Lookup = %v, want ErrNotFound", err)
				}
				if _, ok := rows[c.Key]; ok {
					t.Fatal("expired row was streamed")
				}
				return
			}
			row := rows[c.Key]
			if row.SessionData != c.SessionData {
				t.Fatalf("session_data read back differs")
			}
			if want := parseISO(t, &c.ExpireDate); !row.ExpireDate.Equal(want) {
				t.Fatalf("ExpireDate = %v, want %v", row.ExpireDate, want)
			}
			looked, err := r.Lookup(ctx, c.Key, now)
			if err != nil || looked != row {
				t.Fatalf("Lookup = %+v, %v; want %+v", looked, err, row)
			}
			if _, err := r.Lookup(ctx, strings.ToUpper(c.Key), now); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Lookup of the upper-cased key = %v, want ErrNotFound", err)
			}
			if !ValidSessionKey(c.Key) {
				t.Fatalf("ValidSessionKey(%q) = false for a key Django drew", c.Key)
			}

			s, err := signer.Convert(row, ConvertOptions{})
			if c.Error != nil {
				want := map[string]error{"bad_signature": ErrBadSignature, "pickle": ErrPickle}[*c.Error]
				if !errors.Is(err, want) {
					t.Fatalf("Convert = %v, want %v", err, want)
				}
				if strings.Contains(err.Error(), c.Key) {
					t.Fatalf("error %q holds the whole session key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			want := fromTagged(t, c.Values).(map[string]any)
			if d := diffValues(s.Data.Values, want); d != "" {
				t.Fatalf("decoded values differ from Django's: %s", d)
			}
			if s.Data.Format.String() != c.Format || s.Data.Algorithm != c.Alg {
				t.Fatalf("format %s/%s, want %s/%s", s.Data.Format, s.Data.Algorithm, c.Format, c.Alg)
			}
			if c.Fallback != (s.Data.KeyIndex == 1) {
				t.Fatalf("KeyIndex = %d, fallback %v", s.Data.KeyIndex, c.Fallback)
			}
			if c.Fallback {
				if _, err := noFallback.Convert(row, ConvertOptions{}); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("without the fallback key: %v, want ErrBadSignature", err)
				}
			}
			if s.Key != backend.KeyOf(c.Key) || s.DjangoKey != c.Key || !s.ExpireDate.Equal(row.ExpireDate) {
				t.Fatalf("Key/DjangoKey/ExpireDate = %q/%q/%v", s.Key, s.DjangoKey, s.ExpireDate)
			}
			if s.UserID != c.User {
				t.Fatalf("UserID = %q, want %q", s.UserID, c.User)
			}
			// Values: Django's minus the keys Convert drops.
			kept := map[string]any{}
			for k, v := range want {
				if !strings.HasPrefix(k, "_auth_") && !strings.HasPrefix(k, "_qsessions_") && k != ExpiryKey {
					kept[k] = v
				}
			}
			if d := diffValues(s.Values, kept); d != "" {
				t.Fatalf("Values: %s", d)
			}
			if c.User != "" {
				withAuth, _ := signer.Convert(row, ConvertOptions{KeepAuthKeys: true})
				if withAuth.Values[AuthUserIDKey] != c.User || withAuth.Values[AuthHashKey] == nil || withAuth.Values[AuthBackendKey] != "django.contrib.auth.backends.ModelBackend" {
					t.Fatalf("KeepAuthKeys: %v", withAuth.Values)
				}
			}
			if s.BrowserSession != (c.Name == "browser_session") {
				t.Fatalf("BrowserSession = %v", s.BrowserSession)
			}
			if c.Table == QSessionsSession {
				wantIP := ""
				if c.IP != nil {
					wantIP = backend.NormalizeIP(*c.IP)
				}
				if s.IP != wantIP || (c.Name == "q_login" && s.IP != "10.1.2.3") {
					t.Fatalf("IP = %q, want %q", s.IP, wantIP)
				}
				wantUA := ""
				if c.UserAgent != nil {
					wantUA = *c.UserAgent
				}
				if s.UserAgent != wantUA || utf8.RuneCountInString(s.UserAgent) > backend.MaxUserAgent {
					t.Fatalf("UserAgent = %q, want %q", s.UserAgent, wantUA)
				}
				if (c.UserID == nil) != (row.UserID == "") || (c.UserID != nil && row.UserID != *c.UserID) {
					t.Fatalf("user_id column = %q, want %v", row.UserID, c.UserID)
				}
				if !s.CreatedAt.Equal(parseISO(t, c.CreatedAt)) || s.CreatedAt.IsZero() {
					t.Fatalf("CreatedAt = %v, want %v", s.CreatedAt, *c.CreatedAt)
				}
				if !s.UpdatedAt.Equal(parseISO(t, c.UpdatedAt)) {
					t.Fatalf("UpdatedAt = %v, want %v", s.UpdatedAt, *c.UpdatedAt)
				}
			} else {
				if !s.CreatedAt.IsZero() || s.IP != "" || s.UserAgent != "" {
					t.Fatalf("django_session has no created_at, ip, user_agent: %+v", s)
				}
				if !s.UpdatedAt.Equal(s.Data.SignedAt) {
					t.Fatalf("UpdatedAt = %v, want the signature time %v", s.UpdatedAt, s.Data.SignedAt)
				}
			}
			if c.Format == "signed" && (s.Data.SignedAt.Before(now.Add(-time.Hour)) || s.Data.SignedAt.After(now.Add(time.Minute))) {
				t.Fatalf("SignedAt = %v, not about now", s.Data.SignedAt)
			}
			// What qsessions stores reads back the same.
			enc, err := qsessions.EncodeData(s.Values, s.ExpireDate, qsessions.PersistDefault)
			if err != nil {
				t.Fatalf("EncodeData: %v", err)
			}
			dec, err := qsessions.DecodeData(enc)
			if err != nil {
				t.Fatalf("DecodeData: %v", err)
			}
			if d := diffValues(dec, s.Values); d != "" {
				t.Fatalf("qsessions round trip: %s", d)
			}
		})
	}
}

// TestMarkRealDjango marks imported rows and checks, with Django itself,
// that each session still loads in Django with every value it had, that
// Django keeps the mark when it saves, and that Convert refuses the row.
func TestMarkRealDjango(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, cfg, all := createdByDjango(t, d)
			signer, _ := NewSigner(secretKey, oldSecretKey)
			var cases []djangoCase
			for _, name := range []string{"login_sha256", "compressed", "uncompressed", "special_floats", "sha1_signed", "legacy", "fallback_key", "legacy_fallback_key", "q_login", "q_legacy", "q_fallback_key"} {
				cases = append(cases, caseByName(t, all, name))
			}
			marks := map[string]string{}
			for _, c := range cases {
				r, _ := NewReader(db.SQL, db.Dialect, c.Table)
				row, err := r.Lookup(ctx, c.Key, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				before, err := signer.Decode(row.SessionData)
				if err != nil {
					t.Fatal(err)
				}
				data, err := signer.Mark(ctx, db.SQL, db.Dialect, c.Table, row, time.Now())
				if err != nil {
					t.Fatalf("%s: Mark: %v", c.Name, err)
				}
				marks[c.Key] = data
				// The stale row no longer matches: a second Mark must not
				// overwrite what is there now.
				if _, err := signer.Mark(ctx, db.SQL, db.Dialect, c.Table, row, time.Now()); !errors.Is(err, ErrChanged) {
					t.Fatalf("%s: Mark of a stale row = %v, want ErrChanged", c.Name, err)
				}
				marked, _ := r.Lookup(ctx, c.Key, time.Now())
				if marked.SessionData != data {
					t.Fatalf("%s: row holds other data than Mark returned", c.Name)
				}
				if again, err := signer.Mark(ctx, db.SQL, db.Dialect, c.Table, marked, time.Now()); err != nil || again != data {
					t.Fatalf("%s: Mark of a marked row = %v; want no change", c.Name, err)
				}
				after, err := signer.Decode(data)
				if err != nil {
					t.Fatal(err)
				}
				if after.Format != before.Format || after.Algorithm != before.Algorithm || after.KeyIndex != 0 {
					t.Fatalf("%s: marked as %s/%s key %d, was %s/%s", c.Name, after.Format, after.Algorithm, after.KeyIndex, before.Format, before.Algorithm)
				}
				// Compressed only when that saves space, as Django does.
				if (c.Name == "compressed") != strings.HasPrefix(data, ".") && (c.Name == "compressed" || c.Name == "uncompressed") {
					t.Fatalf("%s: marked data compressed: %v", c.Name, strings.HasPrefix(data, "."))
				}
				if _, err := signer.Convert(marked, ConvertOptions{}); !errors.Is(err, ErrAlreadyImported) {
					t.Fatalf("%s: Convert of a marked row = %v, want ErrAlreadyImported", c.Name, err)
				}
			}

			// Django serves each marked session, with the mark and every
			// old value (the fallback-key ones now under SECRET_KEY, which
			// Django 3.2, without SECRET_KEY_FALLBACKS, requires).
			var loaded []struct {
				Found  bool            `json:"found"`
				Values json.RawMessage `json:"values"`
			}
			if err := json.Unmarshal(runDjango(t, "load", withItems(cfg, cases)), &loaded); err != nil {
				t.Fatal(err)
			}
			for i, c := range cases {
				if !loaded[i].Found {
					t.Fatalf("%s: Django no longer finds the marked session", c.Name)
				}
				want := fromTagged(t, c.Values).(map[string]any)
				want[ImportedKey] = c.Key
				if dv := diffValues(fromTagged(t, loaded[i].Values).(map[string]any), want); dv != "" {
					t.Fatalf("%s: Django loads the marked session differently: %s", c.Name, dv)
				}
			}

			// Django saves each (a request that changed it): the mark stays.
			var saved []string
			if err := json.Unmarshal(runDjango(t, "touch", withItems(cfg, cases)), &saved); err != nil {
				t.Fatal(err)
			}
			for i, c := range cases {
				r, _ := NewReader(db.SQL, db.Dialect, c.Table)
				row, err := r.Lookup(ctx, c.Key, time.Now())
				if err != nil || row.SessionData != saved[i] || row.SessionData == marks[c.Key] {
					t.Fatalf("%s: Django's save is not in the row (%v)", c.Name, err)
				}
				if _, err := signer.Convert(row, ConvertOptions{}); !errors.Is(err, ErrAlreadyImported) {
					t.Fatalf("%s: after Django saved, Convert = %v, want ErrAlreadyImported", c.Name, err)
				}
				d, _ := signer.Decode(row.SessionData)
				if d.Values["touched"] != true {
					t.Fatalf("%s: Django's change is missing: %v", c.Name, d.Values)
				}
			}
		})
	}
}

// TestMarkErasedByConcurrentDjangoSave shows the limit of Mark with Django
// itself: a Django request that loaded the session before Mark and saves it
// after writes the whole row back without the mark. (Why the report
// proposes recording imports on the Go side instead.)
func TestMarkErasedByConcurrentDjangoSave(t *testing.T) {
	ctx := context.Background()
	db, cfg, cases := createdByDjango(t, testutil.SQLite)
	signer, _ := NewSigner(secretKey, oldSecretKey)
	c := caseByName(t, cases, "anonymous")
	r, _ := NewReader(db.SQL, db.Dialect, c.Table)

	cmd := djangotest.Command(t, "stale-save", cfg.With("table", c.Table).With("key", c.Key))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "loaded" {
		cmd.Process.Kill()
		t.Fatalf("django stale-save: %q %v", lines.Text(), lines.Err())
	}
	row, _ := r.Lookup(ctx, c.Key, time.Now())
	if _, err := signer.Mark(ctx, db.SQL, db.Dialect, c.Table, row, time.Now()); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	stdin.Write([]byte("go\n"))
	stdin.Close()
	if !lines.Scan() || lines.Text() != "saved" {
		t.Fatalf("django stale-save: %q %v", lines.Text(), lines.Err())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	row, _ = r.Lookup(ctx, c.Key, time.Now())
	s, err := signer.Convert(row, ConvertOptions{})
	if err != nil {
		t.Fatalf("Convert: %v (if Django kept the mark, Mark is stronger than documented)", err)
	}
	if s.Values["stale"] != true {
		t.Fatalf("Django's save is not in the row: %v", s.Values)
	}
}

// TestRealDjangoNaiveTimes: a Django project with USE_TZ = False stores
// wall-clock times of TIME_ZONE on MySQL and SQLite; Reader.TimeZone reads
// them right, and without it an hour-old expired session would look live.
func TestRealDjangoNaiveTimes(t *testing.T) {
	requireDjango(t)
	const zone = "Asia/Tokyo" // UTC+9, no DST: a misread is 9 hours off
	tokyo, err := time.LoadLocation(zone)
	if err != nil {
		t.Skipf("no tzdata for %s: %v", zone, err)
	}
	for _, d := range []string{testutil.SQLite, testutil.MySQL} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := testutil.Open(t, d)
			cfg := djangoConfig(t, db)
			cfg["use_tz"], cfg["time_zone"] = false, zone
			var made struct {
				Cases []djangoCase `json:"cases"`
			}
			if err := json.Unmarshal(runDjango(t, "create", cfg), &made); err != nil {
				t.Fatal(err)
			}
			expired := caseByName(t, made.Cases, "expired")
			live := caseByName(t, made.Cases, "anonymous")
			q := caseByName(t, made.Cases, "q_login")

			r, _ := NewReader(db.SQL, db.Dialect, DjangoSession)
			if _, err := r.Lookup(ctx, expired.Key, time.Now()); err != nil {
				t.Fatalf("without TimeZone the expired row should (wrongly) look live: %v", err)
			}
			r.TimeZone = tokyo
			if _, err := r.Lookup(ctx, expired.Key, time.Now()); !errors.Is(err, ErrNotFound) {
				t.Fatalf("expired row with TimeZone: %v, want ErrNotFound", err)
			}
			row, err := r.Lookup(ctx, live.Key, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if want := parseISO(t, &live.ExpireDate); !row.ExpireDate.Equal(want) {
				t.Fatalf("ExpireDate = %v, want %v", row.ExpireDate, want)
			}
			for row, err := range r.All(ctx, 100, time.Now()) {
				if err != nil || row.SessionKey == expired.Key {
					t.Fatalf("All: %v / expired row streamed", err)
				}
			}
			rq, _ := NewReader(db.SQL, db.Dialect, QSessionsSession)
			rq.TimeZone = tokyo
			qrow, err := rq.Lookup(ctx, q.Key, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if !qrow.CreatedAt.Equal(parseISO(t, q.CreatedAt)) || !qrow.UpdatedAt.Equal(parseISO(t, q.UpdatedAt)) {
				t.Fatalf("created/updated = %v/%v, want %v/%v", qrow.CreatedAt, qrow.UpdatedAt, *q.CreatedAt, *q.UpdatedAt)
			}
		})
	}
}
