package qsessions

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qsessions/qsessions/backend"
)

type ctxKey struct{}

// NewContext returns ctx carrying s; the middleware calls it.
func NewContext(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext returns the request's session, or nil outside the middleware.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	return s
}

// Session is one request's session. Nothing is loaded until a method needs
// the data: a request that never touches it costs no backend call. Methods
// are safe for concurrent use by the handler's goroutines.
//
// Getters load on first use with the request's context; a load failure
// makes the session empty and unsaveable, and Err reports it.
type Session struct {
	m   *Manager
	ctx context.Context

	mu        sync.Mutex
	token     string     // the cookie value, valid shape or ""
	key       string     // KeyOf(token), or ""
	hadCookie bool       // the request sent a cookie (valid or not)
	addr      netip.Addr // the client's address, unmapped, no zone
	ip        string     // addr as text, formatted on first need
	ua        string     // of this request, normalised
	bound     string     // the bound cookie (device-bound sessions), if sent
	unproven  bool       // a device-bound session without a valid bound cookie
	// cur is the stored key of the session once known ("" for none), read
	// without the lock: an OnEvent hook that runs while Login or Logout
	// holds it may ask for the request's sessions.
	cur atomic.Pointer[string]

	loaded    bool
	err       error
	rec       *backend.Record // the stored row; nil when there is none
	h         header
	values    map[string]any
	sizes     map[string]int // encoded size of each key and value
	size      int
	accessed  bool
	modified  bool // data or user changed
	renew     bool // fresh deadline on the next write
	newToken  bool // token changed during this request: set the cookie
	ended     bool // logged out or interrupted: delete the cookie
	committed bool
}

// Start returns the lazy session of a request whose session cookie holds
// token ("" when there is none), from ip with user agent ua. A token not of
// the shape backend.NewToken gives is treated as no session and never
// reaches the backend. ctx is used for the lazy load.
func (m *Manager) Start(ctx context.Context, token, ip, ua string) *Session {
	addr, _ := netip.ParseAddr(ip)
	return m.StartAddr(ctx, token, addr, ua)
}

// StartAddr is Start with the client address already parsed, as the
// middleware has it: the address is formatted only if the session is
// loaded, so an untouched request allocates nothing for it. A token that is
// present but malformed makes the session's cookie be deleted at the save;
// "" means the request sent none.
func (m *Manager) StartAddr(ctx context.Context, token string, ip netip.Addr, ua string) *Session {
	s := &Session{m: m, ctx: ctx, hadCookie: token != "",
		addr: ip.Unmap().WithZone(""), ua: backend.NormalizeUserAgent(ua)}
	if backend.ValidToken(token) || (m.Legacy != nil && token != "" && m.Legacy.Valid(token)) {
		s.token = token // hashed on first load
	}
	return s
}

// SetBoundCredential gives the session the request's bound cookie (see
// backend.MintBound), which a device-bound session (DBSC) requires; the
// middleware calls it before the handler runs. Without a valid one, a
// bound session is not signed in for the request (NeedsDeviceProof).
func (s *Session) SetBoundCredential(value string) {
	s.mu.Lock()
	s.bound = value
	s.mu.Unlock()
}

// NeedsDeviceProof reports that the request's cookie names a device-bound
// session but carries no valid bound cookie: the request is served as
// anonymous (nothing is written, the cookie stays) until the browser
// refreshes the bound cookie with its device key (package dbsc's refresh
// endpoint). A stolen session cookie alone gets this far and no further.
func (s *Session) NeedsDeviceProof() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	return s.unproven
}

// ipText returns the client address as stored ("" when unknown). Caller
// holds mu.
func (s *Session) ipText() string {
	if s.ip == "" && s.addr.IsValid() {
		s.ip = s.addr.String()
	}
	return s.ip
}

// load reads the session once. Caller holds mu.
func (s *Session) load() {
	s.accessed = true
	if s.loaded {
		return
	}
	s.loaded = true
	s.values = map[string]any{}
	s.sizes = map[string]int{}
	if s.token == "" {
		return
	}
	s.key = backend.KeyOf(s.token)
	ctx, cancel := s.m.bounded(s.ctx)
	rec, err := s.m.Backend.Load(ctx, s.key, s.m.now())
	if errors.Is(err, backend.ErrNotFound) && s.m.Legacy != nil && !backend.ValidToken(s.token) {
		rec, err = s.m.Legacy.Import(ctx, s.token, s.m.now())
		if err == nil && (rec == nil || rec.Key != s.key) {
			err = fmt.Errorf("LegacyTokens.Import returned a session not stored under the token's key")
		}
	}
	cancel()
	if errors.Is(err, backend.ErrNotFound) {
		s.token, s.key = "", ""
		return
	}
	if err != nil {
		s.err = unavailable("loading the session", err)
		return
	}
	h, values, sizes, err := decodeSessionSizes(rec.Data)
	if err != nil {
		// Undecodable data is no session: the row is left alone (an admin
		// can inspect it) and a new session replaces it on the next write.
		s.m.logger().Warn("qsessions: session data does not decode; treating as no session", "session", backend.PublicID(rec.Key), "err", err)
		s.token, s.key = "", ""
		return
	}
	if rec.Bound() {
		if err := backend.VerifyBound(rec.DeviceSecret, s.bound, s.m.now(), backend.DefaultBoundSkew); err != nil {
			// A device-bound session without its short-lived proof: no
			// session for this request, and nothing written or deleted.
			s.token, s.key, s.unproven = "", "", true
			return
		}
	}
	s.rec, s.h, s.values, s.sizes = rec, h, values, sizes
	s.setCur(rec.Key)
	for _, n := range sizes {
		s.size += n
	}
}

// Err returns the error of the lazy load, if it failed: the backend could
// not answer (the database is down or slow past Manager.Timeout). A cookie
// that names no live session is not an error. The session is then empty and
// cannot be saved; the middleware answers 503 for it unless the handler
// answered first.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Load loads the session now, returning a backend error (a cookie naming no
// live session is not an error: the session is then new and empty).
func (s *Session) Load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	return s.err
}

// Get returns the value stored under key and whether there is one.
func (s *Session) Get(key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	v, ok := s.values[key]
	return v, ok
}

// GetAs returns the value under key as a T, and false when it is absent or
// of another type.
func GetAs[T any](s *Session, key string) (T, bool) {
	v, ok := s.Get(key)
	t, ok2 := v.(T)
	return t, ok && ok2
}

// GetString returns the string under key, or "".
func (s *Session) GetString(key string) string { v, _ := GetAs[string](s, key); return v }

// GetInt returns the int under key, or 0.
func (s *Session) GetInt(key string) int { v, _ := GetAs[int](s, key); return v }

// GetInt64 returns the int64 under key, or 0.
func (s *Session) GetInt64(key string) int64 { v, _ := GetAs[int64](s, key); return v }

// GetFloat64 returns the float64 under key, or 0.
func (s *Session) GetFloat64(key string) float64 { v, _ := GetAs[float64](s, key); return v }

// GetBool returns the bool under key, or false.
func (s *Session) GetBool(key string) bool { v, _ := GetAs[bool](s, key); return v }

// GetTime returns the time.Time under key, or the zero time.
func (s *Session) GetTime(key string) time.Time { v, _ := GetAs[time.Time](s, key); return v }

// GetBytes returns the []byte under key, or nil.
func (s *Session) GetBytes(key string) []byte { v, _ := GetAs[[]byte](s, key); return v }

// GetStrings returns the []string under key, or nil.
func (s *Session) GetStrings(key string) []string { v, _ := GetAs[[]string](s, key); return v }

// Keys returns the stored keys, sorted.
func (s *Session) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	return slices.Sorted(maps.Keys(s.values))
}

// writable checks that a change can still be saved. Caller holds mu.
func (s *Session) writable() error {
	if s.committed {
		return ErrHeadersWritten
	}
	s.load()
	return s.err
}

// Set stores v under key. v must be a built-in kind (string, bool, every
// int, uint and float kind, time.Time, []byte, []string, map[string]any,
// []any) or a type given to Register. It returns ErrUnsupportedValue for
// any other type, ErrTooLarge when the session would pass MaxSize, and
// ErrHeadersWritten after the response headers went out; the session is
// then unchanged. Cost: encoding v once.
func (s *Session) Set(key string, v any) error {
	b, err := appendValue(nil, v, 1)
	if err != nil {
		return fmt.Errorf("qsessions: Set(%q): %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	n := entryLen(key, len(b))
	count := len(s.values)
	if _, ok := s.values[key]; !ok {
		count++
	}
	if total := s.encodedLen(count, s.size-s.sizes[key]+n); total > s.m.maxSize() {
		return fmt.Errorf("qsessions: Set(%q): %d bytes would pass the limit of %d: %w", key, total, s.m.maxSize(), ErrTooLarge)
	}
	s.size += n - s.sizes[key]
	s.sizes[key] = n
	s.values[key] = v
	s.modified = true
	return nil
}

// Delete removes key; a missing key is no change.
func (s *Session) Delete(key string) error {
	_, err := s.Pop(key)
	return err
}

// Pop removes key and returns its value, or nil when it was absent.
func (s *Session) Pop(key string) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return nil, err
	}
	v, ok := s.values[key]
	if ok {
		delete(s.values, key)
		s.size -= s.sizes[key]
		delete(s.sizes, key)
		s.modified = true
	}
	return v, nil
}

// Clear drops the user and every value. A session left empty is not kept:
// the save at the end of the request deletes its row and its cookie (an
// empty anonymous session is worth nothing, and a cleared one should leave
// no trace). Values set after Clear in the same request keep the session,
// its token and its row, now without a user (Django's clear() always keeps
// the row; qsessions keeps it only when it holds something).
func (s *Session) Clear() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.clear()
	return nil
}

func (s *Session) clear() {
	s.values, s.sizes, s.size = map[string]any{}, map[string]int{}, 0
	if s.rec != nil {
		s.rec.UserID = nil
	}
	s.modified = true
}

// UserID returns the logged-in user's ID in the app's ID type, or nil: for
// an anonymous session, and also when the session could not be loaded (see
// User to tell the two apart).
func (s *Session) UserID() any {
	id, _ := s.User()
	return id
}

// User returns the logged-in user's ID in the app's ID type: nil and no
// error for an anonymous visitor, nil and the load error when the backend
// could not answer. Pages answer the error with 503 ("try again"), never
// with a redirect to the login page: the session may be intact.
func (s *Session) User() (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	if s.err != nil || s.rec == nil {
		return nil, s.err
	}
	return s.rec.UserID, nil
}

// ID returns the session's public id (backend.PublicID), or "" when it has
// no stored row yet.
func (s *Session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	if s.rec == nil {
		return ""
	}
	return backend.PublicID(s.rec.Key)
}

// Record returns a copy of the stored row as loaded or last written, or nil.
func (s *Session) Record() *backend.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	return s.rec.Clone()
}

// Accessed reports whether anything read or changed the session.
func (s *Session) Accessed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accessed
}

// Modified reports whether values, the user or the deadline changed, so
// the next save writes the session. (An unchanged session is written at
// most once per ActivityInterval, with its newest IP and user agent.)
func (s *Session) Modified() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modified || s.renew
}

// SaveWrites reports whether Save, called now, would write to the Backend:
// the session was changed, renewed or is new with values, or its activity
// is due (ActivityInterval). False for an untouched session and for a read
// within the interval, whose Save makes no call, so that a caller can skip
// preparing one (the middleware's save timeout). Cost: a lock.
func (s *Session) SaveWrites() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.committed && s.saveWrites(s.m.now())
}

// saveWrites is SaveWrites at now, committed or not. Caller holds mu.
func (s *Session) saveWrites(now time.Time) bool {
	if !s.loaded || s.err != nil {
		return false
	}
	if s.rec == nil {
		return s.modified && len(s.values) > 0
	}
	return s.modified || s.renew || now.Sub(s.rec.LastActivity) >= s.m.activityInterval()
}

// SetRememberMe chooses a persistent cookie and RememberMeLifetime (on) or
// a cookie that ends with the browser (off), for this session.
func (s *Session) SetRememberMe(on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if on {
		s.h.persist = PersistRemember
	} else {
		s.h.persist = PersistBrowser
	}
	s.renew = true
	s.modified = true
	return nil
}

// Persistence is a session's cookie choice, stored with the session.
type Persistence int8

// The cookie choices.
const (
	// PersistDefault leaves the choice to the middleware
	// (middleware.Cookie.BrowserSession).
	PersistDefault Persistence = 0
	// PersistRemember asks for a persistent cookie and RememberMeLifetime.
	PersistRemember Persistence = 1
	// PersistBrowser asks for a cookie that ends with the browser.
	PersistBrowser Persistence = -1
)

// Persist reports the session's cookie choice (SetRememberMe).
func (s *Session) Persist() Persistence {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.persist
}

// Renew gives the session a fresh absolute deadline (now plus the lifetime)
// on its next write, for example at a login that should not inherit the
// anonymous session's deadline.
func (s *Session) Renew() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.renew = true
	s.modified = true
	return nil
}

// Login makes userID the session's user and rotates the token (session
// fixation: a token planted before the login is useless after it). If the
// session belonged to a different user, its data is flushed first (Django's
// auth.login); otherwise it is kept. The absolute deadline is kept unless
// Renew was called. It writes at once, and ends the user's oldest sessions
// past MaxSessionsPerUser in the same step where the backend can (DB and
// CachedDB over the generated Store): on PostgreSQL one statement whether
// or not the session had a row (insert, or replace the old row) and
// whether or not the user is at the cap; elsewhere the insert (or one
// transaction: delete the old row, insert the new), a SELECT of keys past
// the cap and, at the cap, a DELETE. Over a backend that cannot, the cap is
// enforced after the write, where it never fails the login, which is
// committed by then (its errors are logged).
func (s *Session) Login(ctx context.Context, userID any) error {
	if userID == nil {
		return errors.New("qsessions: Login with a nil user ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if s.rec != nil && s.rec.UserID != nil && s.rec.UserID != userID {
		s.clear()
		s.renew = true
	}
	ended, capped, err := s.rotateCapped(ctx, userID, true)
	if err != nil {
		return err
	}
	s.m.emit(ctx, Event{Kind: EventSignIn, UserID: userID, SessionID: backend.PublicID(s.rec.Key), IP: s.rec.IP, UserAgent: s.rec.UserAgent})
	if capped {
		for _, k := range ended {
			s.m.emit(ctx, Event{Kind: EventRevoke, Cause: CauseCap, UserID: userID, SessionID: backend.PublicID(k)})
		}
	} else {
		s.m.enforceCap(ctx, userID, s.rec.Key)
	}
	return nil
}

// CycleKey gives the session a new token and keeps its data and user. A
// session with no stored row gets its token on its first save anyway.
func (s *Session) CycleKey(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if s.rec == nil {
		return nil
	}
	return s.rotate(ctx, s.rec.UserID)
}

// rotate writes the session under a new token. Caller holds mu.
func (s *Session) rotate(ctx context.Context, userID any) error {
	_, _, err := s.rotateCapped(ctx, userID, false)
	return err
}

// rotateCapped is rotate that, with capping (a login), also enforces the
// per-user cap in the same step when the backend can: a CappingCreator for
// a session with no row yet, a CappingRotator for one with a row. capped
// reports that it did, ended are the sessions it ended. Caller holds mu.
func (s *Session) rotateCapped(ctx context.Context, userID any, capping bool) (ended []string, capped bool, err error) {
	now := s.m.now()
	rec := s.record(now)
	rec.UserID = userID
	data, err := s.encode()
	if err != nil {
		return nil, false, err
	}
	rec.Data = data
	var token string
	bctx, cancel := s.m.bounded(ctx)
	defer cancel()
	cc, canCreate := s.m.Backend.(backend.CappingCreator)
	cr, canRotate := s.m.Backend.(backend.CappingRotator)
	switch {
	case s.rec == nil && canCreate && capping:
		token, ended, capped, err = cc.CreateCapped(bctx, rec, now, s.m.maxSessions()-1)
	case s.rec == nil:
		token, err = s.m.Backend.Create(bctx, rec, now)
	case canRotate && capping:
		token, ended, capped, err = cr.RotateCapped(bctx, s.rec.Key, rec, now, s.m.maxSessions()-1)
	default:
		token, err = s.m.Backend.Rotate(bctx, s.rec.Key, rec, now)
	}
	if err != nil {
		if errors.Is(err, backend.ErrSessionInterrupted) {
			s.interrupted()
		}
		return nil, false, unavailable("writing the session", err)
	}
	s.rec, s.token, s.key = rec, token, rec.Key
	s.setCur(rec.Key)
	s.newToken, s.ended, s.modified, s.renew = true, false, false, false
	return ended, capped, nil
}

// interrupted forgets a session that ended under the request. Caller holds mu.
// setCur records the session's stored key for currentKey. Caller holds mu.
func (s *Session) setCur(key string) { s.cur.Store(&key) }

func (s *Session) interrupted() {
	s.setCur("")
	s.rec, s.token, s.key = nil, "", ""
	s.values, s.sizes, s.size = map[string]any{}, map[string]int{}, 0
	s.newToken, s.ended = false, true
	s.modified = false
}

// Logout deletes the session's row and its cookie. Values set afterwards go
// into a new session with a new token. Deleting a session that has no row
// (never saved, or already gone) is no error.
func (s *Session) Logout(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if s.rec != nil {
		if _, err := s.m.revoke(ctx, "", []ending{endingOf(s.rec)}); err != nil {
			return err
		}
	}
	s.interrupted()
	s.h = header{}
	return nil
}

// encodedLen is the length encode gives for count values whose entries
// total entries bytes (entryLen each), with the deadline the next write
// stores: exactly, so Set refuses a value if and only if the save would.
// Caller holds mu.
func (s *Session) encodedLen(count, entries int) int {
	dl := s.h.deadline
	if s.renew || dl.IsZero() {
		dl = s.m.now().Add(s.m.lifetime(s.h.persist))
	}
	return headerLen(dl, count) + entries
}

// encode encodes the values with the header. Caller holds mu.
func (s *Session) encode() ([]byte, error) {
	b, err := encodeSession(s.h, s.values)
	if err != nil {
		return nil, fmt.Errorf("qsessions: encoding the session: %w", err)
	}
	if len(b) > s.m.maxSize() {
		return nil, fmt.Errorf("qsessions: %d bytes pass the limit of %d: %w", len(b), s.m.maxSize(), ErrTooLarge)
	}
	return b, nil
}

// record builds the row to write at now: deadline, expiry and activity.
// Caller holds mu.
func (s *Session) record(now time.Time) *backend.Record {
	rec := &backend.Record{UserAgent: s.ua, IP: s.ipText(), UpdatedAt: now, LastActivity: now, CreatedAt: now}
	if s.rec != nil {
		rec.Key, rec.UserID, rec.CreatedAt = s.rec.Key, s.rec.UserID, s.rec.CreatedAt
		rec.DeviceKey, rec.DeviceSecret = s.rec.DeviceKey, s.rec.DeviceSecret // kept by a rotation
	}
	if s.renew || s.h.deadline.IsZero() {
		s.h.deadline = now.Add(s.m.lifetime(s.h.persist))
	}
	rec.ExpireDate = s.h.deadline
	if s.m.IdleTimeout > 0 {
		if idle := now.Add(s.m.IdleTimeout); idle.Before(rec.ExpireDate) {
			rec.ExpireDate = idle
		}
	}
	return rec
}

// Commit is what saving a session asks of the response: set the cookie to
// Token until Expires, delete it, or leave it.
type Commit struct {
	// Token is the cookie value to set; "" sets none.
	Token string
	// Expires is the session's expiry, for a persistent cookie.
	Expires time.Time
	// Persist is the session's cookie choice (see Session.Persist).
	Persist Persistence
	// Delete asks to delete the cookie.
	Delete bool
}

// Save writes the session if it needs it and says what the cookie should
// become. After Save the session takes no more changes
// (ErrHeadersWritten): the middleware calls it just before the response
// headers go out. ErrSessionInterrupted means the session was revoked or
// expired while the request ran: nothing was written and the cookie is to
// be deleted.
//
// What it writes: nothing for an untouched session or one that changed
// nothing; an INSERT for a new session with values; an UPDATE when values,
// the user or the deadline changed; a DELETE when everything was removed;
// and, for a session that only was used, one conditional UPDATE of its
// activity (with the request's IP and user agent) once ActivityInterval has
// passed since its last activity: concurrent requests of the session, in
// any process, write it once, and an IP or user agent that changes from
// request to request is recorded at that write, never more often. A failed
// activity write is logged, not returned: the request was served.
func (s *Session) Save(ctx context.Context) (Commit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.committed {
		return Commit{}, nil
	}
	s.committed = true
	if !s.loaded {
		// Untouched: no query. A cookie of the wrong shape is dropped.
		return Commit{Delete: s.hadCookie && s.token == ""}, nil
	}
	if s.err != nil {
		return Commit{}, s.err
	}
	now := s.m.now()
	if s.saveWrites(now) { // a read within ActivityInterval makes no call
		var cancel context.CancelFunc
		ctx, cancel = s.m.bounded(ctx)
		defer cancel()
	}
	empty := len(s.values) == 0 && (s.rec == nil || s.rec.UserID == nil)
	interval := s.m.activityInterval()
	switch {
	case s.rec == nil && (!s.modified || empty):
		// Nothing stored and nothing to store. The cookie of a bound
		// session whose proof is missing stays: the browser refreshes it.
		return Commit{Delete: (s.hadCookie && !s.unproven) || s.ended}, nil
	case s.rec == nil:
		rec := s.record(now)
		data, err := s.encode()
		if err != nil {
			return Commit{}, err
		}
		rec.Data = data
		token, err := s.m.Backend.Create(ctx, rec, now)
		if err != nil {
			return Commit{}, unavailable("writing the session", err)
		}
		s.rec, s.token, s.key, s.newToken = rec, token, rec.Key, true
	case s.modified && empty:
		// Everything was removed: the row goes too.
		if _, err := s.m.revoke(ctx, "", []ending{{key: s.rec.Key}}); err != nil {
			return Commit{}, err
		}
		s.interrupted()
		return Commit{Delete: true}, nil
	case s.modified || s.renew:
		rec := s.record(now)
		data, err := s.encode()
		if err != nil {
			return Commit{}, err
		}
		rec.Data = data
		if err := s.m.Backend.Save(ctx, rec, now); err != nil {
			if errors.Is(err, backend.ErrSessionInterrupted) {
				s.interrupted()
			}
			return Commit{Delete: s.ended}, unavailable("writing the session", err)
		}
		s.rec = rec
		s.newToken = s.newToken || s.h.persist >= 0 // refresh a persistent cookie's expiry
	case now.Sub(s.rec.LastActivity) >= interval:
		rec := s.record(now)
		rec.Data = s.rec.Data // not written: Touch sets activity, expiry, IP and UA
		wrote, err := s.m.Backend.Touch(ctx, rec, now.Add(-interval), now)
		if err != nil {
			s.m.logs.log(s.m.logger(), "activity", "qsessions: recording session activity failed", "err", err)
		} else if wrote {
			if prev := s.rec.IP; prev != "" && rec.IP != "" && prev != rec.IP {
				s.m.emit(ctx, Event{Kind: EventIPChange, UserID: rec.UserID, SessionID: backend.PublicID(rec.Key),
					IP: rec.IP, UserAgent: rec.UserAgent, PreviousIP: prev})
			}
			s.rec = rec
			s.newToken = s.newToken || s.h.persist >= 0
		}
	}
	s.modified, s.renew = false, false
	if s.newToken {
		return Commit{Token: s.token, Expires: s.rec.ExpireDate, Persist: s.h.persist}, nil
	}
	return Commit{}, nil
}

// Committed reports whether Save ran.
func (s *Session) Committed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committed
}

// Values returns a copy of the stored values.
func (s *Session) Values() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load()
	return maps.Clone(s.values)
}

func (m *Manager) activityInterval() time.Duration {
	if m.ActivityInterval > 0 {
		return m.ActivityInterval
	}
	return DefaultActivityInterval
}
