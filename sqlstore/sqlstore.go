// Package sqlstore is a backend.Store over database/sql that works on the
// qsessions_session table of any app, without the app's generated ent
// code: the store of tools that serve every app, such as the qsessions
// CLI. It runs the same SQL as the store entschema/entcext generates and
// passes the same conformance suite on PostgreSQL, MySQL/MariaDB and
// SQLite.
//
// User IDs are opaque: a Record read from the table holds its user_id as
// the database prints it ("42", "0b0e5b5e-…" for a UUID), and a user ID
// given to the store (a string, an integer or a fmt.Stringer such as
// uuid.UUID) is converted to the column's type by the database. The type
// of user_id is read from the catalog once, in New, so a malformed ID (text
// for an integer column, say) is a clear error (ErrUserID) before any
// query, on every database alike. ParseUserID gives an ID's canonical text.
//
// The package imports no database driver: it takes the caller's *sql.DB
// (a Postgres app links neither go-sqlite3 nor the MySQL driver through
// it) and recognises unique-key violations by the drivers' error
// contracts (SQLSTATE 23505, MySQL error 1062, SQLite's "UNIQUE constraint
// failed").
//
// sqlstore has no ent hooks: a delete through an app's ent client is not
// seen by it, so it never calls the Invalidators AddInvalidator adds. A
// CachedDB over it still writes its own tombstones for what goes through
// the store (Delete, Rotate, ...), which is what the CLI needs.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/entschema"
)

// Dialects sqlstore knows, by ent's names.
const (
	Postgres = "postgres"
	MySQL    = "mysql" // MySQL and MariaDB
	SQLite   = "sqlite3"
)

// maxExcessKeys bounds the keys one ExcessKeys call returns, as in the
// generated store: a user further past the cap loses the rest at the next
// login.
const maxExcessKeys = 10000

// findLimit bounds the rows one Find returns (as the generated store).
const findLimit = 8

// Store is a backend.Store over the qsessions_session table of one
// database/sql pool. It always uses the pool it was given: give it the
// primary, never a replica. Its statements are built once, in New; each
// method is one statement (Update adds a SELECT only when MySQL counts no
// changed row, Rotate is a transaction of two). Safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect string
	cfg     backend.StoreConfig
	inv     backend.Invalidators
	uid     userColumn

	// Statements, built once by build.
	get, insert, update, updateLive, touch, bind string
	rotateDelete, userSessions, excess           string
	find, expiredAll, expiredFrom                string
	live, liveN                                  string
	// Prefixes of the statements with IN lists (see inList).
	deleteIn, deleteExpiredIn string
	// Column lists of the SELECTs.
	selectAll, selectNoData string
}

var _ backend.Store = (*Store)(nil)

// New returns the Store over the qsessions_session table of db. dialect is
// ent's dialect name: "postgres", "mysql" (MySQL and MariaDB) or "sqlite3"
// ("sqlite" is taken too). opts are those of a generated store; only
// backend.WithKeyBatch matters (keys per DELETE; the clock serves hooks,
// which sqlstore has none of).
//
// New reads the type of user_id from the catalog (one query), so it fails,
// with an error wrapping backend.ErrNoTable that names the fix, when the
// table is missing. Cost: that query and building the statements.
func New(ctx context.Context, db *sql.DB, dialect string, opts ...backend.StoreOption) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New needs a *sql.DB")
	}
	switch dialect {
	case Postgres, MySQL, SQLite:
	case "sqlite":
		dialect = SQLite
	default:
		return nil, fmt.Errorf("sqlstore: unknown dialect %q (want %s, %s or %s)", dialect, Postgres, MySQL, SQLite)
	}
	s := &Store{db: db, dialect: dialect, cfg: backend.NewStoreConfig(opts...)}
	uid, err := readUserColumn(ctx, db, dialect)
	if err != nil {
		return nil, err
	}
	s.uid = uid
	s.build()
	return s, nil
}

// Dialect returns the store's dialect, by ent's name.
func (s *Store) Dialect() string { return s.dialect }

// UserIDType returns the database type of the user_id column as the
// catalog names it ("bigint", "uuid", "integer", ...).
func (s *Store) UserIDType() string { return s.uid.typ }

// rebind turns the ? placeholders of q into Postgres' $n.
func (s *Store) rebind(q string) string {
	if s.dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// userMark stands for the type of user_id in statements until rebind has
// numbered the placeholders.
const userMark = "{user}"

// build makes every statement of the store.
func (s *Store) build() {
	const (
		t    = entschema.Table
		key  = entschema.ColumnKey
		exp  = entschema.ColumnExpireDate
		uid  = entschema.ColumnUserID
		last = entschema.ColumnLastActivity
	)
	text := "TEXT"
	if s.dialect == MySQL {
		text = "CHAR"
	}
	userText := "CAST(" + uid + " AS " + text + ")"
	s.selectAll = strings.Join([]string{key, entschema.ColumnData, exp, userText, entschema.ColumnUserAgent,
		entschema.ColumnIP, entschema.ColumnCreatedAt, entschema.ColumnUpdatedAt, last,
		entschema.ColumnDeviceKey, entschema.ColumnDeviceSecret}, ", ")
	s.selectNoData = strings.Join([]string{key, exp, userText, entschema.ColumnUserAgent,
		entschema.ColumnIP, entschema.ColumnCreatedAt, entschema.ColumnUpdatedAt, last,
		entschema.ColumnDeviceKey, entschema.ColumnDeviceSecret}, ", ")
	userPH := "?"
	if s.dialect == Postgres {
		// $n::text, then a cast to the column's type: the comparison stays
		// on the column's type, so the (user_id, expire_date) index serves.
		userPH = "CAST(?::text AS " + userMark + ")"
	}
	q := func(sql string) string {
		sql = strings.ReplaceAll(sql, "{U}", userPH)
		return strings.ReplaceAll(s.rebind(sql), userMark, s.uid.typ)
	}
	s.get = q("SELECT " + s.selectAll + " FROM " + t + " WHERE " + key + " = ? AND " + exp + " > ?")
	s.insert = q("INSERT INTO " + t + " (" + key + ", " + entschema.ColumnData + ", " + exp + ", " + uid + ", " +
		entschema.ColumnUserAgent + ", " + entschema.ColumnIP + ", " + entschema.ColumnCreatedAt + ", " +
		entschema.ColumnUpdatedAt + ", " + last + ", " + entschema.ColumnDeviceKey + ", " + entschema.ColumnDeviceSecret +
		") VALUES (?, ?, ?, {U}, ?, ?, ?, ?, ?, ?, ?)")
	s.bind = q("UPDATE " + t + " SET " + entschema.ColumnDeviceKey + " = ?, " + entschema.ColumnDeviceSecret + " = ? WHERE " +
		key + " = ? AND " + exp + " > ?")
	s.update = q("UPDATE " + t + " SET " + entschema.ColumnData + " = ?, " + exp + " = ?, " + uid + " = {U}, " +
		entschema.ColumnUserAgent + " = ?, " + entschema.ColumnIP + " = ?, " + entschema.ColumnUpdatedAt + " = ?, " +
		last + " = ? WHERE " + key + " = ? AND " + exp + " > ?")
	s.updateLive = q("SELECT 1 FROM " + t + " WHERE " + key + " = ? AND " + exp + " > ?")
	s.touch = q("UPDATE " + t + " SET " + exp + " = ?, " + entschema.ColumnUpdatedAt + " = ?, " + last + " = ?, " +
		entschema.ColumnUserAgent + " = ?, " + entschema.ColumnIP + " = ? WHERE " + key + " = ? AND " + exp + " > ? AND " +
		last + " < ?")
	s.rotateDelete = q("DELETE FROM " + t + " WHERE " + key + " = ? AND " + exp + " > ?")
	order := " ORDER BY " + last + " DESC, " + key
	s.userSessions = q("SELECT " + s.selectAll + " FROM " + t + " WHERE " + uid + " = {U} AND " + exp + " > ?" + order)
	s.excess = q("SELECT " + key + " FROM " + t + " WHERE " + uid + " = {U} AND " + exp + " > ?" + order + " LIMIT ? OFFSET ?")
	s.find = q("SELECT " + s.selectAll + " FROM " + t + " WHERE " + key + " BETWEEN ? AND ? ORDER BY " + key +
		" LIMIT " + strconv.Itoa(findLimit))
	s.expiredAll = q("SELECT " + key + ", " + exp + " FROM " + t + " WHERE " + exp + " <= ? ORDER BY " + exp + " LIMIT ?")
	s.expiredFrom = q("SELECT " + key + ", " + exp + " FROM " + t + " WHERE " + exp + " <= ? AND " + exp + " >= ? ORDER BY " +
		exp + " LIMIT ?")
	s.live = q("SELECT " + s.selectNoData + " FROM " + t + " WHERE " + exp + " > ?" + order)
	s.liveN = q("SELECT " + s.selectNoData + " FROM " + t + " WHERE " + exp + " > ?" + order + " LIMIT ?")
	// The IN lists vary in length: their prefix is built here, the
	// placeholders per call (inList).
	s.deleteIn = "DELETE FROM " + t + " WHERE " + key + " IN ("
	s.deleteExpiredIn = "DELETE FROM " + t + " WHERE " + exp + " <= " + s.rebind("?") + " AND " + key + " IN ("
}

// inList returns prefix followed by n placeholders, the first numbered
// first (Postgres), and a closing parenthesis.
func (s *Store) inList(prefix string, first, n int) string {
	var b strings.Builder
	b.Grow(len(prefix) + n*6)
	b.WriteString(prefix)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if s.dialect == Postgres {
			b.WriteString("$" + strconv.Itoa(first+i))
		} else {
			b.WriteByte('?')
		}
	}
	b.WriteByte(')')
	return b.String()
}

// storable reports whether s can be a value of a text column on every
// database: valid UTF-8 without NUL (Postgres refuses both). A key that is
// not names no session and costs no query.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// nullText is s as a parameter: NULL when empty.
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// data is b as a parameter: session_data is NOT NULL, so nil is empty.
func data(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// AddInvalidator implements backend.Store. sqlstore has no ent hooks and
// sees no write but its own, so it never calls inv; the list is kept so
// that a CachedDB over the store can add and remove itself as over any
// Store. Cost: a copy of the list.
func (s *Store) AddInvalidator(inv backend.Invalidator) (remove func()) { return s.inv.Add(inv) }

// Check implements backend.Store: it verifies that qsessions_session and
// every column the store uses exist, with one catalog query; the error
// wraps backend.ErrNoTable and names what is missing.
func (s *Store) Check(ctx context.Context) error {
	return backend.CheckTable(ctx, func(ctx context.Context, q string, args ...any) (backend.Rows, error) {
		return s.db.QueryContext(ctx, q, args...)
	}, s.dialect, entschema.Table, entschema.ColumnKey, entschema.ColumnData, entschema.ColumnExpireDate,
		entschema.ColumnUserID, entschema.ColumnUserAgent, entschema.ColumnIP, entschema.ColumnCreatedAt,
		entschema.ColumnUpdatedAt, entschema.ColumnLastActivity, entschema.ColumnDeviceKey, entschema.ColumnDeviceSecret)
}

// Get implements backend.Store: one SELECT by primary key of a row that
// expires after now.
func (s *Store) Get(ctx context.Context, key string, now time.Time) (*backend.Record, error) {
	if !storable(key) {
		return nil, backend.ErrNotFound
	}
	rows, err := s.db.QueryContext(ctx, s.get, key, backend.Time(now))
	if err != nil {
		return nil, fmt.Errorf("selecting the session: %w", err)
	}
	rs, err := scanRecords(rows, true)
	if err != nil {
		return nil, fmt.Errorf("selecting the session: %w", err)
	}
	if len(rs) == 0 {
		return nil, backend.ErrNotFound
	}
	return rs[0], nil
}

// insertArgs returns the parameters of the INSERT of rec.
func (s *Store) insertArgs(rec *backend.Record) ([]any, error) {
	uid, err := s.userParam(rec.UserID)
	if err != nil {
		return nil, err
	}
	return []any{rec.Key, data(rec.Data), backend.Time(rec.ExpireDate), uid,
		nullText(backend.NormalizeUserAgent(rec.UserAgent)), nullText(backend.NormalizeIP(rec.IP)),
		backend.Time(rec.CreatedAt), backend.Time(rec.UpdatedAt), backend.Time(rec.LastActivity),
		nullText(rec.DeviceKey), deviceSecret(rec)}, nil
}

// deviceSecret is rec's binding secret as a parameter: NULL when unbound.
func deviceSecret(rec *backend.Record) any {
	if rec.DeviceKey == "" {
		return nil
	}
	return rec.DeviceSecret
}

// Bind implements backend.Store: one UPDATE of the two device-binding
// columns of the live row; backend.ErrNotFound when it is not live.
func (s *Store) Bind(ctx context.Context, key, deviceKey string, secret []byte, now time.Time) error {
	var sec any
	if deviceKey != "" {
		sec = secret
	}
	res, err := s.db.ExecContext(ctx, s.bind, nullText(deviceKey), sec, key, backend.Time(now))
	if err != nil {
		return fmt.Errorf("binding the session to a device: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("binding the session to a device: %w", err)
	}
	if n == 0 {
		return backend.ErrNotFound
	}
	return nil
}

// checkKey refuses a key no database stores alike.
func checkKey(key string) error {
	if key == "" || !storable(key) {
		return fmt.Errorf("sqlstore: session key %q: want non-empty UTF-8 text without NUL", key)
	}
	return nil
}

// Insert implements backend.Store: one INSERT, never an upsert;
// backend.ErrKeyExists when the key is taken.
func (s *Store) Insert(ctx context.Context, rec *backend.Record) error {
	if err := checkKey(rec.Key); err != nil {
		return err
	}
	args, err := s.insertArgs(rec)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.insert, args...); err != nil {
		if IsUniqueViolation(err) {
			return backend.ErrKeyExists
		}
		return fmt.Errorf("inserting the session: %w", err)
	}
	return nil
}

// Update implements backend.Store: one UPDATE of the live row, keeping
// created_at. When it counts no row, one SELECT tells a session that ended
// (backend.ErrSessionInterrupted) from a save that changed nothing, which
// MySQL does not count unless the connection sets clientFoundRows (dburl
// does; a caller's own pool may not).
func (s *Store) Update(ctx context.Context, rec *backend.Record, now time.Time) error {
	uid, err := s.userParam(rec.UserID)
	if err != nil {
		return err
	}
	if !storable(rec.Key) {
		return backend.ErrSessionInterrupted
	}
	now = backend.Time(now)
	res, err := s.db.ExecContext(ctx, s.update, data(rec.Data), backend.Time(rec.ExpireDate), uid,
		nullText(backend.NormalizeUserAgent(rec.UserAgent)), nullText(backend.NormalizeIP(rec.IP)),
		backend.Time(rec.UpdatedAt), backend.Time(rec.LastActivity), rec.Key, now)
	if err != nil {
		return fmt.Errorf("updating the session: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("updating the session: %w", err)
	}
	if n > 0 {
		return nil
	}
	var one int
	switch err := s.db.QueryRowContext(ctx, s.updateLive, rec.Key, now).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return backend.ErrSessionInterrupted
	case err != nil:
		return fmt.Errorf("updating the session: %w", err)
	}
	return nil
}

// Touch implements backend.Store: one UPDATE of the activity, expiry,
// updated_at, IP and user agent, only of a live row whose last activity
// is before cutoff, so concurrent requests of one session write once per
// interval.
func (s *Store) Touch(ctx context.Context, rec *backend.Record, cutoff, now time.Time) (bool, error) {
	if !storable(rec.Key) {
		return false, nil
	}
	res, err := s.db.ExecContext(ctx, s.touch, backend.Time(rec.ExpireDate), backend.Time(rec.UpdatedAt),
		backend.Time(rec.LastActivity), nullText(backend.NormalizeUserAgent(rec.UserAgent)),
		nullText(backend.NormalizeIP(rec.IP)), rec.Key, backend.Time(now), backend.Time(cutoff))
	if err != nil {
		return false, fmt.Errorf("updating the session's activity: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("updating the session's activity: %w", err)
	}
	return n > 0, nil
}

// Rotate implements backend.Store: in one transaction, a DELETE of the
// live row oldKey and an INSERT of rec; backend.ErrSessionInterrupted when
// oldKey is no longer live, backend.ErrKeyExists when rec.Key is taken,
// and in both cases nothing is written.
func (s *Store) Rotate(ctx context.Context, oldKey string, rec *backend.Record, now time.Time) (err error) {
	if err := checkKey(rec.Key); err != nil {
		return err
	}
	args, err := s.insertArgs(rec)
	if err != nil {
		return err
	}
	if !storable(oldKey) {
		return backend.ErrSessionInterrupted
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("rotating the session key: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	res, err := tx.ExecContext(ctx, s.rotateDelete, oldKey, backend.Time(now))
	if err != nil {
		return fmt.Errorf("rotating the session key: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("rotating the session key: %w", err)
	}
	if n == 0 {
		return backend.ErrSessionInterrupted
	}
	if _, err = tx.ExecContext(ctx, s.insert, args...); err != nil {
		if IsUniqueViolation(err) {
			return backend.ErrKeyExists
		}
		return fmt.Errorf("rotating the session key: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("rotating the session key: %w", err)
	}
	return nil
}

// Delete implements backend.Store: one DELETE per KeyBatch keys (default
// 1000); it returns how many rows went. Keys no database could hold are
// skipped.
func (s *Store) Delete(ctx context.Context, keys ...string) (int, error) {
	args := make([]any, 0, min(len(keys), s.cfg.KeyBatch))
	total := 0
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		res, err := s.db.ExecContext(ctx, s.inList(s.deleteIn, 1, len(args)), args...)
		args = args[:0]
		if err != nil {
			return fmt.Errorf("deleting rows by key: %w", err)
		}
		n, err := res.RowsAffected()
		total += int(n)
		if err != nil {
			return fmt.Errorf("deleting rows by key: %w", err)
		}
		return nil
	}
	for _, k := range keys {
		if !storable(k) {
			continue
		}
		args = append(args, k)
		if len(args) == s.cfg.KeyBatch {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	return total, flush()
}

// DeleteExpired implements backend.Store: a SELECT of at most limit keys
// with from <= expire_date <= now in expire_date order (the expire_date
// index, oldest first), then one DELETE of those keys that are still
// expired. It returns how many rows went and the batch's latest
// expire_date (zero when the batch was empty).
func (s *Store) DeleteExpired(ctx context.Context, from, now time.Time, limit int) (int, time.Time, error) {
	if limit < 1 {
		return 0, time.Time{}, fmt.Errorf("sqlstore: DeleteExpired limit %d: want at least 1", limit)
	}
	now = backend.Time(now)
	var rows *sql.Rows
	var err error
	if from.IsZero() {
		rows, err = s.db.QueryContext(ctx, s.expiredAll, now, limit)
	} else {
		rows, err = s.db.QueryContext(ctx, s.expiredFrom, now, backend.Time(from), limit)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("selecting expired rows: %w", err)
	}
	args := []any{now}
	var last time.Time
	err = func() error {
		defer rows.Close()
		for rows.Next() {
			var k string
			var at time.Time
			if err := rows.Scan(&k, timeScanner{&at}); err != nil {
				return err
			}
			args = append(args, k)
			last = at
		}
		return rows.Err()
	}()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("selecting expired rows: %w", err)
	}
	if len(args) == 1 {
		return 0, time.Time{}, nil
	}
	res, err := s.db.ExecContext(ctx, s.inList(s.deleteExpiredIn, 2, len(args)-1), args...)
	if err != nil {
		return 0, last, fmt.Errorf("deleting expired rows: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return int(n), last, fmt.Errorf("deleting expired rows: %w", err)
	}
	return int(n), last, nil
}

// UserSessions implements backend.Store: one SELECT on the
// (user_id, expire_date) index, newest last activity first. A nil userID
// has no sessions; one that cannot be a user_id is an error wrapping
// ErrUserID.
func (s *Store) UserSessions(ctx context.Context, userID any, now time.Time) ([]*backend.Record, error) {
	if userID == nil {
		return nil, nil
	}
	uid, err := s.userParam(userID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.userSessions, uid, backend.Time(now))
	if err != nil {
		return nil, fmt.Errorf("selecting by user_id: %w", err)
	}
	rs, err := scanRecords(rows, true)
	if err != nil {
		return nil, fmt.Errorf("selecting by user_id: %w", err)
	}
	return rs, nil
}

// ExcessKeys implements backend.Store: one SELECT of keys (never
// session_data) on the (user_id, expire_date) index, past the newest keep
// by last activity, at most 10,000.
func (s *Store) ExcessKeys(ctx context.Context, userID any, now time.Time, keep int) ([]string, error) {
	if userID == nil {
		return nil, nil
	}
	uid, err := s.userParam(userID)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.excess, uid, backend.Time(now), maxExcessKeys, max(keep, 0))
	if err != nil {
		return nil, fmt.Errorf("selecting keys by user_id: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("selecting keys by user_id: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("selecting keys by user_id: %w", err)
	}
	return keys, nil
}

// Find implements backend.Store: one SELECT of the primary-key range of
// the keys that start with publicID (16 lowercase hex digits; anything
// else finds nothing and costs no query), live or expired, at most 8 rows.
func (s *Store) Find(ctx context.Context, publicID string) ([]*backend.Record, error) {
	if id, ok := backend.ParsePublicID(publicID); !ok || id != publicID {
		return nil, nil
	}
	lo, hi := backend.PublicIDRange(publicID)
	rows, err := s.db.QueryContext(ctx, s.find, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("selecting the key range of %s: %w", publicID, err)
	}
	rs, err := scanRecords(rows, true)
	if err != nil {
		return nil, fmt.Errorf("selecting the key range of %s: %w", publicID, err)
	}
	return rs, nil
}

// Live returns the live sessions of every user (and the anonymous ones),
// newest last activity first, then by key, without Data: at most limit of
// them, or all when limit is 0. It is not part of backend.Store: it serves
// listings across users such as `qsessions sessions list --all`. Cost: one
// SELECT that reads every live row (no index orders by last activity) and
// returns at most limit.
func (s *Store) Live(ctx context.Context, now time.Time, limit int) ([]*backend.Record, error) {
	if limit < 0 {
		return nil, fmt.Errorf("sqlstore: Live limit %d: want 0 (all) or more", limit)
	}
	var rows *sql.Rows
	var err error
	if limit == 0 {
		rows, err = s.db.QueryContext(ctx, s.live, backend.Time(now))
	} else {
		rows, err = s.db.QueryContext(ctx, s.liveN, backend.Time(now), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("selecting live sessions: %w", err)
	}
	rs, err := scanRecords(rows, false)
	if err != nil {
		return nil, fmt.Errorf("selecting live sessions: %w", err)
	}
	return rs, nil
}

// scanRecords reads every row of rows (the columns of selectAll, or of
// selectNoData when withData is false) and closes them.
func scanRecords(rows *sql.Rows, withData bool) ([]*backend.Record, error) {
	defer rows.Close()
	var out []*backend.Record
	for rows.Next() {
		r := &backend.Record{}
		var uid, ua, ip, dk sql.NullString
		var secret []byte
		dest := make([]any, 0, 9)
		dest = append(dest, &r.Key)
		if withData {
			dest = append(dest, &r.Data)
		}
		dest = append(dest, timeScanner{&r.ExpireDate}, &uid, &ua, &ip,
			timeScanner{&r.CreatedAt}, timeScanner{&r.UpdatedAt}, timeScanner{&r.LastActivity}, &dk, &secret)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if dk.Valid && dk.String != "" && secret != nil {
			r.DeviceKey, r.DeviceSecret = dk.String, secret
		}
		if uid.Valid {
			r.UserID = uid.String
		}
		r.UserAgent, r.IP = ua.String, ip.String
		out = append(out, r)
	}
	return out, rows.Err()
}

// timeScanner scans a time column into *t in UTC: a time.Time from drivers
// that parse times (pgx, go-sqlite3, MySQL with parseTime), or the text of
// a MySQL DATETIME from a connection without parseTime.
type timeScanner struct{ t *time.Time }

// timeLayouts are the texts of times a driver may hand over.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
}

// Scan implements sql.Scanner.
func (ts timeScanner) Scan(v any) error {
	var text string
	switch v := v.(type) {
	case time.Time:
		*ts.t = v.UTC()
		return nil
	case []byte:
		text = string(v)
	case string:
		text = v
	default:
		return fmt.Errorf("a time column holds %T", v)
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, text); err == nil {
			*ts.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("a time column holds %q, which is no time", text)
}
