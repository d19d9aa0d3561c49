package storetest

import (
	"bytes"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qsessions/qsessions/backend"
)

var cases = []testCase{
	{name: "KeyIsHashOfToken", run: testKeyIsHashOfToken},
	{name: "CreateLoadUpdateDelete", run: testCreateLoadUpdateDelete},
	{name: "TimesRoundTrip", run: testTimesRoundTrip},
	{name: "DataRoundTrip", run: testDataRoundTrip},
	{name: "UserLiveSessions", run: testUserLiveSessions},
	{name: "DeleteUserDeletesSessions", run: testDeleteUserDeletesSessions},
	{name: "CreateConflictDrawsFreshKey", run: testCreateConflictDrawsFreshKey},
	{name: "InsertExistingKey", run: testInsertExistingKey},
	{name: "UpdateAfterRevoke", run: testUpdateAfterRevoke},
	{name: "RotateAfterRevoke", run: testRotateAfterRevoke},
	{name: "UnchangedSaveIsNotInterrupted", run: testUnchangedSave},
	{name: "InvalidateDeleteOne", run: testInvalidateDeleteOne},
	{name: "InvalidateDeleteWhere", run: testInvalidateDeleteWhere},
	{name: "InvalidateExpireUpdate", run: testInvalidateExpireUpdate},
	{name: "InvalidateUserDelete", run: testInvalidateUserDelete},
	{name: "InvalidateUserEdgeUpdate", run: testInvalidateUserEdgeUpdate},
	{name: "InvalidateTxCommit", run: testInvalidateTxCommit},
	{name: "InvalidateTxRollback", run: testInvalidateTxRollback},
	{name: "InvalidateNothingForExpired", run: testInvalidateNothingForExpired},
	{name: "InvalidateNothingForStoreWrites", run: testInvalidateNothingForStoreWrites},
	{name: "InvalidateBatches", keyBatch: 3, run: testInvalidateBatches},
	{name: "NoInvalidatorNoQueries", run: testNoInvalidatorNoQueries},
	{name: "ExpiredNeverLoaded", run: testExpiredNeverLoaded},
	{name: "ClearExpired", run: testClearExpired},
	{name: "UserAgentStored", run: testUserAgentStored},
	{name: "IPStored", run: testIPStored},
}

// usec is what a time must read back as: UTC, microseconds.
func usec(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func (s *suite) sameTime(what string, got, wrote time.Time) {
	s.t.Helper()
	want := usec(wrote)
	if !got.Equal(want) {
		s.t.Errorf("%s: read back %s, want %s (written %s)", what,
			got.UTC().Format(time.RFC3339Nano), want.Format(time.RFC3339Nano), wrote.Format(time.RFC3339Nano))
	}
}

// sameRecord checks that got is what storing want gives: the same values,
// times in UTC with microseconds. want's user agent and IP must already be
// in normal form.
func (s *suite) sameRecord(got, want *backend.Record) {
	s.t.Helper()
	if got.Key != want.Key {
		s.t.Errorf("Key = %q, want %q", got.Key, want.Key)
	}
	if !bytes.Equal(got.Data, want.Data) {
		s.t.Errorf("Data = %q, want %q", got.Data, want.Data)
	}
	if got.UserID != want.UserID {
		s.t.Errorf("UserID = %#v, want %#v", got.UserID, want.UserID)
	}
	if got.UserAgent != want.UserAgent {
		s.t.Errorf("UserAgent = %q, want %q", got.UserAgent, want.UserAgent)
	}
	if got.IP != want.IP {
		s.t.Errorf("IP = %q, want %q", got.IP, want.IP)
	}
	for _, c := range []struct {
		name      string
		got, want time.Time
	}{
		{"ExpireDate", got.ExpireDate, want.ExpireDate},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
		{"LastActivity", got.LastActivity, want.LastActivity},
	} {
		s.sameTime(c.name, c.got, c.want)
		if c.got.Location() != time.UTC {
			s.t.Errorf("%s is in %s, want UTC", c.name, c.got.Location())
		}
		if c.got != usec(c.want) {
			s.t.Errorf("%s = %#v, want exactly %#v (==)", c.name, c.got, usec(c.want))
		}
	}
}

func (s *suite) wantKeys(what string, got []string, want ...string) {
	s.t.Helper()
	got = slices.Sorted(slices.Values(got))
	want = slices.Sorted(slices.Values(want))
	if got == nil {
		got = []string{}
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		s.t.Errorf("%s: keys\n  %v\nwant\n  %v", what, short(got), short(want))
	}
}

// wantCalls checks the Invalidator's calls since the last look.
func (s *suite) wantCalls(what string, want ...[]string) {
	s.t.Helper()
	got := s.calls()
	for _, w := range want {
		slices.Sort(w)
	}
	if len(got) != len(want) || !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		s.t.Errorf("%s: Invalidator calls\n  %v\nwant\n  %v", what, shortCalls(got), shortCalls(want))
	}
}

func short(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k[:min(len(k), 8)]
	}
	return out
}

func shortCalls(calls [][]string) [][]string {
	out := make([][]string, len(calls))
	for i, c := range calls {
		out[i] = short(c)
	}
	return out
}

func testKeyIsHashOfToken(s *suite) {
	r := s.record(nil, time.Hour)
	tok, err := s.b.Create(s.ctx, r, s.now())
	if err != nil {
		s.t.Fatal(err)
	}
	if !backend.ValidToken(tok) {
		s.t.Fatalf("token %q is not a valid token", tok)
	}
	keys := s.rawKeys()
	if len(keys) != 1 {
		s.t.Fatalf("%d rows, want 1", len(keys))
	}
	if keys[0] == tok || strings.Contains(keys[0], tok) {
		s.t.Fatalf("session_key holds the token itself")
	}
	if keys[0] != backend.KeyOf(tok) || !backend.ValidKey(keys[0]) {
		s.t.Fatalf("session_key = %q, want KeyOf(token) = %q", keys[0], backend.KeyOf(tok))
	}
	if _, err := s.b.Load(s.ctx, tok, s.now()); !errors.Is(err, backend.ErrNotFound) {
		s.t.Fatalf("Load by the token itself: %v, want ErrNotFound", err)
	}
	got, err := s.b.Load(s.ctx, backend.KeyOf(tok), s.now())
	if err != nil {
		s.t.Fatal(err)
	}
	s.sameRecord(got, r)
}

func testCreateLoadUpdateDelete(s *suite) {
	uid := s.user()
	r := s.record(uid, time.Hour)
	key := s.create(r)
	other := s.live(nil)

	got, err := s.b.Load(s.ctx, key, s.now())
	if err != nil {
		s.t.Fatalf("Load: %v", err)
	}
	s.sameRecord(got, r)

	// A save replaces everything but created_at.
	s.clock.Advance(time.Minute)
	upd := got.Clone()
	upd.Data = []byte("changed")
	upd.UserID = nil
	upd.UserAgent = ""
	upd.IP = ""
	upd.ExpireDate = s.now().Add(2 * time.Hour)
	upd.UpdatedAt = s.now()
	upd.LastActivity = s.now()
	upd.CreatedAt = s.now() // must be ignored
	if err := s.b.Save(s.ctx, upd, s.now()); err != nil {
		s.t.Fatalf("Save: %v", err)
	}
	want := upd.Clone()
	want.CreatedAt = r.CreatedAt
	s.sameRecord(s.get(key), want)
	if row, _ := s.rawRow(key); row.UserAgent.Valid || row.IP.Valid || row.HasUser {
		s.t.Errorf("empty user agent, IP and user are stored as %v, %v, user %v; want NULLs", row.UserAgent, row.IP, row.HasUser)
	}

	// And back to a user.
	upd.UserID = uid
	upd.UserAgent = "curl/8.0"
	upd.IP = "2001:db8::1"
	if err := s.b.Save(s.ctx, upd, s.now()); err != nil {
		s.t.Fatalf("Save: %v", err)
	}
	s.sameRecord(s.get(key), withCreated(upd, r.CreatedAt))
	sessions, err := s.b.UserSessions(s.ctx, uid, s.now())
	if err != nil || len(sessions) != 1 || sessions[0].Key != key {
		s.t.Fatalf("UserSessions = %v, %v; want the one session", sessions, err)
	}

	n, err := s.b.Delete(s.ctx, key)
	if err != nil || n != 1 {
		s.t.Fatalf("Delete = %d, %v; want 1", n, err)
	}
	if _, err := s.b.Load(s.ctx, key, s.now()); !errors.Is(err, backend.ErrNotFound) {
		s.t.Fatalf("Load after Delete: %v, want ErrNotFound", err)
	}
	if n, err := s.b.Delete(s.ctx, key); err != nil || n != 0 {
		s.t.Fatalf("second Delete = %d, %v; want 0, nil", n, err)
	}
	s.wantKeys("after Delete", s.rawKeys(), other)

	// Many keys at once, some missing.
	k1, k2 := s.live(nil), s.live(uid)
	n, err = s.Store.Delete(s.ctx, k1, backend.KeyOf("missing"), k2, other)
	if err != nil || n != 3 {
		s.t.Fatalf("Delete of 3 of 4 keys = %d, %v", n, err)
	}
	s.wantKeys("after deleting all", s.rawKeys())
}

func withCreated(r *backend.Record, created time.Time) *backend.Record {
	w := r.Clone()
	w.CreatedAt = created
	return w
}

// testTimesRoundTrip: times written in a non-UTC zone with nanoseconds read
// back as the same instants in UTC with microseconds, through the Store and
// in the raw columns, on insert and on update.
func testTimesRoundTrip(s *suite) {
	// Nanoseconds that a database rounding instead of truncating would
	// carry into the next second.
	base := time.Date(2031, 7, 4, 23, 59, 58, 999_999_999, Zone)
	r := &backend.Record{
		Data:         []byte("t"),
		ExpireDate:   base.Add(time.Hour),
		CreatedAt:    time.Date(2026, 1, 1, 0, 0, 0, 1_000, Zone),
		UpdatedAt:    time.Date(2026, 3, 14, 15, 9, 26, 535_897_999, Zone),
		LastActivity: time.Date(2026, 12, 31, 23, 59, 59, 999_999_600, time.FixedZone("-12", -12*3600)),
	}
	key := s.create(r)
	check := func(r *backend.Record) {
		s.t.Helper()
		got := s.get(key)
		s.sameRecord(got, r)
		row, ok := s.rawRow(key)
		if !ok {
			s.t.Fatal("row is gone")
		}
		s.sameTime("raw expire_date", row.ExpireDate, r.ExpireDate)
		s.sameTime("raw created_at", row.CreatedAt, r.CreatedAt)
		s.sameTime("raw updated_at", row.UpdatedAt, r.UpdatedAt)
		s.sameTime("raw last_activity", row.LastAct, r.LastActivity)
	}
	check(r)

	u := r.Clone()
	u.ExpireDate = time.Date(2040, 2, 29, 12, 0, 0, 123_456_789, Zone) // past 2038
	u.UpdatedAt = s.now()
	u.LastActivity = s.now().Add(time.Nanosecond)
	if err := s.Store.Update(s.ctx, u, s.now()); err != nil {
		s.t.Fatal(err)
	}
	check(u)
	// Times far from now: the expiry past 2038 is still in the future.
	if n, _, err := s.Store.DeleteExpired(s.ctx, time.Time{}, time.Date(2039, 1, 1, 0, 0, 0, 0, Zone), 10); err != nil || n != 0 {
		s.t.Fatalf("DeleteExpired in 2039 = %d, %v; want 0", n, err)
	}
}

func testDataRoundTrip(s *suite) {
	big := make([]byte, 300<<10) // over MySQL's blob (64 KiB), under mediumblob
	if _, err := io.ReadFull(crand.Reader, big); err != nil {
		s.t.Fatal(err)
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, data := range [][]byte{nil, {}, {0}, all, big} {
		r := s.record(nil, time.Hour)
		r.Data = data
		key := s.create(r)
		if got := s.get(key); !bytes.Equal(got.Data, data) {
			s.t.Errorf("%d bytes of data read back as %d bytes", len(data), len(got.Data))
		}
		r.Data = append(slices.Clone(data), 'x')
		if err := s.Store.Update(s.ctx, r, s.now()); err != nil {
			s.t.Fatalf("Update with %d bytes: %v", len(r.Data), err)
		}
		if got := s.get(key); !bytes.Equal(got.Data, r.Data) {
			s.t.Errorf("%d bytes of updated data read back as %d bytes", len(r.Data), len(got.Data))
		}
		r.Data = data
		if err := s.Store.Update(s.ctx, r, s.now()); err != nil {
			s.t.Fatalf("Update with %d bytes: %v", len(r.Data), err)
		}
	}
}

func testUserLiveSessions(s *suite) {
	a, b := s.user(), s.user()
	r1 := s.record(a, time.Hour)
	r1.LastActivity = s.now().Add(-3 * time.Minute)
	r2 := s.record(a, 10*time.Minute)
	r2.LastActivity = s.now().Add(-time.Minute)
	r3 := s.record(a, 2*time.Hour)
	r3.LastActivity = r1.LastActivity
	a1, a2, a3 := s.create(r1), s.create(r2), s.create(r3)
	s.expired(a)
	b1 := s.live(b)
	s.expired(b)
	s.live(nil)

	live := func(uid any) []string {
		s.t.Helper()
		keys, err := s.LiveSessions(s.ctx, uid, s.utcNow())
		if err != nil {
			s.t.Fatalf("LiveSessions: %v", err)
		}
		return keys
	}
	s.wantKeys("QuerySessions of a", live(a), a1, a2, a3)
	s.wantKeys("QuerySessions of b", live(b), b1)

	// The Store's listing: newest activity first, then by key.
	sessions, err := s.Store.UserSessions(s.ctx, a, s.now())
	if err != nil {
		s.t.Fatal(err)
	}
	order := []string{a2, min(a1, a3), max(a1, a3)}
	var got []string
	for _, r := range sessions {
		got = append(got, r.Key)
	}
	if !slices.Equal(got, order) {
		s.t.Errorf("UserSessions order %v, want %v", short(got), short(order))
	}
	for _, r := range sessions {
		if r.Key == a2 {
			s.sameRecord(r, r2)
		}
	}
	if rs, err := s.Store.UserSessions(s.ctx, nil, s.now()); err != nil || len(rs) != 0 {
		s.t.Errorf("UserSessions(nil) = %d sessions, %v; want none", len(rs), err)
	}

	// Ten minutes on, r2 has expired.
	s.clock.Advance(10*time.Minute + time.Second)
	s.wantKeys("QuerySessions of a, 10 min later", live(a), a1, a3)
	if sessions, err = s.Store.UserSessions(s.ctx, a, s.now()); err != nil || len(sessions) != 2 {
		s.t.Errorf("UserSessions 10 min later = %d sessions, %v; want 2", len(sessions), err)
	}
}

func testDeleteUserDeletesSessions(s *suite) {
	a, b := s.user(), s.user()
	gone := []string{s.live(a), s.live(a), s.expired(a)}
	kept := []string{s.live(b), s.expired(b), s.live(nil)}
	if err := s.DeleteUser(s.ctx, a); err != nil {
		s.t.Fatalf("DeleteUser: %v", err)
	}
	s.wantKeys("rows after deleting a user", s.rawKeys(), kept...)
	for _, k := range gone {
		if _, err := s.Store.Get(s.ctx, k, s.now()); !errors.Is(err, backend.ErrNotFound) {
			s.t.Errorf("Get of a deleted user's session: %v, want ErrNotFound", err)
		}
	}
	if rs, err := s.Store.UserSessions(s.ctx, a, s.now()); err != nil || len(rs) != 0 {
		s.t.Errorf("UserSessions of a deleted user = %d, %v", len(rs), err)
	}
}

// repeat is a token source that yields b once per copy, then crypto/rand.
func repeat(b []byte, copies int) io.Reader {
	rs := make([]io.Reader, 0, copies+1)
	for range copies {
		rs = append(rs, bytes.NewReader(b))
	}
	return io.MultiReader(append(rs, crand.Reader)...)
}

func testCreateConflictDrawsFreshKey(s *suite) {
	same := bytes.Repeat([]byte{0x5a, 0xa5}, 16)
	sameTok := base64.RawURLEncoding.EncodeToString(same)
	b := &backend.DB{Store: s.Store, Rand: repeat(same, 2)}

	r1 := s.record(nil, time.Hour)
	tok1, err := b.Create(s.ctx, r1, s.now())
	if err != nil || tok1 != sameTok {
		s.t.Fatalf("first Create = %q, %v; want %q", tok1, err, sameTok)
	}
	s.Counter.Reset()
	r2 := s.record(nil, time.Hour)
	tok2, err := b.Create(s.ctx, r2, s.now())
	if err != nil {
		s.t.Fatalf("Create on a taken key: %v", err)
	}
	if tok2 == tok1 || !backend.ValidToken(tok2) || r2.Key != backend.KeyOf(tok2) {
		s.t.Fatalf("Create on a taken key gave token %q (key %.8s), want a fresh one", tok2, r2.Key)
	}
	if n := s.statements("INSERT"); n != 2 {
		s.t.Errorf("%d INSERTs, want 2: the conflicting one and the retry", n)
	}
	if n := s.statements("UPDATE") + s.statements("DELETE"); n != 0 {
		s.t.Errorf("%d UPDATE/DELETE statements on a conflict, want 0 (no upsert)", n)
	}
	s.wantKeys("rows", s.rawKeys(), backend.KeyOf(tok1), backend.KeyOf(tok2))
	s.sameRecord(s.get(backend.KeyOf(tok1)), r1)
	s.sameRecord(s.get(backend.KeyOf(tok2)), r2)

	// Rotate on a taken key redraws too.
	b.Rand = repeat(same, 1)
	r3 := s.record(nil, time.Hour)
	tok3, err := b.Rotate(s.ctx, backend.KeyOf(tok2), r3, s.now())
	if err != nil {
		s.t.Fatalf("Rotate on a taken key: %v", err)
	}
	if tok3 == tok1 || tok3 == tok2 || r3.Key != backend.KeyOf(tok3) {
		s.t.Fatalf("Rotate on a taken key gave token %q, want a fresh one", tok3)
	}
	s.wantKeys("rows after Rotate", s.rawKeys(), backend.KeyOf(tok1), backend.KeyOf(tok3))
	s.sameRecord(s.get(backend.KeyOf(tok1)), r1)
	s.sameRecord(s.get(backend.KeyOf(tok3)), r3)
}

func testInsertExistingKey(s *suite) {
	r1 := s.record(nil, time.Hour)
	k1 := s.create(r1)
	old := s.record(nil, -time.Hour)
	kOld := s.create(old)

	for _, key := range []string{k1, kOld} {
		dup := s.record(s.user(), 5*time.Hour)
		dup.Key = key
		if err := s.Store.Insert(s.ctx, dup); !errors.Is(err, backend.ErrKeyExists) {
			s.t.Errorf("Insert on an existing key: %v, want ErrKeyExists", err)
		}
	}
	s.sameRecord(s.get(k1), r1)
	if row, _ := s.rawRow(kOld); !bytes.Equal(row.Data, old.Data) || row.HasUser {
		s.t.Errorf("Insert on an existing expired key changed it")
	}

	// Rotate onto a taken key: ErrKeyExists, and the old session stays.
	r2 := s.record(nil, time.Hour)
	k2 := s.create(r2)
	moved := s.record(nil, time.Hour)
	moved.Key = k1
	if err := s.Store.Rotate(s.ctx, k2, moved, s.now()); !errors.Is(err, backend.ErrKeyExists) {
		s.t.Fatalf("Rotate onto a taken key: %v, want ErrKeyExists", err)
	}
	s.sameRecord(s.get(k2), r2)
	s.sameRecord(s.get(k1), r1)
	s.wantKeys("rows", s.rawKeys(), k1, k2, kOld)
}

func testUpdateAfterRevoke(s *suite) {
	uid := s.user()
	revokes := []struct {
		name   string
		revoke func(key string)
	}{
		{"ent DeleteOneID", func(key string) {
			if err := s.DeleteByKey(s.ctx, key); err != nil {
				s.t.Fatal(err)
			}
		}},
		{"Store.Delete", func(key string) {
			if n, err := s.Store.Delete(s.ctx, key); err != nil || n != 1 {
				s.t.Fatalf("Delete = %d, %v", n, err)
			}
		}},
		{"deleting the user", func(string) {
			if err := s.DeleteUser(s.ctx, uid); err != nil {
				s.t.Fatal(err)
			}
		}},
	}
	for _, rv := range revokes {
		key := s.live(uid)
		loaded, err := s.b.Load(s.ctx, key, s.now())
		if err != nil {
			s.t.Fatal(err)
		}
		rv.revoke(key)
		loaded.Data = []byte("changes of the request")
		loaded.UpdatedAt = s.now()
		if err := s.b.Save(s.ctx, loaded, s.now()); !errors.Is(err, backend.ErrSessionInterrupted) {
			s.t.Errorf("Save after a revoke by %s: %v, want ErrSessionInterrupted", rv.name, err)
		}
		s.wantKeys("rows after saving a session revoked by "+rv.name, s.rawKeys())
	}

	// Expired between load and save: interrupted, and the row is not
	// written.
	r := s.record(nil, time.Minute)
	key := s.create(r)
	loaded := s.get(key)
	s.clock.Advance(2 * time.Minute)
	loaded.Data = []byte("late")
	loaded.ExpireDate = s.now().Add(time.Hour)
	if err := s.b.Save(s.ctx, loaded, s.now()); !errors.Is(err, backend.ErrSessionInterrupted) {
		s.t.Errorf("Save of an expired session: %v, want ErrSessionInterrupted", err)
	}
	if row, ok := s.rawRow(key); !ok || !bytes.Equal(row.Data, r.Data) || !row.ExpireDate.Equal(usec(r.ExpireDate)) {
		s.t.Errorf("Save of an expired session wrote it (present %v)", ok)
	}
	if _, err := s.b.Load(s.ctx, key, s.now()); !errors.Is(err, backend.ErrNotFound) {
		s.t.Errorf("Load of the expired session: %v, want ErrNotFound", err)
	}
}

func testRotateAfterRevoke(s *suite) {
	uid := s.user()
	key := s.live(uid)
	loaded := s.get(key)
	if err := s.DeleteByKey(s.ctx, key); err != nil {
		s.t.Fatal(err)
	}
	tok, err := s.b.Rotate(s.ctx, key, loaded.Clone(), s.now())
	if !errors.Is(err, backend.ErrSessionInterrupted) {
		s.t.Fatalf("Rotate after a revoke = %q, %v; want ErrSessionInterrupted", tok, err)
	}
	s.wantKeys("rows after rotating a revoked session", s.rawKeys())

	// Rotating an expired session: interrupted, nothing written.
	r := s.record(uid, time.Minute)
	key = s.create(r)
	s.clock.Advance(time.Hour)
	nr := r.Clone()
	nr.ExpireDate = s.now().Add(time.Hour)
	if _, err := s.b.Rotate(s.ctx, key, nr, s.now()); !errors.Is(err, backend.ErrSessionInterrupted) {
		s.t.Fatalf("Rotate of an expired session: %v, want ErrSessionInterrupted", err)
	}
	s.wantKeys("rows after rotating an expired session", s.rawKeys(), key)

	// And a live one rotates: old key gone, new key holds the record.
	s.clock.Advance(-time.Hour)
	nr = r.Clone()
	nr.Data = []byte("rotated")
	tok, err = s.b.Rotate(s.ctx, key, nr, s.now())
	if err != nil {
		s.t.Fatal(err)
	}
	s.wantKeys("rows after rotating", s.rawKeys(), backend.KeyOf(tok))
	s.sameRecord(s.get(backend.KeyOf(tok)), nr)
}

// testUnchangedSave: a save that changes no column still finds its row
// (MySQL reports changed, not matched, rows unless told otherwise).
func testUnchangedSave(s *suite) {
	r := s.record(s.user(), time.Hour)
	key := s.create(r)
	for i := range 2 {
		if err := s.b.Save(s.ctx, r, s.now()); err != nil {
			s.t.Fatalf("save #%d with unchanged values: %v", i+1, err)
		}
	}
	s.sameRecord(s.get(key), r)
}

func testInvalidateDeleteOne(s *suite) {
	k1, k2, k3 := s.live(nil), s.live(s.user()), s.expired(nil)
	s.Store.AddInvalidator(s.rec)
	if err := s.DeleteByKey(s.ctx, k1); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("DeleteOneID of a live session", []string{k1})
	if err := s.DeleteByKey(s.ctx, k3); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("DeleteOneID of an expired session")
	s.wantKeys("rows", s.rawKeys(), k2)
}

func testInvalidateDeleteWhere(s *suite) {
	uid := s.user()
	agent := func(uid any, ttl time.Duration, ua string) string {
		r := s.record(uid, ttl)
		r.UserAgent = ua
		return s.create(r)
	}
	x1 := agent(uid, time.Hour, "Agent X")
	x2 := agent(nil, time.Minute, "Agent X")
	agent(nil, -time.Minute, "Agent X")
	y1 := agent(uid, time.Hour, "Agent Y")
	s.Store.AddInvalidator(s.rec)
	n, err := s.DeleteByUserAgent(s.ctx, "Agent X")
	if err != nil || n != 3 {
		s.t.Fatalf("Delete().Where(user_agent) = %d, %v; want 3", n, err)
	}
	s.wantCalls("Delete().Where(user_agent = X)", []string{x1, x2})
	s.wantKeys("rows", s.rawKeys(), y1)
	if n, err = s.DeleteByUserAgent(s.ctx, "Agent X"); err != nil || n != 0 {
		s.t.Fatalf("second delete = %d, %v", n, err)
	}
	s.wantCalls("a delete of nothing")
}

func testInvalidateExpireUpdate(s *suite) {
	k1, k2 := s.live(s.user()), s.live(nil)
	k3 := s.expired(nil)
	s.Store.AddInvalidator(s.rec)
	n, err := s.SetExpireDate(s.ctx, k1, s.utcNow().Add(-time.Second))
	if err != nil || n != 1 {
		s.t.Fatalf("SetExpireDate = %d, %v", n, err)
	}
	s.wantCalls("an update that ends a session", []string{k1})
	if _, err := s.Store.Get(s.ctx, k1, s.now()); !errors.Is(err, backend.ErrNotFound) {
		s.t.Errorf("Get of a session expired through ent: %v, want ErrNotFound", err)
	}
	if n, err := s.SetExpireDate(s.ctx, k3, s.utcNow().Add(-time.Hour)); err != nil || n != 1 {
		s.t.Fatalf("SetExpireDate = %d, %v", n, err)
	}
	s.wantCalls("an update of an expired session")
	s.get(k2)
}

func testInvalidateUserDelete(s *suite) {
	a, b, c := s.user(), s.user(), s.user()
	a1, a2 := s.live(a), s.live(a)
	s.expired(a)
	b1 := s.live(b)
	s.Store.AddInvalidator(s.rec)
	if err := s.DeleteUser(s.ctx, a); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("deleting a user", []string{a1, a2})
	if err := s.DeleteUser(s.ctx, c); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("deleting a user without sessions")
	s.wantKeys("rows", s.rawKeys(), b1)
}

// testInvalidateUserEdgeUpdate: changing a user's sessions edge from the
// user's side (ent runs UPDATE qsessions_session SET user_id = ... without
// the session hooks) reports the live sessions whose owner changed.
func testInvalidateUserEdgeUpdate(s *suite) {
	u, v := s.user(), s.user()
	a1, a2 := s.live(u), s.live(u)
	a3 := s.expired(u)
	v1 := s.live(v)
	s.Store.AddInvalidator(s.rec)
	if err := s.ClearUserSessions(s.ctx, u); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("ClearSessions on a user", []string{a1, a2})
	if r := s.get(a1); r.UserID != nil {
		s.t.Errorf("ClearSessions left user %v on the session", r.UserID)
	}
	s.wantKeys("rows", s.rawKeys(), a1, a2, a3, v1)

	b1, b2 := s.live(u), s.live(u)
	if err := s.RemoveUserSession(s.ctx, u, b1); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("RemoveSessionIDs on a user", []string{b1})
	// ent attaches only sessions without a user (O2M).
	if err := s.AddUserSession(s.ctx, v, b1); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("AddSessionIDs of an anonymous session", []string{b1})
	if r := s.get(b1); r.UserID != v {
		s.t.Errorf("the attached session belongs to %v, want %v", r.UserID, v)
	}
	if err := s.AddUserSession(s.ctx, v, a3); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("AddSessionIDs of an expired session")
	if keys, err := s.LiveSessions(s.ctx, v, s.utcNow()); err != nil {
		s.t.Fatal(err)
	} else {
		s.wantKeys("v's live sessions", keys, v1, b1)
	}
	if keys, err := s.LiveSessions(s.ctx, u, s.utcNow()); err != nil {
		s.t.Fatal(err)
	} else {
		s.wantKeys("u's live sessions", keys, b2)
	}
}

func testInvalidateTxCommit(s *suite) {
	k1, k2 := s.live(nil), s.live(nil)
	s.Store.AddInvalidator(s.rec)
	end, err := s.DeleteByKeyInTx(s.ctx, k1)
	if err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("delete inside a transaction, before the commit", []string{k1})
	if err := end(true); err != nil {
		s.t.Fatalf("commit: %v", err)
	}
	s.wantCalls("the commit", []string{k1})
	s.wantKeys("rows after the commit", s.rawKeys(), k2)
}

func testInvalidateTxRollback(s *suite) {
	k1, k2 := s.live(nil), s.live(nil)
	s.Store.AddInvalidator(s.rec)
	end, err := s.DeleteByKeyInTx(s.ctx, k1)
	if err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("delete inside a transaction, before the rollback", []string{k1})
	if err := end(false); err != nil {
		s.t.Fatalf("rollback: %v", err)
	}
	s.wantCalls("the rollback")
	s.wantKeys("rows after the rollback", s.rawKeys(), k1, k2)
	s.get(k1)
}

func testInvalidateNothingForExpired(s *suite) {
	uid := s.user()
	var old []string
	for range 3 {
		r := s.record(uid, -time.Minute)
		r.UserAgent = "Old Agent"
		old = append(old, s.create(r))
	}
	// One at exactly now is expired too (expire_date > now is live).
	edge := s.record(nil, 0)
	edge.ExpireDate = s.now()
	edge.UserAgent = "Old Agent"
	old = append(old, s.create(edge))
	keep := s.live(nil)
	s.Store.AddInvalidator(s.rec)
	n, err := s.DeleteByUserAgent(s.ctx, "Old Agent")
	if err != nil || n != len(old) {
		s.t.Fatalf("delete of expired rows = %d, %v; want %d", n, err, len(old))
	}
	s.wantCalls("a delete of only expired rows")

	for range 3 {
		s.expired(uid)
	}
	if n, err := backend.ClearExpired(s.ctx, s.Store, s.now(), 2, nil); err != nil || n != 3 {
		s.t.Fatalf("ClearExpired = %d, %v", n, err)
	}
	s.expired(uid)
	if err := s.DeleteUser(s.ctx, uid); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("clearing expired rows and deleting a user with only expired sessions")
	s.wantKeys("rows", s.rawKeys(), keep)
}

func testInvalidateNothingForStoreWrites(s *suite) {
	s.Store.AddInvalidator(s.rec)
	uid := s.user()
	r := s.record(uid, time.Hour)
	s.Counter.Reset()
	key := s.create(r)
	if n := s.Counter.Count(); n != 1 {
		s.t.Errorf("Create ran %d statements, want 1: %v", n, s.Counter.Queries())
	}
	s.Counter.Reset()
	r.Data = []byte("saved")
	r.ExpireDate = s.now().Add(-time.Minute) // a save that ends the session
	if err := s.b.Save(s.ctx, r, s.now()); err != nil {
		s.t.Fatal(err)
	}
	if n := s.Counter.Count(); n != 1 {
		s.t.Errorf("Save ran %d statements, want 1: %v", n, s.Counter.Queries())
	}
	key2 := s.live(uid)
	s.Counter.Reset()
	tok, err := s.b.Rotate(s.ctx, key2, s.record(uid, time.Hour), s.now())
	if err != nil {
		s.t.Fatal(err)
	}
	if n := s.Counter.Count(); n != 2 {
		s.t.Errorf("Rotate ran %d statements, want 2: %v", n, s.Counter.Queries())
	}
	s.Counter.Reset()
	if n, err := s.b.Delete(s.ctx, backend.KeyOf(tok)); err != nil || n != 1 {
		s.t.Fatalf("Delete = %d, %v", n, err)
	}
	if n := s.Counter.Count(); n != 1 {
		s.t.Errorf("Delete ran %d statements, want 1: %v", n, s.Counter.Queries())
	}
	if n, err := s.b.ClearExpired(s.ctx, s.now()); err != nil || n != 1 {
		s.t.Fatalf("ClearExpired = %d, %v; want 1 (%.8s)", n, err, key)
	}
	s.wantCalls("the Store's own writes")
	s.wantKeys("rows", s.rawKeys())
}

func testInvalidateBatches(s *suite) {
	var live []string
	for range 10 {
		r := s.record(s.user(), time.Hour)
		r.UserAgent = "Batch Agent"
		live = append(live, s.create(r))
	}
	for range 2 {
		r := s.record(nil, -time.Hour)
		r.UserAgent = "Batch Agent"
		s.create(r)
	}
	other := s.live(nil)
	s.Store.AddInvalidator(s.rec)
	s.Counter.Reset()
	n, err := s.DeleteByUserAgent(s.ctx, "Batch Agent")
	if err != nil || n != 12 {
		s.t.Fatalf("delete = %d, %v; want 12", n, err)
	}
	calls := s.calls()
	var all []string
	var sizes []int
	for _, c := range calls {
		sizes = append(sizes, len(c))
		all = append(all, c...)
	}
	if !slices.Equal(sizes, []int{3, 3, 3, 1}) {
		s.t.Errorf("Invalidator call sizes %v, want [3 3 3 1] (WithKeyBatch(3), 10 live sessions)", sizes)
	}
	s.wantKeys("keys the Invalidator got", all, live...)
	if len(all) != len(slices.Compact(slices.Sorted(slices.Values(all)))) {
		s.t.Errorf("a key was reported twice: %v", shortCalls(calls))
	}
	if sel, del := s.statements("SELECT"), s.statements("DELETE"); sel != 4 || del != 1 {
		s.t.Errorf("%d SELECTs and %d DELETEs, want 4 key batches and 1 DELETE: %v", sel, del, s.Counter.Queries())
	}
	s.wantKeys("rows", s.rawKeys(), other)
}

func testNoInvalidatorNoQueries(s *suite) {
	k1, k2 := s.live(nil), s.live(nil)
	s.Counter.Reset()
	if err := s.DeleteByKey(s.ctx, k1); err != nil {
		s.t.Fatal(err)
	}
	if n := s.Counter.Count(); n != 1 {
		s.t.Errorf("a delete with no Invalidator ran %d statements, want 1: %v", n, s.Counter.Queries())
	}
	s.Store.AddInvalidator(s.rec)()
	s.Counter.Reset()
	if err := s.DeleteByKey(s.ctx, k2); err != nil {
		s.t.Fatal(err)
	}
	if n := s.Counter.Count(); n != 1 {
		s.t.Errorf("a delete after the Invalidator was removed ran %d statements, want 1", n)
	}
	s.wantCalls("no Invalidator")
}

func testExpiredNeverLoaded(s *suite) {
	uid := s.user()
	r := s.record(uid, 10*time.Second)
	key := s.create(r)
	exp := usec(r.ExpireDate).In(Zone) // the stored instant, in a non-UTC zone
	for _, c := range []struct {
		now  time.Time
		live bool
	}{
		{exp.Add(-time.Microsecond), true},
		{exp, false},
		{exp.Add(time.Microsecond), false},
		{exp.Add(time.Hour), false},
	} {
		_, err := s.b.Load(s.ctx, key, c.now)
		if c.live && err != nil || !c.live && !errors.Is(err, backend.ErrNotFound) {
			s.t.Errorf("Load at expiry%+v: %v, want live=%v", c.now.Sub(exp), err, c.live)
		}
		rs, err := s.b.UserSessions(s.ctx, uid, c.now)
		if err != nil || (len(rs) == 1) != c.live || len(rs) > 1 {
			s.t.Errorf("UserSessions at expiry%+v: %d, %v; want live=%v", c.now.Sub(exp), len(rs), err, c.live)
		}
		keys, err := s.LiveSessions(s.ctx, uid, c.now.UTC())
		if err != nil || (len(keys) == 1) != c.live {
			s.t.Errorf("QuerySessions at expiry%+v: %v, %v; want live=%v", c.now.Sub(exp), short(keys), err, c.live)
		}
	}
	s.clock.Set(exp.Add(time.Second))
	if err := s.b.Save(s.ctx, r, s.now()); !errors.Is(err, backend.ErrSessionInterrupted) {
		s.t.Errorf("Save after expiry: %v, want ErrSessionInterrupted", err)
	}
}

func testClearExpired(s *suite) {
	const nExpired, nLive, chunk = 10_000, 100, 1000
	now := s.utcNow()
	var live []string
	recs := make([]*backend.Record, 0, chunk)
	flush := func() {
		if err := s.CreateBulk(s.ctx, recs); err != nil {
			s.t.Fatalf("CreateBulk: %v", err)
		}
		recs = recs[:0]
	}
	for i := range nExpired + nLive {
		exp := now.Add(-time.Duration(i+1) * time.Second)
		if i >= nExpired {
			exp = now.Add(time.Duration(i) * time.Second)
		}
		r := &backend.Record{
			Key:          backend.KeyOf(fmt.Sprintf("row %d", i)),
			Data:         []byte{byte(i)},
			ExpireDate:   exp,
			CreatedAt:    now,
			UpdatedAt:    now,
			LastActivity: now,
		}
		if i >= nExpired {
			live = append(live, r.Key)
		}
		recs = append(recs, r)
		if len(recs) == chunk {
			flush()
		}
	}
	if len(recs) > 0 {
		flush()
	}
	if got := len(s.rawKeys()); got != nExpired+nLive {
		s.t.Fatalf("%d rows inserted, want %d", got, nExpired+nLive)
	}

	s.Store.AddInvalidator(s.rec)
	s.Counter.Reset()
	var progress []int
	n, err := backend.ClearExpired(s.ctx, s.Store, s.now(), 1000, func(total int) { progress = append(progress, total) })
	if err != nil || n != nExpired {
		s.t.Fatalf("ClearExpired = %d, %v; want %d", n, err, nExpired)
	}
	if d := s.statements("DELETE"); d != nExpired/1000 {
		s.t.Errorf("%d DELETE statements, want %d (batches of 1000)", d, nExpired/1000)
	}
	for _, q := range s.Counter.Queries() {
		if strings.HasPrefix(strings.ToUpper(q.SQL), "DELETE") && len(q.Args) > 1000+1 {
			s.t.Errorf("a DELETE with %d parameters, want at most 1001", len(q.Args))
		}
	}
	if len(progress) != 10 || progress[9] != nExpired {
		s.t.Errorf("progress %v, want 10 batches up to %d", progress, nExpired)
	}
	s.wantKeys("rows left", s.rawKeys(), live...)
	s.wantCalls("clearing expired rows")

	// Nothing left to clear: one SELECT, no DELETE.
	s.Counter.Reset()
	if n, _, err := s.Store.DeleteExpired(s.ctx, time.Time{}, s.now(), 1000); err != nil || n != 0 {
		s.t.Fatalf("DeleteExpired = %d, %v", n, err)
	}
	if d := s.statements("DELETE"); d != 0 {
		s.t.Errorf("%d DELETEs with nothing to clear", d)
	}
}

// normUA is the stored form of a user agent, worked out independently of
// backend.NormalizeUserAgent: a run of invalid bytes and a NUL (which
// Postgres rejects in text) each become U+FFFD, then at most 300 characters.
func normUA(ua string) string {
	var out []rune
	for i := 0; i < len(ua) && len(out) < 300; {
		r, size := utf8.DecodeRuneInString(ua[i:])
		if r == 0 {
			r = utf8.RuneError
		}
		if r == utf8.RuneError && size <= 1 {
			// a run of invalid bytes is one U+FFFD
			for i < len(ua) {
				if r, size := utf8.DecodeRuneInString(ua[i:]); r != utf8.RuneError || size > 1 {
					break
				}
				i++
			}
			out = append(out, utf8.RuneError)
			continue
		}
		out = append(out, r)
		i += size
	}
	return string(out)
}

func testUserAgentStored(s *suite) {
	var b strings.Builder
	pieces := []string{"a", "é", "😀", "\xff", "中", "\xc3", "Z", "\xe2\x82"}
	for i := range 500 {
		b.WriteString(pieces[i%len(pieces)])
	}
	ua := b.String()
	if utf8.ValidString(ua) || utf8.RuneCountInString(strings.ToValidUTF8(ua, "?")) != 500 {
		s.t.Fatal("test user agent is not 500 characters of invalid UTF-8")
	}
	want := normUA(ua)
	if !utf8.ValidString(want) || utf8.RuneCountInString(want) != 300 {
		s.t.Fatal("normUA is wrong")
	}
	check := func(what, key, want string) {
		s.t.Helper()
		row, ok := s.rawRow(key)
		if !ok {
			s.t.Fatalf("%s: no row", what)
		}
		got := row.UserAgent.String
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > 300 || got != want {
			s.t.Errorf("%s: stored user agent (valid %v, %d characters)\n  %q\nwant\n  %q",
				what, utf8.ValidString(got), utf8.RuneCountInString(got), got, want)
		}
		if g := s.get(key).UserAgent; g != want {
			s.t.Errorf("%s: loaded user agent %q, want %q", what, g, want)
		}
	}
	r := s.record(nil, time.Hour)
	r.UserAgent = ua
	key := s.create(r)
	check("insert", key, want)

	// Saves and rotations store the same normal form.
	r.UserAgent = "\xfe" + strings.Repeat("🙂", 400)
	if err := s.b.Save(s.ctx, r, s.now()); err != nil {
		s.t.Fatal(err)
	}
	check("update", key, normUA(r.UserAgent))
	r.UserAgent = strings.Repeat("x", 299) + "éé"
	tok, err := s.b.Rotate(s.ctx, key, r, s.now())
	if err != nil {
		s.t.Fatal(err)
	}
	check("rotate", backend.KeyOf(tok), strings.Repeat("x", 299)+"é")

	// NUL is valid UTF-8 but no Postgres text: every database stores the
	// same replacement.
	r.UserAgent = "Mozilla/5.0\x00 (\x00\x00)"
	key = s.create(r)
	check("NUL", key, "Mozilla/5.0\uFFFD (\uFFFD\uFFFD)")
}

func testIPStored(s *suite) {
	for _, c := range []struct{ in, want string }{
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"fe80::1%eth0", "fe80::1"},
		{"fe80::abcd:1%enp0s31f6", "fe80::abcd:1"},
		{"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
		{"10.0.0.1", "10.0.0.1"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"", ""},
		{"not an address", ""},
	} {
		r := s.record(nil, time.Hour)
		r.IP = "127.0.0.1"
		key := s.create(r)
		r.IP = c.in
		if err := s.b.Save(s.ctx, r, s.now()); err != nil {
			s.t.Fatalf("Save with IP %q: %v", c.in, err)
		}
		r2 := s.record(nil, time.Hour)
		r2.IP = c.in
		key2 := s.create(r2)
		for _, k := range []string{key, key2} {
			row, _ := s.rawRow(k)
			if row.IP.String != c.want || row.IP.Valid != (c.want != "") {
				s.t.Errorf("IP %q stored as %v, want %q", c.in, row.IP, c.want)
			}
			if got := s.get(k).IP; got != c.want {
				s.t.Errorf("IP %q loaded as %q, want %q", c.in, got, c.want)
			}
		}
	}
}
