package django

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrChanged is returned by Mark when the row's session_data is no longer
// what was read (Django saved it, or deleted it, in between): read the row
// again and decide anew.
var ErrChanged = errors.New("django: the session row changed or was deleted since it was read")

// Execer runs statements: *sql.DB, *sql.Tx and *sql.Conn all are.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// MarkedData returns row's session_data with ImportedKey set to
// row.SessionKey, signed again under SECRET_KEY (the Signer's first key)
// in the row's own format and algorithm, with timestamp now, compressed
// when that saves space, as Django would write it. Every other value is
// kept byte for byte: the mark is added to the verified JSON text, never
// re-serialized, so nothing Django reads changes. Data already marked for
// its own key is returned unchanged. Errors are Decode's. Cost: Decode,
// one HMAC and, for the signed format, one zlib compression.
func (s *Signer) MarkedData(row Row, now time.Time) (string, error) {
	d, err := s.Decode(row.SessionData)
	if err != nil {
		return "", err
	}
	if m, ok := d.Values[ImportedKey].(string); ok && m == row.SessionKey {
		return row.SessionData, nil
	}
	js := bytes.TrimRight(d.json, " \t\r\n")
	if len(js) == 0 || js[len(js)-1] != '}' {
		return "", fmt.Errorf("%w: JSON object does not end in '}'", ErrMalformed)
	}
	body := js[:len(js)-1]
	out := make([]byte, 0, len(js)+len(ImportedKey)+len(row.SessionKey)+8)
	out = append(out, body...)
	if len(bytes.TrimRight(body, " \t\r\n")) > 1 { // not "{": has members
		out = append(out, ',')
	}
	// Last, so it wins over any older mark: Python keeps a duplicated key's
	// last value.
	out = appendJSONString(out, ImportedKey)
	out = append(out, ':')
	out = appendJSONString(out, row.SessionKey)
	out = append(out, '}')
	return s.sign(out, d.Format, d.Algorithm, now)
}

// Mark writes MarkedData into row's table with
// UPDATE ... SET session_data = new WHERE session_key = key AND
// session_data = old, so it never overwrites a save Django made after row
// was read (then it returns ErrChanged). Django keeps serving the session:
// it ignores the unknown key and keeps it when it saves the session. A
// marked row is refused by Convert (ErrAlreadyImported). dialect and table
// are NewReader's; db may be a transaction (the same one that inserts the
// qsessions row, when both live in one database). It returns the new
// session_data. Mark is a safeguard, not a guarantee: Django saves a
// session by rewriting the whole row with the data it loaded, so a Django
// request that loaded the session before Mark and saves it after erases
// the mark; Ledger has no such gap. Cost: MarkedData plus one UPDATE by
// primary key.
func (s *Signer) Mark(ctx context.Context, db Execer, dialect, table string, row Row, now time.Time) (string, error) {
	r, err := NewReader(nil, dialect, table)
	if err != nil {
		return "", err
	}
	data, err := s.MarkedData(row, now)
	if err != nil {
		return "", err
	}
	if data == row.SessionData {
		return data, nil
	}
	cmp := "session_data = " + r.ph(3)
	if r.dialect == "mysql" {
		cmp = "BINARY session_data = " + r.ph(3) // exact, whatever the collation
	}
	res, err := db.ExecContext(ctx, "UPDATE "+table+" SET session_data = "+r.ph(1)+
		" WHERE session_key = "+r.ph(2)+" AND "+cmp, data, row.SessionKey, row.SessionData)
	if err != nil {
		return "", fmt.Errorf("django: marking a session in %s: %w", table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return "", fmt.Errorf("django: marking a session in %s: %w", table, err)
	}
	if n == 0 {
		return "", ErrChanged
	}
	return data, nil
}
