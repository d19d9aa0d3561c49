package django

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"
)

// The two Django session tables a Reader reads.
const (
	// DjangoSession is django.contrib.sessions' table: session_key,
	// session_data, expire_date.
	DjangoSession = "django_session"
	// QSessionsSession is django-qsessions' table: DjangoSession's columns
	// plus user_id, user_agent, ip, created_at and updated_at. (The Go
	// app's own table has the same name but lives in the Go app's
	// database.)
	QSessionsSession = "qsessions_session"
)

// ErrNotFound is returned by Reader.Lookup when no live row has the key.
var ErrNotFound = errors.New("django: no live session with this key")

// Row is one row of a Django session table, as stored. Columns the table
// does not have, and NULLs, are left empty.
type Row struct {
	SessionKey  string
	SessionData string
	ExpireDate  time.Time // UTC
	// qsessions_session only.
	UserID    string // the user's primary key as text
	UserAgent string
	IP        string
	CreatedAt time.Time // UTC
	UpdatedAt time.Time // UTC
}

// Querier runs queries: *sql.DB, *sql.Tx and *sql.Conn all are.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Reader reads live rows of one Django session table. It only runs
// SELECTs. It is safe for concurrent use when its Querier is.
type Reader struct {
	q        Querier
	dialect  string
	table    string
	cols     string
	extended bool

	// TimeZone is Django's TIME_ZONE when the Django project has
	// USE_TZ = False: MySQL and SQLite then hold wall-clock times of that
	// zone (PostgreSQL's columns are absolute either way). Nil means UTC,
	// Django's storage with USE_TZ = True. Set it before the first read.
	TimeZone *time.Location
}

// NewReader returns a Reader of table (DjangoSession or QSessionsSession)
// over q, in dialect "postgres", "mysql" or "sqlite3" (ent's dialect names,
// as dburl.DB.Dialect gives them; "sqlite" is accepted too). Cost: none;
// it does not query.
func NewReader(q Querier, dialect, table string) (*Reader, error) {
	r := &Reader{q: q, table: table}
	switch dialect {
	case "postgres", "mysql", "sqlite3":
		r.dialect = dialect
	case "sqlite":
		r.dialect = "sqlite3"
	default:
		return nil, fmt.Errorf("django: unknown SQL dialect %q (want postgres, mysql or sqlite3)", dialect)
	}
	switch table {
	case DjangoSession:
		r.cols = "session_key, session_data, expire_date"
	case QSessionsSession:
		r.extended = true
		userID, ip := "CAST(user_id AS TEXT)", "ip"
		switch r.dialect {
		case "postgres":
			userID, ip = "user_id::text", "host(ip)"
		case "mysql":
			userID = "CAST(user_id AS CHAR)"
		}
		r.cols = "session_key, session_data, expire_date, " + userID + ", user_agent, " + ip + ", created_at, updated_at"
	default:
		return nil, fmt.Errorf("django: unknown session table %q (want %s or %s)", table, DjangoSession, QSessionsSession)
	}
	return r, nil
}

// Table returns the table the Reader reads.
func (r *Reader) Table() string { return r.table }

// ph returns the n-th (1-based) placeholder.
func (r *Reader) ph(n int) string {
	if r.dialect == "postgres" {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// timeArg renders now as the table's expire_date compares with it.
func (r *Reader) timeArg(now time.Time) any {
	now = now.UTC()
	if r.TimeZone != nil && r.dialect != "postgres" {
		w := now.In(r.TimeZone)
		now = time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
	}
	if r.dialect == "sqlite3" {
		// Django stores SQLite datetimes as text "YYYY-MM-DD HH:MM:SS[.ffffff]"
		// and compares them as text.
		return now.Format("2006-01-02 15:04:05.000000")
	}
	return now
}

// Batch returns up to limit live rows (expire_date > now) whose session_key
// sorts after after ("" for the first batch), in session_key order: pass
// the last row's key as after to get the next batch, until a batch is
// shorter than limit. Each call is one indexed query that holds no cursor
// open between batches. Cost: one query, limit rows.
func (r *Reader) Batch(ctx context.Context, after string, limit int, now time.Time) ([]Row, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("django: batch size %d, want > 0", limit)
	}
	query := "SELECT " + r.cols + " FROM " + r.table +
		" WHERE expire_date > " + r.ph(1) + " AND session_key > " + r.ph(2) +
		" ORDER BY session_key LIMIT " + strconv.Itoa(limit)
	return r.query(ctx, query, limit, r.timeArg(now), after)
}

// All yields every live row in session_key order, reading batches of
// batchSize rows with Batch; it stops at the first error, which it yields.
// Cost: one query per batchSize rows.
func (r *Reader) All(ctx context.Context, batchSize int, now time.Time) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		after := ""
		for {
			rows, err := r.Batch(ctx, after, batchSize, now)
			if err != nil {
				yield(Row{}, err)
				return
			}
			for _, row := range rows {
				if !yield(row, nil) {
					return
				}
			}
			if len(rows) < batchSize {
				return
			}
			after = rows[len(rows)-1].SessionKey
		}
	}
}

// Lookup returns the live row whose session_key is exactly sessionKey, or
// ErrNotFound. (Exactly: MySQL's case-insensitive, space-padding
// collations may match other spellings; those are not returned.) Cost: one
// query by primary key.
func (r *Reader) Lookup(ctx context.Context, sessionKey string, now time.Time) (Row, error) {
	query := "SELECT " + r.cols + " FROM " + r.table +
		" WHERE session_key = " + r.ph(1) + " AND expire_date > " + r.ph(2)
	rows, err := r.query(ctx, query, 1, sessionKey, r.timeArg(now))
	if err != nil {
		return Row{}, err
	}
	for _, row := range rows {
		if row.SessionKey == sessionKey {
			return row, nil
		}
	}
	return Row{}, ErrNotFound
}

// CountLive counts the live rows (for progress reports). Cost: one
// COUNT(*) over the expire_date range.
func (r *Reader) CountLive(ctx context.Context, now time.Time) (int64, error) {
	return r.count(ctx, "expire_date > "+r.ph(1), now)
}

// CountExpired counts the rows that are no longer live at now: the rows
// an import leaves behind (Django's clearsessions deletes them). Cost: one
// COUNT(*) over the expire_date range.
func (r *Reader) CountExpired(ctx context.Context, now time.Time) (int64, error) {
	return r.count(ctx, "expire_date <= "+r.ph(1), now)
}

func (r *Reader) count(ctx context.Context, where string, now time.Time) (int64, error) {
	rows, err := r.q.QueryContext(ctx, "SELECT COUNT(*) FROM "+r.table+" WHERE "+where, r.timeArg(now))
	if err != nil {
		return 0, fmt.Errorf("django: counting %s: %w", r.table, err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		err = rows.Scan(&n)
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("django: counting %s: %w", r.table, err)
	}
	return n, nil
}

func (r *Reader) query(ctx context.Context, query string, capHint int, args ...any) ([]Row, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("django: reading %s: %w", r.table, err)
	}
	defer rows.Close()
	out := make([]Row, 0, min(capHint, 1024))
	for rows.Next() {
		var row Row
		var expire, created, updated any
		var userID, ua, ip sql.NullString
		dest := []any{&row.SessionKey, &row.SessionData, &expire}
		if r.extended {
			dest = append(dest, &userID, &ua, &ip, &created, &updated)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("django: reading %s: %w", r.table, err)
		}
		if row.ExpireDate, err = r.toTime(expire); err != nil || row.ExpireDate.IsZero() {
			return nil, fmt.Errorf("%w: %s row %q: expire_date %v: %v", ErrMalformed, r.table, row.SessionKey, expire, err)
		}
		if r.extended {
			row.UserID, row.UserAgent, row.IP = userID.String, ua.String, ip.String
			if row.CreatedAt, err = r.toTime(created); err != nil {
				return nil, fmt.Errorf("%w: %s row %q: created_at: %v", ErrMalformed, r.table, row.SessionKey, err)
			}
			if row.UpdatedAt, err = r.toTime(updated); err != nil {
				return nil, fmt.Errorf("%w: %s row %q: updated_at: %v", ErrMalformed, r.table, row.SessionKey, err)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("django: reading %s: %w", r.table, err)
	}
	return out, nil
}

// toTime converts a scanned datetime column to UTC; NULL gives zero.
func (r *Reader) toTime(v any) (time.Time, error) {
	var t time.Time
	switch v := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		t = v
	case []byte:
		return r.parseTime(string(v))
	case string:
		return r.parseTime(v)
	default:
		return time.Time{}, fmt.Errorf("unexpected type %T", v)
	}
	if r.TimeZone != nil && r.dialect != "postgres" {
		t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), r.TimeZone)
	}
	return t.UTC(), nil
}

// parseTime reads a datetime the driver left as text (SQLite's, as Django
// writes it).
func (r *Reader) parseTime(s string) (time.Time, error) {
	loc := time.UTC
	if r.TimeZone != nil && r.dialect != "postgres" {
		loc = r.TimeZone
	}
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unreadable datetime %q", s)
}
