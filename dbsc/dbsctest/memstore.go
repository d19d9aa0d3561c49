package dbsctest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/qsessions/qsessions/dbsc"
)

// MemStore is an in-memory dbsc.Store with the shape of qsessions'
// sessions: a random cookie token whose SHA-256 (hex) is the session key.
// It stands in for the session layer in tests; safe for concurrent use.
type MemStore struct {
	// CookieName is the ordinary session cookie's name; default
	// "sessionid".
	CookieName string

	mu       sync.Mutex
	sessions map[string]*memSession // by session key

	// Binds counts successful Bind calls.
	Binds atomic.Int64
	// Lookups counts Session calls.
	Lookups atomic.Int64
}

type memSession struct {
	user    string
	binding *dbsc.Binding
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{sessions: make(map[string]*memSession)}
}

func (m *MemStore) cookieName() string {
	if m.CookieName == "" {
		return "sessionid"
	}
	return m.CookieName
}

// KeyOf returns the session key of a cookie token: its SHA-256 in hex.
func KeyOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Login creates a signed-in session for user, sets its cookie on w and
// returns the session key.
func (m *MemStore) Login(w http.ResponseWriter, user string) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := b64.EncodeToString(raw)
	key := KeyOf(token)
	m.mu.Lock()
	m.sessions[key] = &memSession{user: user}
	m.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: m.cookieName(), Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return key, nil
}

// Rotate gives the session of key a new token (as Login and CycleKey do)
// keeping its user and binding, sets the new cookie on w and returns the
// new key.
func (m *MemStore) Rotate(w http.ResponseWriter, key string) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := b64.EncodeToString(raw)
	newKey := KeyOf(token)
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[key]
	if !ok {
		return "", dbsc.ErrNoSession
	}
	delete(m.sessions, key)
	m.sessions[newKey] = s
	http.SetCookie(w, &http.Cookie{Name: m.cookieName(), Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return newKey, nil
}

// Revoke ends the session of key.
func (m *MemStore) Revoke(key string) {
	m.mu.Lock()
	delete(m.sessions, key)
	m.mu.Unlock()
}

// Binding returns the binding of the session of key, or nil.
func (m *MemStore) Binding(key string) *dbsc.Binding {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[key]; ok {
		return s.binding
	}
	return nil
}

// Lookup returns the user and binding of r's session, and its key.
func (m *MemStore) Lookup(r *http.Request) (key, user string, b *dbsc.Binding, ok bool) {
	c, err := r.Cookie(m.cookieName())
	if err != nil {
		return "", "", nil, false
	}
	key = KeyOf(c.Value)
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[key]
	if !ok {
		return "", "", nil, false
	}
	return key, s.user, s.binding, true
}

// Session implements dbsc.Store.
func (m *MemStore) Session(r *http.Request) (dbsc.Session, error) {
	m.Lookups.Add(1)
	key, _, b, ok := m.Lookup(r)
	if !ok {
		return dbsc.Session{}, fmt.Errorf("memstore: %w", dbsc.ErrNoSession)
	}
	return dbsc.Session{Key: key, Binding: b}, nil
}

// Bind implements dbsc.Store. Like the real store, it round-trips the
// binding through its stored form (dbsc.ParseBinding).
func (m *MemStore) Bind(_ context.Context, key string, b dbsc.Binding) error {
	stored, err := dbsc.ParseBinding(b.Key.String(), b.Secret)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[key]
	if !ok {
		return fmt.Errorf("memstore: %w", dbsc.ErrNoSession)
	}
	s.binding = stored
	m.Binds.Add(1)
	return nil
}
