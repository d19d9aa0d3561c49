package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/entschema"
)

// ErrUserID wraps the error of a user ID that cannot be a value of the
// table's user_id column (text for an integer column, a malformed UUID, a
// value of an unknown Go type). No query is run for it.
var ErrUserID = backend.ErrUserID

// idKind is how user IDs are checked and passed.
type idKind int

const (
	idText     idKind = iota // any valid UTF-8 without NUL
	idInt                    // a decimal int64
	idUnsigned               // a decimal uint64 (MySQL's unsigned integers)
	idUUID                   // 32 hex digits, given in canonical form
)

// userColumn is what the catalog says of user_id.
type userColumn struct {
	typ  string // the type as the catalog prints it, for Postgres' casts and messages
	kind idKind
}

// readUserColumn reads the type of qsessions_session.user_id: one catalog
// query. A missing table or column is an error wrapping backend.ErrNoTable.
func readUserColumn(ctx context.Context, db *sql.DB, dialect string) (userColumn, error) {
	var q string
	switch dialect {
	case Postgres:
		q = `SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
		 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`
	case MySQL:
		q = `SELECT column_type FROM information_schema.columns
		 WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?`
	default:
		q = `SELECT type FROM pragma_table_info(?) WHERE name = ?`
	}
	var typ string
	err := db.QueryRowContext(ctx, q, entschema.Table, entschema.ColumnUserID).Scan(&typ)
	if errors.Is(err, sql.ErrNoRows) {
		return userColumn{}, fmt.Errorf("%w: no table %s with a %s column in this database: apply the migrations that create it "+
			"(`qsessions migrate apply --db URL`, or the app's own)", backend.ErrNoTable, entschema.Table, entschema.ColumnUserID)
	}
	if err != nil {
		return userColumn{}, fmt.Errorf("sqlstore: reading the type of %s.%s: %w", entschema.Table, entschema.ColumnUserID, err)
	}
	return classify(dialect, typ), nil
}

// classify maps a catalog type to how IDs of it are checked.
func classify(dialect, typ string) userColumn {
	c := userColumn{typ: typ}
	t := strings.ToLower(typ)
	switch dialect {
	case Postgres:
		switch t {
		case "smallint", "integer", "bigint":
			c.kind = idInt
		case "uuid":
			c.kind = idUUID
		}
	case MySQL:
		base, _, _ := strings.Cut(t, "(")
		base, _, _ = strings.Cut(base, " ")
		switch base {
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
			c.kind = idInt
			if strings.Contains(t, "unsigned") {
				c.kind = idUnsigned
			}
		case "uuid": // MariaDB 10.7 and later
			c.kind = idUUID
		}
	default:
		// SQLite's type affinity: a declared type containing INT is an
		// integer column. ent declares UUIDs as "uuid" and stores their
		// canonical text.
		switch {
		case strings.Contains(t, "int"):
			c.kind = idInt
		case t == "uuid":
			c.kind = idUUID
		}
	}
	return c
}

// ParseUserID returns id as the text the table's user_id column gives back
// for it (the form Record.UserID holds): an integer in decimal, a UUID in
// lowercase 8-4-4-4-12 form, text as it is. id may be of any Go string or
// integer type (named ones too: type UserID int64) or a fmt.Stringer
// (uuid.UUID). An ID that cannot be a value of
// the column (text for an integer column, a malformed UUID, invalid UTF-8
// or NUL, another Go type) is an error wrapping ErrUserID that names the
// column's type. Cost: a parse, no query.
func (s *Store) ParseUserID(id any) (string, error) {
	text, _, err := s.parseUserID(id)
	return text, err
}

// parseUserID returns the canonical text of id and the parameter that
// stands for it in statements.
func (s *Store) parseUserID(id any) (string, any, error) {
	var text string
	switch v := reflect.ValueOf(id); v.Kind() {
	case reflect.String:
		text = v.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		text = strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		text = strconv.FormatUint(v.Uint(), 10)
	default:
		st, ok := id.(fmt.Stringer)
		if !ok {
			return "", nil, fmt.Errorf("%w: a value of type %T; want a string, an integer or a fmt.Stringer", ErrUserID, id)
		}
		text = st.String()
	}
	bad := func() (string, any, error) {
		return "", nil, fmt.Errorf("%w: %q is not a valid %s", ErrUserID, text, s.uid.typ)
	}
	if !storable(text) || text == "" {
		return bad()
	}
	switch s.uid.kind {
	case idInt:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return bad()
		}
		text = strconv.FormatInt(n, 10)
		if s.dialect != Postgres {
			return text, n, nil
		}
	case idUnsigned:
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return bad()
		}
		text = strconv.FormatUint(n, 10)
		if s.dialect != Postgres {
			return text, n, nil
		}
	case idUUID:
		u, ok := canonicalUUID(text)
		if !ok {
			return bad()
		}
		text = u
	}
	return text, text, nil
}

// userParam is the statement parameter of a Record's user ID: nil for an
// anonymous session.
func (s *Store) userParam(id any) (any, error) {
	if id == nil {
		return nil, nil
	}
	_, p, err := s.parseUserID(id)
	return p, err
}

// canonicalUUID returns s (32 hex digits, with hyphens between groups or
// not, braces or not, any case) in lowercase 8-4-4-4-12 form.
func canonicalUUID(s string) (string, bool) {
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	var hex [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-':
			continue
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", false
		}
		if n == len(hex) {
			return "", false
		}
		hex[n] = c
		n++
	}
	if n != len(hex) {
		return "", false
	}
	h := string(hex[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}
