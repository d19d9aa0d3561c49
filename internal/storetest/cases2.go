package storetest

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

func init() {
	cases = append(cases,
		testCase{name: "TouchOncePerInterval", run: testTouch},
		testCase{name: "TouchConcurrent", run: testTouchConcurrent},
		testCase{name: "ExcessKeys", run: testExcessKeys},
		testCase{name: "FindByPublicID", run: testFind},
		testCase{name: "DeleteExpiredCursor", run: testDeleteExpiredCursor},
		testCase{name: "SeveralInvalidators", run: testSeveralInvalidators},
		testCase{name: "CheckTable", run: testCheck},
	)
}

func testTouch(s *suite) {
	r := s.record(s.user(), time.Hour)
	key := s.create(r)
	stored := s.get(key)
	t0 := stored.LastActivity

	s.clock.Advance(2 * time.Minute)
	now := s.now()
	cutoff := now.Add(-time.Minute) // t0 is a minute before create's now: before the cutoff
	u := stored.Clone()
	u.LastActivity, u.UpdatedAt, u.ExpireDate = now, now, now.Add(2*time.Hour)
	u.IP, u.UserAgent = "2001:db8::7", "Touched/1.0"
	u.Data = []byte("not written by Touch")
	s.Counter.Reset()
	wrote, err := s.Store.Touch(s.ctx, u, cutoff, now)
	if err != nil || !wrote {
		s.t.Fatalf("Touch after the interval = %v, %v; want true", wrote, err)
	}
	if n := s.Counter.Count(); n != 1 {
		s.t.Errorf("Touch ran %d statements, want 1: %v", n, s.Counter.Queries())
	}
	want := stored.Clone()
	want.LastActivity, want.UpdatedAt, want.ExpireDate = now, now, now.Add(2*time.Hour)
	want.IP, want.UserAgent = "2001:db8::7", "Touched/1.0"
	s.sameRecord(s.get(key), want) // data and created_at unchanged

	// A second touch within the interval (same cutoff) writes nothing.
	u2 := u.Clone()
	u2.IP = "192.0.2.99"
	if wrote, err := s.Store.Touch(s.ctx, u2, cutoff, now.Add(time.Second)); err != nil || wrote {
		s.t.Fatalf("second Touch in the interval = %v, %v; want false", wrote, err)
	}
	s.sameRecord(s.get(key), want)
	if !t0.Before(cutoff) {
		s.t.Fatalf("test setup: t0 %v not before cutoff %v", t0, cutoff)
	}

	// Expired or missing rows: false, nothing written.
	ex := s.record(nil, time.Second)
	exKey := s.create(ex)
	s.clock.Advance(time.Hour)
	late := s.now()
	e2 := ex.Clone()
	e2.LastActivity, e2.ExpireDate = late, late.Add(time.Hour)
	if wrote, err := s.Store.Touch(s.ctx, e2, late, late); err != nil || wrote {
		s.t.Errorf("Touch of an expired row = %v, %v; want false", wrote, err)
	}
	if row, ok := s.rawRow(exKey); !ok || !row.ExpireDate.Before(late) {
		s.t.Errorf("Touch revived an expired row: %+v", row)
	}
	e2.Key = backend.KeyOf("no such token")
	if wrote, err := s.Store.Touch(s.ctx, e2, late, late); err != nil || wrote {
		s.t.Errorf("Touch of a missing row = %v, %v; want false", wrote, err)
	}
}

func testTouchConcurrent(s *suite) {
	key := s.live(s.user())
	s.clock.Advance(2 * time.Minute)
	now := s.now()
	base := s.get(key)
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrote, errs := 0, []error{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := base.Clone()
			u.LastActivity = now.Add(time.Duration(i) * time.Millisecond)
			ok, err := s.Store.Touch(s.ctx, u, now.Add(-time.Minute), now)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				wrote++
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		// SQLite may answer "database is locked" past its busy timeout only
		// under far more load than this; any error is a failure.
		s.t.Errorf("concurrent Touch: %v", err)
	}
	if wrote != 1 {
		s.t.Errorf("%d of %d concurrent touches in one interval wrote, want exactly 1", wrote, n)
	}
}

func testExcessKeys(s *suite) {
	uid, other := s.user(), s.user()
	var keys []string // oldest activity first
	for i := range 5 {
		r := s.record(uid, time.Hour)
		r.LastActivity = s.now().Add(time.Duration(i-10) * time.Minute)
		keys = append(keys, s.create(r))
	}
	s.live(other)
	s.expired(uid) // expired sessions do not count
	for _, c := range []struct {
		keep int
		want []string
	}{
		{5, nil},
		{9, nil},
		{3, keys[:2]},
		{0, keys},
	} {
		s.Counter.Reset()
		got, err := s.Store.ExcessKeys(s.ctx, uid, s.now(), c.keep)
		if err != nil {
			s.t.Fatalf("ExcessKeys(keep %d): %v", c.keep, err)
		}
		s.wantKeys("ExcessKeys", got, c.want...)
		if q := s.Counter.Queries(); len(q) != 1 || strings.Contains(q[0].SQL, "session_data") {
			s.t.Errorf("ExcessKeys(keep %d) ran %v; want one query that does not read session_data", c.keep, q)
		}
	}
	// Newest first: keep 0 returns the newest activity first.
	got, _ := s.Store.ExcessKeys(s.ctx, uid, s.now(), 0)
	if len(got) == 5 && got[0] != keys[4] {
		s.t.Errorf("ExcessKeys order: first %.8s, want the newest %.8s", got[0], keys[4])
	}
	if got, err := s.Store.ExcessKeys(s.ctx, nil, s.now(), 0); err != nil || len(got) != 0 {
		s.t.Errorf("ExcessKeys(nil user) = %v, %v; want none", got, err)
	}
}

func testFind(s *suite) {
	uid := s.user()
	r := s.record(uid, time.Hour)
	key := s.create(r)
	exKey := s.expired(nil)
	s.Counter.Reset()
	got, err := s.Store.Find(s.ctx, backend.PublicID(key))
	if err != nil || len(got) != 1 {
		s.t.Fatalf("Find(public id) = %d rows, %v; want 1", len(got), err)
	}
	if n := s.Counter.Count(); n != 1 {
		s.t.Errorf("Find ran %d statements, want 1", n)
	}
	s.sameRecord(got[0], s.get(key))
	if got, err := s.Store.Find(s.ctx, backend.PublicID(exKey)); err != nil || len(got) != 1 || got[0].Key != exKey {
		s.t.Errorf("Find(expired) = %v, %v; want the expired row", got, err)
	}
	if got, err := s.Store.Find(s.ctx, "0000000000000000"); err != nil || len(got) != 0 {
		s.t.Errorf("Find(unknown) = %v, %v; want none", got, err)
	}
	// Two keys that share a public id are both found; keys just outside
	// the range are not.
	prefix := "abcdef0123456789"
	for _, k := range []string{
		prefix + strings.Repeat("0", 48), prefix + strings.Repeat("f", 48),
		"abcdef0123456788" + strings.Repeat("f", 48), "abcdef012345678a" + strings.Repeat("0", 48),
	} {
		rec := s.record(nil, time.Hour)
		rec.Key = k
		if err := s.Store.Insert(s.ctx, rec); err != nil {
			s.t.Fatal(err)
		}
	}
	got, err = s.Store.Find(s.ctx, prefix)
	if err != nil {
		s.t.Fatal(err)
	}
	var found []string
	for _, g := range got {
		found = append(found, g.Key)
	}
	s.wantKeys("Find(shared prefix)", found, prefix+strings.Repeat("0", 48), prefix+strings.Repeat("f", 48))
}

func testDeleteExpiredCursor(s *suite) {
	base := s.now().Add(-time.Hour)
	var at []time.Time
	for i := range 6 {
		r := s.record(nil, time.Hour)
		r.ExpireDate = base.Add(time.Duration(i/2) * time.Minute) // two rows per instant
		s.create(r)
		at = append(at, usec(r.ExpireDate))
	}
	keep := s.live(nil)
	n, last, err := s.Store.DeleteExpired(s.ctx, time.Time{}, s.now(), 3)
	if err != nil || n != 3 || !last.Equal(at[2]) {
		s.t.Fatalf("first batch = %d, last %v, %v; want 3 up to %v", n, last, err, at[2])
	}
	n, last, err = s.Store.DeleteExpired(s.ctx, last, s.now(), 3)
	if err != nil || n != 3 || !last.Equal(at[5]) {
		s.t.Fatalf("second batch from the cursor = %d, last %v, %v; want 3 up to %v", n, last, err, at[5])
	}
	n, last, err = s.Store.DeleteExpired(s.ctx, last, s.now(), 3)
	if err != nil || n != 0 || !last.IsZero() {
		s.t.Fatalf("third batch = %d, %v, %v; want 0 and a zero time", n, last, err)
	}
	s.wantKeys("rows left", s.rawKeys(), keep)
}

func testSeveralInvalidators(s *suite) {
	k1, k2 := s.live(nil), s.live(nil)
	other := &testutil.Recorder{}
	s.Store.AddInvalidator(s.rec)
	remove := s.Store.AddInvalidator(other)
	if err := s.DeleteByKey(s.ctx, k1); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("first listener", []string{k1})
	if got := other.Calls(); len(got) != 1 || len(got[0]) != 1 || got[0][0] != k1 {
		s.t.Errorf("second listener heard %v, want [[%.8s]]", shortCalls(got), k1)
	}
	remove()
	remove() // a second call does nothing
	if err := s.DeleteByKey(s.ctx, k2); err != nil {
		s.t.Fatal(err)
	}
	s.wantCalls("first listener after the second left", []string{k2})
	if got := other.Calls(); len(got) != 0 {
		s.t.Errorf("a removed listener heard %v", shortCalls(got))
	}
}

func testCheck(s *suite) {
	if err := s.Store.Check(s.ctx); err != nil {
		s.t.Fatalf("Check on a migrated database: %v", err)
	}
	exec := func(q string) {
		if _, err := s.db.SQL.ExecContext(s.ctx, q); err != nil {
			s.t.Fatalf("%s: %v", q, err)
		}
	}
	exec("ALTER TABLE " + Table + " DROP COLUMN last_activity")
	err := s.Store.Check(s.ctx)
	if !errors.Is(err, backend.ErrNoTable) || !strings.Contains(err.Error(), "last_activity") {
		s.t.Errorf("Check without last_activity: %v; want ErrNoTable naming the column", err)
	}
	exec("DROP TABLE " + Table)
	err = s.Store.Check(s.ctx)
	if !errors.Is(err, backend.ErrNoTable) || !strings.Contains(err.Error(), "no table "+Table) {
		s.t.Errorf("Check without the table: %v; want ErrNoTable naming the table", err)
	}
}

func init() {
	cases = append(cases, testCase{name: "DeviceBinding", run: testBind})
}

// testBind: a device binding is written by Bind only; saves and touches of
// a request that loaded the row before the binding keep it; an insert
// (a rotation) carries the record's; unbinding clears both columns.
func testBind(s *suite) {
	r := s.record(s.user(), time.Hour)
	key := s.create(r)
	if got := s.get(key); got.Bound() || got.DeviceKey != "" || got.DeviceSecret != nil {
		s.t.Fatalf("a new session is bound: %+v", got)
	}
	stale := s.get(key) // loaded before the binding
	jwk := `{"crv":"P-256","kty":"EC","x":"abc","y":"def"}`
	secret := []byte("0123456789abcdef0123456789abcdef")
	if err := s.Store.Bind(s.ctx, key, jwk, secret, s.now()); err != nil {
		s.t.Fatal(err)
	}
	bound := func(what string) {
		s.t.Helper()
		got := s.get(key)
		if got.DeviceKey != jwk || string(got.DeviceSecret) != string(secret) || !got.Bound() {
			s.t.Fatalf("%s: binding %q %q", what, got.DeviceKey, got.DeviceSecret)
		}
	}
	bound("after Bind")
	stale.Data = []byte("saved by a request that loaded the row unbound")
	stale.UpdatedAt = s.now()
	if err := s.Store.Update(s.ctx, stale, s.now()); err != nil {
		s.t.Fatal(err)
	}
	bound("after an Update from a stale load")
	s.clock.Advance(2 * time.Minute)
	t := stale.Clone()
	t.LastActivity = s.now()
	if wrote, err := s.Store.Touch(s.ctx, t, s.now().Add(-time.Minute), s.now()); err != nil || !wrote {
		s.t.Fatalf("Touch: %v %v", wrote, err)
	}
	bound("after a Touch")

	// A rotation inserts the record's binding under the new key.
	rot := s.get(key)
	newRec := rot.Clone()
	_, newKey, _ := backend.NewToken(nil)
	newRec.Key = newKey
	if err := s.Store.Rotate(s.ctx, key, newRec, s.now()); err != nil {
		s.t.Fatal(err)
	}
	if got := s.get(newKey); got.DeviceKey != jwk || string(got.DeviceSecret) != string(secret) {
		s.t.Fatalf("the rotated row lost the binding: %+v", got)
	}
	// Unbind.
	if err := s.Store.Bind(s.ctx, newKey, "", nil, s.now()); err != nil {
		s.t.Fatal(err)
	}
	if got := s.get(newKey); got.Bound() || got.DeviceSecret != nil {
		s.t.Fatalf("unbound row: %+v", got)
	}
	// A row that is not live is never bound (nor recreated).
	if err := s.Store.Bind(s.ctx, key, jwk, secret, s.now()); !errors.Is(err, backend.ErrNotFound) {
		s.t.Fatalf("Bind of a rotated-away key: %v, want ErrNotFound", err)
	}
	ex := s.expired(nil)
	if err := s.Store.Bind(s.ctx, ex, jwk, secret, s.now()); !errors.Is(err, backend.ErrNotFound) {
		s.t.Fatalf("Bind of an expired row: %v, want ErrNotFound", err)
	}
}

func init() {
	cases = append(cases, testCase{name: "InsertCapped", run: testInsertCapped})
}

// testInsertCapped: a CappingStore inserts a session and ends the user's
// oldest other live sessions past keep, in one statement on Postgres.
func testInsertCapped(s *suite) {
	cs, ok := s.Store.(backend.CappingStore)
	if !ok {
		s.t.Skip("the store does not cap at insert")
	}
	uid := s.user()
	var olds []string // oldest first
	for i := range 3 {
		r := s.record(uid, time.Hour)
		r.LastActivity = s.now().Add(time.Duration(i-10) * time.Minute)
		olds = append(olds, s.create(r))
	}
	s.expired(uid)
	otherUser := s.live(s.user())
	newRec := func(u any) *backend.Record {
		r := s.record(u, time.Hour)
		r.LastActivity = s.now()
		_, r.Key, _ = backend.NewToken(nil)
		return r
	}
	one := 2 // an INSERT and a SELECT of keys
	if s.db.Dialect == "postgres" {
		one = 1
	}
	// Under the cap (keep 3: the 3 others stay).
	r := newRec(uid)
	s.Counter.Reset()
	ended, err := cs.InsertCapped(s.ctx, r, s.now(), 3)
	if err != nil || len(ended) != 0 {
		s.t.Fatalf("under the cap: ended %v, %v", short(ended), err)
	}
	if got := s.Counter.Count(); got != one {
		s.t.Errorf("under the cap: %d statements, want %d: %v", got, one, s.Counter.Queries())
	}
	s.sameRecord(s.get(r.Key), r)
	// At the cap (keep 2 of the 4 others): the 2 oldest go.
	r2 := newRec(uid)
	s.Counter.Reset()
	ended, err = cs.InsertCapped(s.ctx, r2, s.now(), 2)
	if err != nil {
		s.t.Fatal(err)
	}
	s.wantKeys("ended at the cap", ended, olds[0], olds[1])
	want := one
	if want > 1 {
		want++ // the DELETE
	}
	if got := s.Counter.Count(); got != want {
		s.t.Errorf("at the cap: %d statements, want %d: %v", got, want, s.Counter.Queries())
	}
	for _, q := range s.Counter.Queries() {
		if strings.HasPrefix(strings.ToUpper(q.SQL), "SELECT") && strings.Contains(q.SQL, "session_data") {
			s.t.Errorf("the cap read session_data: %s", q.SQL)
		}
	}
	left, _ := s.Store.ExcessKeys(s.ctx, uid, s.now(), 0)
	s.wantKeys("the user's live sessions", left, olds[2], r.Key, r2.Key)
	if _, err := s.Store.Get(s.ctx, otherUser, s.now()); err != nil {
		s.t.Errorf("another user's session went: %v", err)
	}
	// Taken key, anonymous, no cap, binding kept.
	if _, err := cs.InsertCapped(s.ctx, r2, s.now(), 2); !errors.Is(err, backend.ErrKeyExists) {
		s.t.Errorf("a taken key: %v, want ErrKeyExists", err)
	}
	if ended, err := cs.InsertCapped(s.ctx, newRec(nil), s.now(), 0); err != nil || len(ended) != 0 {
		s.t.Errorf("anonymous: %v %v", ended, err)
	}
	b := newRec(uid)
	b.DeviceKey, b.DeviceSecret = `{"kty":"EC"}`, []byte("0123456789abcdef0123456789abcdef")
	if ended, err := cs.InsertCapped(s.ctx, b, s.now(), -1); err != nil || len(ended) != 0 {
		s.t.Fatalf("no cap: %v %v", ended, err)
	}
	if got := s.get(b.Key); got.DeviceKey != b.DeviceKey || string(got.DeviceSecret) != string(b.DeviceSecret) {
		s.t.Errorf("InsertCapped lost the binding: %+v", got)
	}
}

func init() {
	cases = append(cases, testCase{name: "InsertCappedConcurrent", run: testInsertCappedConcurrent})
}

// testInsertCappedConcurrent: logins of one user past the cap, in
// parallel, all succeed (no deadlock between the statements that end the
// same old sessions) and leave the user at the cap. On Postgres the
// statements' DELETEs once locked their rows in a hash join's order,
// which differs between statements that saw different sets: 40P01.
func testInsertCappedConcurrent(s *suite) {
	cs, ok := s.Store.(backend.CappingStore)
	if !ok {
		s.t.Skip("the store does not cap at insert")
	}
	uid := s.user()
	const keep, before, workers, each = 5, 40, 8, 30
	for i := range before {
		r := s.record(uid, time.Hour)
		r.LastActivity = s.now().Add(time.Duration(i-before) * time.Second)
		s.create(r)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := s.record(uid, time.Hour)
				r.LastActivity = s.now().Add(time.Duration(w*each+i) * time.Millisecond)
				_, r.Key, _ = backend.NewToken(nil)
				if _, err := cs.InsertCapped(s.ctx, r, s.now(), keep); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		s.t.Errorf("concurrent InsertCapped: %v", err)
	}
	// Concurrent logins may each keep keep others (they do not see each
	// other's rows); the next one restores the cap.
	r := s.record(uid, time.Hour)
	r.LastActivity = s.now().Add(time.Hour)
	_, r.Key, _ = backend.NewToken(nil)
	if _, err := cs.InsertCapped(s.ctx, r, s.now(), keep); err != nil {
		s.t.Fatal(err)
	}
	if live, _ := s.Store.ExcessKeys(s.ctx, uid, s.now(), 0); len(live) != keep+1 {
		s.t.Errorf("after the logins the user holds %d live sessions, want %d", len(live), keep+1)
	}
}

func init() {
	cases = append(cases,
		testCase{name: "RotateCapped", run: testRotateCapped},
		testCase{name: "RotateCappedConcurrent", run: testRotateCappedConcurrent},
	)
}

// testRotateCapped: a CappingRotateStore replaces a live row by a new one
// and ends the user's oldest other live sessions past keep, in one
// statement on Postgres; it writes nothing when the old row is not live or
// the new key is taken.
func testRotateCapped(s *suite) {
	rs, ok := s.Store.(backend.CappingRotateStore)
	if !ok {
		s.t.Skip("the store does not rotate with the cap")
	}
	uid := s.user()
	var olds []string // oldest activity first
	for i := range 3 {
		r := s.record(uid, time.Hour)
		r.LastActivity = s.now().Add(time.Duration(i-10) * time.Minute)
		olds = append(olds, s.create(r))
	}
	anon := s.record(nil, time.Hour)
	anon.LastActivity = s.now().Add(-time.Minute)
	anonKey := s.create(anon)
	otherUser := s.live(s.user())
	newRec := func(u any) *backend.Record {
		r := s.record(u, time.Hour)
		r.LastActivity = s.now()
		_, r.Key, _ = backend.NewToken(nil)
		return r
	}

	// The anonymous row becomes uid's, at the cap (keep 2 of the 3
	// others): the oldest goes.
	r := newRec(uid)
	s.Counter.Reset()
	ended, err := rs.RotateCapped(s.ctx, anonKey, r, s.now(), 2)
	if err != nil {
		s.t.Fatal(err)
	}
	s.wantKeys("ended at the cap", ended, olds[0])
	if s.db.Dialect == "postgres" {
		if got := s.Counter.Count(); got != 1 {
			s.t.Errorf("RotateCapped: %d statements, want 1: %v", got, s.Counter.Queries())
		}
	}
	for _, q := range s.Counter.Queries() {
		if strings.HasPrefix(strings.ToUpper(q.SQL), "SELECT") && strings.Contains(q.SQL, "session_data") {
			s.t.Errorf("the cap read session_data: %s", q.SQL)
		}
	}
	s.sameRecord(s.get(r.Key), r)
	if _, err := s.Store.Get(s.ctx, anonKey, s.now()); !errors.Is(err, backend.ErrNotFound) {
		s.t.Errorf("the old row after RotateCapped: %v, want ErrNotFound", err)
	}
	left, _ := s.Store.ExcessKeys(s.ctx, uid, s.now(), 0)
	s.wantKeys("the user's live sessions", left, olds[1], olds[2], r.Key)

	// Under the cap: nothing else ends.
	r2 := newRec(uid)
	if ended, err := rs.RotateCapped(s.ctx, r.Key, r2, s.now(), 5); err != nil || len(ended) != 0 {
		s.t.Fatalf("under the cap: ended %v, %v", short(ended), err)
	}
	left, _ = s.Store.ExcessKeys(s.ctx, uid, s.now(), 0)
	s.wantKeys("the user's live sessions", left, olds[1], olds[2], r2.Key)

	// The old row is gone (revoked, or rotated by another request): nothing
	// is written, nothing ends.
	r3 := newRec(uid)
	if _, err := rs.RotateCapped(s.ctx, r.Key, r3, s.now(), 0); !errors.Is(err, backend.ErrSessionInterrupted) {
		s.t.Fatalf("RotateCapped of a gone row: %v, want ErrSessionInterrupted", err)
	}
	if _, err := s.Store.Get(s.ctx, r3.Key, s.now()); !errors.Is(err, backend.ErrNotFound) {
		s.t.Errorf("RotateCapped of a gone row wrote the new one: %v", err)
	}
	left, _ = s.Store.ExcessKeys(s.ctx, uid, s.now(), 0)
	s.wantKeys("the user's live sessions after an interrupted rotation", left, olds[1], olds[2], r2.Key)

	// An expired old row is not live either.
	exp := s.expired(uid)
	if _, err := rs.RotateCapped(s.ctx, exp, newRec(uid), s.now(), 0); !errors.Is(err, backend.ErrSessionInterrupted) {
		s.t.Fatalf("RotateCapped of an expired row: %v, want ErrSessionInterrupted", err)
	}

	// A taken key: ErrKeyExists, and the old row stays.
	taken := newRec(uid)
	taken.Key = olds[1]
	if _, err := rs.RotateCapped(s.ctx, r2.Key, taken, s.now(), 0); !errors.Is(err, backend.ErrKeyExists) {
		s.t.Fatalf("RotateCapped to a taken key: %v, want ErrKeyExists", err)
	}
	s.get(r2.Key)
	left, _ = s.Store.ExcessKeys(s.ctx, uid, s.now(), 0)
	s.wantKeys("the user's live sessions after a taken key", left, olds[1], olds[2], r2.Key)

	// No cap (keep < 0), and the binding carried.
	b := newRec(uid)
	b.DeviceKey, b.DeviceSecret = `{"kty":"EC"}`, []byte("0123456789abcdef0123456789abcdef")
	if ended, err := rs.RotateCapped(s.ctx, r2.Key, b, s.now(), -1); err != nil || len(ended) != 0 {
		s.t.Fatalf("no cap: %v %v", ended, err)
	}
	if got := s.get(b.Key); got.DeviceKey != b.DeviceKey || string(got.DeviceSecret) != string(b.DeviceSecret) {
		s.t.Errorf("RotateCapped lost the binding: %+v", got)
	}
	if _, err := s.Store.Get(s.ctx, otherUser, s.now()); err != nil {
		s.t.Errorf("another user's session went: %v", err)
	}
}

// testRotateCappedConcurrent: logins of one user past the cap, half of
// them rotating a row of their own, all in parallel, all succeed (on
// Postgres two of them can deadlock, each ending the other's old row; the
// store retries) and leave the user at the cap.
func testRotateCappedConcurrent(s *suite) {
	rs, ok := s.Store.(backend.CappingRotateStore)
	cs, ok2 := s.Store.(backend.CappingStore)
	if !ok || !ok2 {
		s.t.Skip("the store does not rotate with the cap")
	}
	uid := s.user()
	const keep, before, workers, each = 5, 40, 8, 30
	var mine []string
	for i := range before {
		r := s.record(uid, time.Hour)
		r.LastActivity = s.now().Add(time.Duration(i-before) * time.Second)
		mine = append(mine, s.create(r))
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := s.record(uid, time.Hour)
				r.LastActivity = s.now().Add(time.Duration(w*each+i) * time.Millisecond)
				_, r.Key, _ = backend.NewToken(nil)
				var err error
				if w%2 == 0 {
					_, err = cs.InsertCapped(s.ctx, r, s.now(), keep)
				} else {
					// Rotate an anonymous row of this worker's own into a
					// session of uid.
					a := s.record(nil, time.Hour)
					_, a.Key, _ = backend.NewToken(nil)
					if err = s.Store.Insert(s.ctx, a); err == nil {
						_, err = rs.RotateCapped(s.ctx, a.Key, r, s.now(), keep)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		s.t.Errorf("concurrent InsertCapped/RotateCapped: %v", err)
	}
	r := s.record(uid, time.Hour)
	r.LastActivity = s.now().Add(time.Hour)
	_, r.Key, _ = backend.NewToken(nil)
	if _, err := cs.InsertCapped(s.ctx, r, s.now(), keep); err != nil {
		s.t.Fatal(err)
	}
	if live, _ := s.Store.ExcessKeys(s.ctx, uid, s.now(), 0); len(live) != keep+1 {
		s.t.Errorf("after the logins the user holds %d live sessions, want %d", len(live), keep+1)
	}
}
