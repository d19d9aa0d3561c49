package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"entgo.io/ent/dialect"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/device"
	"github.com/qsessions/qsessions/entschema"
	"github.com/qsessions/qsessions/location"
)

func init() {
	commands["sessions"] = command{
		summary: "list or revoke sessions by public id or user (plain SQL on any app's qsessions_session)",
		run:     group(sessionsUsage, sub{"list", sessionsList}, sub{"revoke", sessionsRevoke}),
	}
}

const sessionsUsage = `usage:
  qsessions sessions list   --db URL (--user ID | --all) [--json] [--geoip-dir DIR] [--limit N]
  qsessions sessions revoke --db URL [--user ID] ID...
  qsessions sessions revoke --db URL --user ID

list prints live sessions, newest activity first, as a table (public id,
user, device, location, IP, times) or as JSON ({"sessions": [...]}, the
shape of the pages' /api/sessions plus user_id).

revoke ends sessions by their public id (the id the pages, the JSON and
this list show), or every session of one user when no id is given.

Both work with plain SQL on the qsessions_session table of any app, with
user IDs taken as opaque strings (42, a UUID, ...), not through generated
ent code. Public ids are hashes of the stored keys, so no index finds
them: revoke reads the keys of the candidate rows and hashes each one.
With --user those are the user's live sessions (one indexed query); without
it, every live session (a scan: about 64 bytes and one SHA-256 per row,
roughly a second per million sessions).

SQL outside the app's ent client is not seen by a cached_db backend: pass
--memcache with the app's servers and --cache-prefix to write the
tombstones that keep revoked sessions out of the cache at once. Without it
they end there within the app's cache TTL (5 minutes by default); an app
with the in-process cache keeps them until then.
`

// parseInterspersed parses flags wherever they stand among the positional
// arguments (the flag package stops at the first positional one) and
// returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// sqlTable is the session table and the SQL of one dialect.
type sqlTable struct {
	db *dburl.DB
	// pgUserIDType is the Postgres type of user_id ("bigint", "uuid", ...),
	// read by prepareUserID.
	pgUserIDType string
}

// openSessionDB opens --db and checks that it can connect.
func openSessionDB(ctx context.Context, rawURL string) (*sqlTable, error) {
	if rawURL == "" {
		return nil, errors.New("--db is required (an Atlas URL such as postgres://user@host/db?search_path=public)")
	}
	db, err := dburl.Open(rawURL)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.SQL.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to %s: %w", db.URL, err)
	}
	return &sqlTable{db: db}, nil
}

func (t *sqlTable) Close() error { return t.db.Close() }

// ph returns the n-th (1-based) placeholder of the dialect.
func (t *sqlTable) ph(n int) string {
	if t.db.Dialect == dialect.Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// phs returns count placeholders from the n-th on, comma-separated.
func (t *sqlTable) phs(n, count int) string {
	var b strings.Builder
	for i := range count {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.ph(n + i))
	}
	return b.String()
}

// userIDText is the user_id column as text, whatever its type (integer,
// UUID, string), so IDs stay opaque.
func (t *sqlTable) userIDText() string {
	if t.db.Dialect == dialect.MySQL {
		return "CAST(" + entschema.ColumnUserID + " AS CHAR)"
	}
	return "CAST(" + entschema.ColumnUserID + " AS TEXT)"
}

// userIDParam is the placeholder n compared with user_id. The ID comes as
// text; MySQL and SQLite convert it to the column's type themselves, and
// Postgres is told to, so the (user_id, expire_date) index is used.
func (t *sqlTable) userIDParam(n int) string {
	if t.db.Dialect == dialect.Postgres {
		return "CAST(" + t.ph(n) + "::text AS " + t.pgUserIDType + ")"
	}
	return t.ph(n)
}

// dbNow is the current time as every qsessions writer stores it.
func dbNow() time.Time { return backend.Time(time.Now()) }

// sessionRow is one row of qsessions_session, without its data.
type sessionRow struct {
	Key                                            string
	UserID                                         sql.NullString
	UserAgent, IP                                  sql.NullString
	CreatedAt, UpdatedAt, LastActivity, ExpireDate time.Time
}

// prepareUserID looks up the Postgres type of user_id once, for the casts in
// userIDParam. Other dialects need none.
func (t *sqlTable) prepareUserID(ctx context.Context) error {
	if t.db.Dialect != dialect.Postgres || t.pgUserIDType != "" {
		return nil
	}
	var typ string
	err := t.db.SQL.QueryRowContext(ctx,
		`SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
		 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped`,
		entschema.Table, entschema.ColumnUserID).Scan(&typ)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("no table %s with a %s column in the search path of %s", entschema.Table, entschema.ColumnUserID, t.db.URL)
	}
	if err != nil {
		return fmt.Errorf("reading the type of %s.%s: %w", entschema.Table, entschema.ColumnUserID, err)
	}
	t.pgUserIDType = typ
	return nil
}

const rowColumns = entschema.ColumnKey + ", %s, " + entschema.ColumnUserAgent + ", " + entschema.ColumnIP + ", " +
	entschema.ColumnCreatedAt + ", " + entschema.ColumnUpdatedAt + ", " + entschema.ColumnLastActivity + ", " + entschema.ColumnExpireDate

func scanRow(rows *sql.Rows) (sessionRow, error) {
	var r sessionRow
	err := rows.Scan(&r.Key, &r.UserID, &r.UserAgent, &r.IP, &r.CreatedAt, &r.UpdatedAt, &r.LastActivity, &r.ExpireDate)
	r.CreatedAt, r.UpdatedAt, r.LastActivity, r.ExpireDate = r.CreatedAt.UTC(), r.UpdatedAt.UTC(), r.LastActivity.UTC(), r.ExpireDate.UTC()
	return r, err
}

// listJSON is one session of `sessions list --json`.
type listJSON struct {
	ID           string      `json:"id"`
	UserID       *string     `json:"user_id"`
	Device       string      `json:"device"`
	DeviceInfo   device.Info `json:"device_info"`
	Location     string      `json:"location"`
	IP           string      `json:"ip"`
	UserAgent    string      `json:"user_agent"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
	LastActivity time.Time   `json:"last_activity"`
	ExpireDate   time.Time   `json:"expire_date"`
}

func sessionsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions sessions list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sessionsUsage); fs.PrintDefaults() }
	dbURL := fs.String("db", "", "database URL: postgres://, mysql://, maria:// or sqlite:// (required)")
	userID := fs.String("user", "", "list this user's live sessions (the user_id as text)")
	all := fs.Bool("all", false, "list every live session, of every user and anonymous")
	asJSON := fs.Bool("json", false, `print {"sessions": [...]} instead of a table`)
	geoDir := fs.String("geoip-dir", "", "directory with GeoLite2-City.mmdb and/or GeoLite2-Country.mmdb, for the location column")
	limit := fs.Int("limit", 1000, "print at most this many sessions, newest activity first (0: all)")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return fmt.Errorf("unexpected arguments %q", pos)
	case (*userID == "") == !*all:
		return errors.New("give either --user ID or --all")
	case *limit < 0:
		return fmt.Errorf("--limit %d: must be 0 (all) or more", *limit)
	}
	var geo *location.Reader
	if *geoDir != "" {
		if geo, err = location.Open(*geoDir); err != nil {
			return fmt.Errorf("--geoip-dir: %w", err)
		}
		defer geo.Close()
	}
	t, err := openSessionDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := t.prepareUserID(ctx); err != nil {
		return err
	}
	where := entschema.ColumnExpireDate + " > " + t.ph(1)
	params := []any{dbNow()}
	if *userID != "" {
		where += " AND " + entschema.ColumnUserID + " = " + t.userIDParam(2)
		params = append(params, *userID)
	}
	q := "SELECT " + fmt.Sprintf(rowColumns, t.userIDText()) + " FROM " + entschema.Table + " WHERE " + where +
		" ORDER BY " + entschema.ColumnLastActivity + " DESC, " + entschema.ColumnKey
	if *limit > 0 {
		q += " LIMIT " + strconv.Itoa(*limit+1)
	}
	rows, err := t.db.SQL.QueryContext(ctx, q, params...)
	if err != nil {
		return fmt.Errorf("listing sessions: %w", err)
	}
	defer rows.Close()
	var list []sessionRow
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return fmt.Errorf("reading a session row: %w", err)
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing sessions: %w", err)
	}
	more := *limit > 0 && len(list) > *limit
	if more {
		list = list[:*limit]
	}
	places := map[string]string{}
	place := func(ip string) string {
		if geo == nil || ip == "" {
			return ""
		}
		if p, ok := places[ip]; ok {
			return p
		}
		a, err := netip.ParseAddr(ip)
		p := ""
		if err == nil {
			p = location.Describe(geo, a)
		}
		places[ip] = p
		return p
	}
	if *asJSON {
		out := struct {
			Sessions []listJSON `json:"sessions"`
		}{Sessions: make([]listJSON, len(list))}
		for i, r := range list {
			d := device.Parse(r.UserAgent.String)
			var uid *string
			if r.UserID.Valid {
				uid = &r.UserID.String
			}
			out.Sessions[i] = listJSON{
				ID: backend.PublicID(r.Key), UserID: uid, Device: d.String(), DeviceInfo: d,
				Location: place(r.IP.String), IP: r.IP.String, UserAgent: r.UserAgent.String,
				CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, LastActivity: r.LastActivity, ExpireDate: r.ExpireDate,
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tDEVICE\tLOCATION\tIP\tCREATED\tLAST ACTIVITY\tEXPIRES")
		const layout = "2006-01-02 15:04"
		for _, r := range list {
			uid := "-"
			if r.UserID.Valid {
				uid = r.UserID.String
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", backend.PublicID(r.Key), tableCell(uid),
				device.Parse(r.UserAgent.String).Short(), tableCell(place(r.IP.String)), tableCell(r.IP.String),
				r.CreatedAt.Format(layout), r.LastActivity.Format(layout), r.ExpireDate.Format(layout))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	switch {
	case more:
		fmt.Fprintf(stderr, "(the first %d live sessions; --limit 0 lists all)\n", *limit)
	case len(list) == 0 && !*asJSON:
		fmt.Fprintln(stderr, "no live sessions")
	}
	return nil
}

// tableCell makes a value safe for one table cell: no tabs or line breaks (a
// user ID is opaque text), "-" when empty.
func tableCell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// revokeBatch is how many keys one DELETE names.
const revokeBatch = 500

func sessionsRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions sessions revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sessionsUsage); fs.PrintDefaults() }
	dbURL := fs.String("db", "", "database URL: postgres://, mysql://, maria:// or sqlite:// (required)")
	userID := fs.String("user", "", "the user whose sessions to revoke: all of them without IDs, else only among them")
	servers := fs.String("memcache", "", "the app's memcached servers (host:port,...), to write cache tombstones for the revoked sessions")
	prefix := fs.String("cache-prefix", backend.DefaultCachePrefix, "the app's cache key prefix (CachedOptions.Prefix)")
	ttl := fs.Duration("cache-ttl", backend.DefaultCacheTTL, "the app's cache TTL (CachedOptions.TTL); tombstones live this long")
	ids, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ids) == 0 && *userID == "" {
		return errors.New("give the public ids of the sessions to revoke, or --user ID to revoke all of a user's sessions")
	}
	want := map[string]bool{}
	var bad []string
	for _, id := range ids {
		id = strings.ToLower(strings.TrimSpace(id))
		if !validPublicID(id) {
			bad = append(bad, id)
			continue
		}
		want[id] = true
	}
	if len(bad) > 0 {
		return fmt.Errorf("not public session ids (16 hex digits, as `sessions list` shows): %s", strings.Join(bad, ", "))
	}
	var cache *backend.CachedDB
	if *servers != "" {
		mc, err := backend.NewMemcache(strings.Split(*servers, ","), backend.MemcacheOptions{})
		if err != nil {
			return fmt.Errorf("--memcache: %w", err)
		}
		defer mc.Close()
		// The cached_db backend is used only for its tombstones; its Store
		// is never asked.
		cache, err = backend.NewCachedDB(backend.NewMemStore(), mc, backend.CachedOptions{Prefix: *prefix, TTL: *ttl})
		if err != nil {
			return fmt.Errorf("--cache-prefix/--cache-ttl: %w", err)
		}
	}
	t, err := openSessionDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer t.Close()
	if err := t.prepareUserID(ctx); err != nil {
		return err
	}
	var keys []string
	n := 0
	if len(want) == 0 {
		keys, n, err = t.revokeUser(ctx, *userID)
	} else {
		keys, n, err = t.revokeIDs(ctx, *userID, want)
	}
	if len(keys) > 0 && cache != nil {
		cache.Invalidate(ctx, keys)
		if left := cache.Purge(ctx); left > 0 {
			fmt.Fprintf(stderr, "warning: %d cache tombstones could not be written; those sessions may still be served from the cache for up to %v\n", left, *ttl)
		}
	}
	fmt.Fprintf(stdout, "revoked %d session%s\n", n, pluralS(n))
	if err != nil {
		return err
	}
	if len(want) > 0 {
		var missing []string
		for _, id := range ids {
			if id = strings.ToLower(strings.TrimSpace(id)); want[id] {
				missing = append(missing, id)
				delete(want, id)
			}
		}
		scope := "live session"
		if *userID != "" {
			scope = "live session of user " + *userID
		}
		return fmt.Errorf("no %s has the id %s", scope, strings.Join(missing, ", "))
	}
	return nil
}

func pluralS(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// revokeUser deletes every session of userID, live or expired. It
// returns the keys it deleted and how many rows went. It repeats while rows
// remain (at most 10 times), so a login racing it is revoked too. Cost: one
// indexed SELECT of keys and one DELETE per 500 keys, per pass.
func (t *sqlTable) revokeUser(ctx context.Context, userID string) ([]string, int, error) {
	sel := "SELECT " + entschema.ColumnKey + " FROM " + entschema.Table + " WHERE " + entschema.ColumnUserID + " = " + t.userIDParam(1)
	var deleted []string
	total := 0
	for range 10 {
		keys, err := t.keys(ctx, sel, userID)
		if err != nil {
			return deleted, total, err
		}
		if len(keys) == 0 {
			break
		}
		n, err := t.deleteKeys(ctx, keys)
		deleted, total = append(deleted, keys...), total+n
		if err != nil {
			return deleted, total, err
		}
	}
	return deleted, total, nil
}

// revokeIDs deletes the live sessions whose public ids are in want (among
// userID's when it is set, else among all) and removes the ids it found
// from want. It returns the keys it deleted and how many rows went. Cost:
// reading every candidate key and one SHA-256 per key (without userID a
// scan of all live sessions, about a second per million), then one DELETE.
func (t *sqlTable) revokeIDs(ctx context.Context, userID string, want map[string]bool) ([]string, int, error) {
	sel := "SELECT " + entschema.ColumnKey + " FROM " + entschema.Table + " WHERE " + entschema.ColumnExpireDate + " > " + t.ph(1)
	params := []any{dbNow()}
	if userID != "" {
		sel += " AND " + entschema.ColumnUserID + " = " + t.userIDParam(2)
		params = append(params, userID)
	}
	rows, err := t.db.SQL.QueryContext(ctx, sel, params...)
	if err != nil {
		return nil, 0, fmt.Errorf("reading session keys: %w", err)
	}
	var found []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("reading session keys: %w", err)
		}
		if id := backend.PublicID(k); want[id] {
			found = append(found, k)
			delete(want, id)
			if len(want) == 0 {
				break
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("reading session keys: %w", err)
	}
	if len(found) == 0 {
		return nil, 0, nil
	}
	n, err := t.deleteKeys(ctx, found)
	return found, n, err
}

// keys runs a query that selects session keys.
func (t *sqlTable) keys(ctx context.Context, q string, params ...any) ([]string, error) {
	rows, err := t.db.SQL.QueryContext(ctx, q, params...)
	if err != nil {
		return nil, fmt.Errorf("reading session keys: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("reading session keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading session keys: %w", err)
	}
	return keys, nil
}

// deleteKeys deletes the rows with these keys, revokeBatch per statement,
// and returns how many went.
func (t *sqlTable) deleteKeys(ctx context.Context, keys []string) (int, error) {
	total := 0
	for start := 0; start < len(keys); start += revokeBatch {
		batch := keys[start:min(start+revokeBatch, len(keys))]
		params := make([]any, len(batch))
		for i, k := range batch {
			params[i] = k
		}
		res, err := t.db.SQL.ExecContext(ctx, "DELETE FROM "+entschema.Table+" WHERE "+entschema.ColumnKey+" IN ("+t.phs(1, len(batch))+")", params...)
		if err != nil {
			return total, fmt.Errorf("deleting sessions: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil {
			total += int(n)
		}
	}
	return total, nil
}

// publicIDShape reports whether s has the shape of qsessions.PublicID: 16
// lowercase hex digits.
func validPublicID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
