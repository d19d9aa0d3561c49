package django

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
)

func TestValidSessionKey(t *testing.T) {
	for s, want := range map[string]bool{
		"abcdefghijklmnopqrstuvwxyz012345":  true,
		"0123456789abcdef0123456789abcdef":  true,
		"abcdefghijklmnopqrstuvwxyz01234":   false, // 31
		"abcdefghijklmnopqrstuvwxyz0123456": false, // 33
		"Abcdefghijklmnopqrstuvwxyz012345":  false, // upper case
		"abcdefghijklmnopqrstuvwxyz01234-":  false,
		"abcdefghijklmnopqrstuvwxyz01234 ":  false,
		"abcdefghijklmnopqrstuvwxyz01234é":  false,
		"":                                  false,
		// A qsessions token is not a Django key.
		"Z2F0ZXdheS1ub3QtYS1kamFuZ28ta2V5LWF0LWFsbA": false,
	} {
		if ValidSessionKey(s) != want {
			t.Errorf("ValidSessionKey(%q) = %v", s, !want)
		}
	}
	k := "abcdefghijklmnopqrstuvwxyz012345"
	if n := testing.AllocsPerRun(100, func() { ValidSessionKey(k) }); n != 0 {
		t.Fatalf("ValidSessionKey allocates %v times", n)
	}
}

// signed returns session_data holding js, signed under goldenKey as Django
// would (sign is checked against Django by TestDecodeGolden and
// TestMarkRealDjango).
func signed(t *testing.T, js string) string {
	t.Helper()
	v, err := goldenSigner(t).sign([]byte(js), FormatSigned, "sha256", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestConvert(t *testing.T) {
	s := goldenSigner(t)
	key := "abcdefghijklmnopqrstuvwxyz012345"
	exp := time.Now().Add(time.Hour).UTC()
	row := func(js string) Row { return Row{SessionKey: key, SessionData: signed(t, js), ExpireDate: exp} }

	got, err := s.Convert(Row{SessionKey: key, SessionData: goldenSigned, ExpireDate: exp}, ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != backend.KeyOf(key) || got.UserID != "42" || !got.ExpireDate.Equal(exp) || got.UpdatedAt != got.Data.SignedAt {
		t.Fatalf("%+v", got)
	}
	if diff := diffValues(got.Values, map[string]any{"cart": []any{int64(1), int64(2)}, "theme": "dark", "visits": int64(3), "ratio": 0.25, "seen": true}); diff != "" {
		t.Fatal(diff)
	}

	// IP and User-Agent from django-qsessions' keys, normalised; the keys
	// and the mark of another session are dropped.
	got, err = s.Convert(row(`{"_qsessions_ip":"::ffff:192.0.2.1","_qsessions_user_agent":"UA\u0000x","_qsessions_imported":"otherkey","_session_expiry":0,"a":1}`), ConvertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.IP != "192.0.2.1" || got.UserAgent != "UA\uFFFDx" || got.UserID != "" || !got.BrowserSession || len(got.Values) != 1 {
		t.Fatalf("%+v", got)
	}
	// Columns win over the keys.
	r := row(`{"_qsessions_ip":"192.0.2.1","_qsessions_user_agent":"old"}`)
	r.IP, r.UserAgent = "2001:db8::1", "new"
	if got, _ = s.Convert(r, ConvertOptions{}); got.IP != "2001:db8::1" || got.UserAgent != "new" {
		t.Fatalf("%+v", got)
	}
	// A custom expiry age is not a browser session.
	if got, _ = s.Convert(row(`{"_session_expiry":3600}`), ConvertOptions{}); got.BrowserSession || len(got.Values) != 0 {
		t.Fatalf("%+v", got)
	}

	// Users.
	for _, tc := range []struct {
		js, column, want string
		err              error
	}{
		{`{"_auth_user_id":"7"}`, "7", "7", nil},
		{`{"_auth_user_id":7}`, "", "7", nil}, // Django before 1.7 stored the pk
		{`{"_auth_user_id":"0b0e5a4c-3d2f-4e8a-9c1b-2a3b4c5d6e7f"}`, "0b0e5a4c3d2f4e8a9c1b2a3b4c5d6e7f", "0b0e5a4c-3d2f-4e8a-9c1b-2a3b4c5d6e7f", nil},
		{`{"_auth_user_id":"7"}`, "8", "", ErrUser},
		{`{}`, "8", "", ErrUser},
		{`{"_auth_user_id":""}`, "", "", ErrUser},
		{`{"_auth_user_id":[1]}`, "", "", ErrUser},
		{`{"_auth_user_id":null}`, "", "", nil},
	} {
		r := row(tc.js)
		r.UserID = tc.column
		got, err := s.Convert(r, ConvertOptions{})
		if !errors.Is(err, tc.err) || (err == nil && got.UserID != tc.want) {
			t.Errorf("%s column %q: %q, %v; want %q, %v", tc.js, tc.column, got.UserID, err, tc.want, tc.err)
		}
	}

	// Marked for its own key: never again.
	if _, err := s.Convert(row(`{"a":1,"_qsessions_imported":"`+key+`"}`), ConvertOptions{}); !errors.Is(err, ErrAlreadyImported) {
		t.Fatalf("marked: %v", err)
	}
	// Bad rows.
	if _, err := s.Convert(Row{SessionData: goldenSigned}, ConvertOptions{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no key: %v", err)
	}
	_, err = s.Convert(Row{SessionKey: key, SessionData: goldenSigned[:len(goldenSigned)-2] + "xx"}, ConvertOptions{})
	if !errors.Is(err, ErrBadSignature) || strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), key[:6]) {
		t.Fatalf("tampered: %v (must name the key by its first characters only)", err)
	}
}

func TestMarkedData(t *testing.T) {
	s := goldenSigner(t, "old-key")
	now := time.Now()
	for _, tc := range []struct{ name, data string }{
		{"signed", goldenSigned},
		{"legacy", goldenLegacy},
		{"sha1", goldenSHA1},
		{"empty object", signed(t, `{}`)},
		{"spaces", signed(t, ` { "a" : 1 } `)},
		{"marked for another key", signed(t, `{"_qsessions_imported":"otherkey","a":1}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Row{SessionKey: "k0123456789", SessionData: tc.data}
			before, err := s.Decode(r.SessionData)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Convert(r, ConvertOptions{}); err != nil {
				t.Fatalf("not yet marked: %v", err)
			}
			m, err := s.MarkedData(r, now)
			if err != nil {
				t.Fatal(err)
			}
			after, err := s.Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{}
			for k, v := range before.Values {
				want[k] = v
			}
			want[ImportedKey] = r.SessionKey
			if d := diffValues(after.Values, want); d != "" {
				t.Fatal(d)
			}
			if after.Format != before.Format || after.Algorithm != before.Algorithm {
				t.Fatalf("format changed: %v/%s → %v/%s", before.Format, before.Algorithm, after.Format, after.Algorithm)
			}
			r.SessionData = m
			if again, err := s.MarkedData(r, now); err != nil || again != m {
				t.Fatalf("marking twice changed the data: %v", err)
			}
			if _, err := s.Convert(r, ConvertOptions{}); !errors.Is(err, ErrAlreadyImported) {
				t.Fatalf("Convert after marking: %v", err)
			}
		})
	}
	// A row verified by a fallback key is marked under SECRET_KEY.
	old, _ := NewSigner("old-key")
	v, _ := old.sign([]byte(`{"a":1}`), FormatSigned, "sha256", now)
	m, err := s.MarkedData(Row{SessionKey: "k0123456789", SessionData: v}, now)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := s.Decode(m); err != nil || d.KeyIndex != 0 {
		t.Fatalf("re-signed with key %d, %v", d.KeyIndex, err)
	}
	if _, err := s.MarkedData(Row{SessionKey: "k", SessionData: goldenPickle}, now); !errors.Is(err, ErrPickle) {
		t.Fatalf("pickle: %v", err)
	}
}

func TestReaderArguments(t *testing.T) {
	if _, err := NewReader(nil, "oracle", DjangoSession); err == nil || !strings.Contains(err.Error(), "oracle") {
		t.Fatalf("dialect: %v", err)
	}
	if _, err := NewReader(nil, "postgres", "users; DROP TABLE x"); err == nil || !strings.Contains(err.Error(), "unknown session table") {
		t.Fatalf("table: %v", err)
	}
	r, err := NewReader(nil, "sqlite", QSessionsSession)
	if err != nil || r.Table() != QSessionsSession {
		t.Fatal(err)
	}
	if _, err := r.Batch(context.Background(), "", 0, time.Now()); err == nil {
		t.Fatal("batch size 0 accepted")
	}
	if _, err := (&Signer{}).Mark(context.Background(), nil, "postgres", "other", Row{}, time.Now()); err == nil {
		t.Fatal("Mark of an unknown table accepted")
	}
}
