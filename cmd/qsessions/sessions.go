package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/device"
	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/sqlstore"
)

func init() {
	commands["sessions"] = command{
		summary: "list or revoke sessions by public id or user (any app's qsessions_session)",
		run:     group(sessionsUsage, sub{"list", sessionsList}, sub{"revoke", sessionsRevoke}),
	}
}

const sessionsUsage = `usage:
  qsessions sessions list   --db URL (--user ID | --all) [--json] [--geoip-dir DIR] [--limit N]
  qsessions sessions revoke --db URL [--user ID] ID...
  qsessions sessions revoke --db URL --user ID

list prints live sessions, newest activity first, as a table (public id,
user, device, location, IP, times, BOUND: yes for a device-bound session)
or as JSON ({"sessions": [...]}, the shape of the pages' /api/sessions
plus user_id). Control characters in stored text (user agents, user IDs)
are printed escaped (\u202e), never raw.

revoke ends sessions by their public id (the id the pages, the JSON and
this list show; a primary-key range lookup, whatever the table's size),
with --user only among that user's live sessions; or, with --user and no
id, every live session of that user (expired ones stay until
clear-expired).

Both work on the qsessions_session table of any app through the same
engine as the app (sqlstore, the backend and the Manager), with user IDs
taken as the database prints them (42, a UUID, ...), not through generated
ent code.

A revoke here is not seen by a cached_db backend's cache: pass --memcache
with the app's servers and --cache-prefix (and --cache-ttl) to write the
same tombstones the app writes, which keep revoked sessions out of the
cache at once; they are signed with the app's cache keys, read from
QSESSIONS_CACHE_KEYS (comma-separated hex, as the app's
CachedOptions.Keys), or unsigned with --cache-unauthenticated for an app
whose cache runs without keys. Without --memcache they end there within the
app's cache TTL (5 minutes by default); an app with the in-process cache
keeps them until then.
`

// cliTimeout bounds each backend call of the CLI's Manager: longer than a
// request's (the Manager's default), as a person waits at a terminal, and
// Ctrl-C ends it sooner.
const cliTimeout = 30 * time.Second

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

// sessionDB is an open database and the engine's Store over its
// qsessions_session table.
type sessionDB struct {
	db    *dburl.DB
	store *sqlstore.Store
}

// openSessionDB opens --db, checks that it connects, and makes the Store
// (which reads the type of user_id: one catalog query).
func openSessionDB(ctx context.Context, rawURL string) (*sessionDB, error) {
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
	st, err := sqlstore.New(pctx, db.SQL, db.Dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", db.URL, unprefixed(err))
	}
	return &sessionDB{db: db, store: st}, nil
}

func (s *sessionDB) Close() error { return s.db.Close() }

// manager returns a Manager over b with the CLI's timeout.
func manager(b backend.Backend) *qsessions.Manager {
	m := qsessions.New(b)
	m.Timeout = cliTimeout
	return m
}

// userID returns --user as the text the table gives back for it, or an
// error naming the flag when it cannot be a user_id of this table.
func (s *sessionDB) userID(flagValue string) (string, error) {
	id, err := s.store.ParseUserID(flagValue)
	if err != nil {
		return "", fmt.Errorf("--user: %w", err)
	}
	return id, nil
}

// prefixedError drops the "qsessions: " that starts an error's message:
// main already names the command ("qsessions sessions: ..."). errors.Is
// and errors.As see through it.
type prefixedError struct{ err error }

func (e prefixedError) Error() string { return strings.TrimPrefix(e.err.Error(), "qsessions: ") }
func (e prefixedError) Unwrap() error { return e.err }

// unprefixed returns err without its leading "qsessions: ", nil for nil.
func unprefixed(err error) error {
	if err == nil || !strings.HasPrefix(err.Error(), "qsessions: ") {
		return err
	}
	return prefixedError{err}
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
	// DeviceBound marks a device-bound session (DBSC: dbsc_key is set).
	DeviceBound bool `json:"device_bound"`
}

func sessionsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions sessions list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sessionsUsage); fs.PrintDefaults() }
	dbURL := fs.String("db", "", "database URL: postgres://, mysql://, maria:// or sqlite:// (required)")
	userFlag := fs.String("user", "", "list this user's live sessions (the user_id as the database prints it)")
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
	case (*userFlag == "") == !*all:
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
	sdb, err := openSessionDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer sdb.Close()
	var list []qsessions.Info
	if *userFlag != "" {
		uid, err := sdb.userID(*userFlag)
		if err != nil {
			return err
		}
		if list, err = manager(backend.NewDB(sdb.store)).UserSessions(ctx, uid); err != nil {
			return unprefixed(err)
		}
	} else {
		n := 0
		if *limit > 0 {
			n = *limit + 1 // one more tells whether there are more
		}
		rs, err := sdb.store.Live(ctx, backend.Time(time.Now()), n)
		if err != nil {
			return err
		}
		list = make([]qsessions.Info, len(rs))
		for i, r := range rs {
			list[i] = qsessions.InfoOf(r)
		}
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
		p := ""
		if a, err := netip.ParseAddr(ip); err == nil {
			p = location.Describe(geo, a)
		}
		places[ip] = p
		return p
	}
	if *asJSON {
		err = writeListJSON(stdout, list, place)
	} else {
		err = writeListTable(stdout, list, place)
	}
	if err != nil {
		return err
	}
	switch {
	case more:
		fmt.Fprintf(stderr, "(the first %d live sessions; --limit 0 lists all)\n", *limit)
	case len(list) == 0 && !*asJSON:
		fmt.Fprintln(stderr, "no live sessions")
	}
	return nil
}

// userText is an Info's owner as sqlstore gives it (text), nil for an
// anonymous session.
func userText(i qsessions.Info) *string {
	if i.UserID == nil {
		return nil
	}
	s := fmt.Sprint(i.UserID)
	return &s
}

// writeListJSON writes {"sessions": [...]} with every control character
// escaped (see escapeJSONControls).
func writeListJSON(w io.Writer, list []qsessions.Info, place func(ip string) string) error {
	out := struct {
		Sessions []listJSON `json:"sessions"`
	}{Sessions: make([]listJSON, len(list))}
	for i, s := range list {
		d := device.Parse(s.UserAgent)
		out.Sessions[i] = listJSON{
			ID: s.ID, UserID: userText(s), Device: d.Label(), DeviceInfo: d,
			Location: place(s.IP), IP: s.IP, UserAgent: s.UserAgent,
			CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, LastActivity: s.LastActivity, ExpireDate: s.ExpireDate,
			DeviceBound: s.DeviceBound,
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(escapeJSONControls(b), '\n'))
	return err
}

// writeListTable writes the sessions as an aligned table, every cell
// through termCell.
func writeListTable(w io.Writer, list []qsessions.Info, place func(ip string) string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tDEVICE\tLOCATION\tIP\tCREATED\tLAST ACTIVITY\tEXPIRES\tBOUND")
	const layout = "2006-01-02 15:04"
	for _, s := range list {
		uid := ""
		if u := userText(s); u != nil {
			uid = *u
		}
		bound := "no"
		if s.DeviceBound {
			bound = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", termCell(s.ID), termCell(uid),
			termCell(device.Parse(s.UserAgent).Label()), termCell(place(s.IP)), termCell(s.IP),
			s.CreatedAt.Format(layout), s.LastActivity.Format(layout), s.ExpireDate.Format(layout), bound)
	}
	return tw.Flush()
}

// unsafeRune reports whether r must not reach a terminal raw: C0 and C1
// control characters and DEL (a C1 CSI, U+009B, starts an escape sequence
// on many terminals, as ESC [ does), the bidirectional controls that
// reorder what follows (U+061C, U+200E, U+200F, U+202A–U+202E,
// U+2066–U+2069: "Trojan Source"), and the line and paragraph separators.
func unsafeRune(r rune) bool {
	switch {
	case unicode.Is(unicode.Cc, r):
		return true
	case r == 0x061C, r == 0x200E, r == 0x200F, 0x202A <= r && r <= 0x202E, 0x2066 <= r && r <= 0x2069:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// termCell makes s safe for one cell of a terminal table: every unsafe
// rune (unsafeRune, tabs and line breaks included) is written as a visible
// \uXXXX escape, a byte that is not UTF-8 as \xNN, and "" as "-". Cost: one
// scan; a copy only when something is escaped.
func termCell(s string) string {
	if s == "" {
		return "-"
	}
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// escapeJSONControls rewrites the unsafe runes (unsafeRune) that
// encoding/json leaves raw in its output, DEL, the C1 controls and the
// bidi controls, as \uXXXX escapes. encoding/json escapes C0 controls in
// strings itself, so the C0 left (newlines, indentation) is whitespace
// and stays. The others can only stand inside JSON strings (the rest of
// JSON is ASCII), where the escape decodes to the same rune, so the
// document means the same. Cost: one scan; a copy only when something is
// escaped.
func escapeJSONControls(b []byte) []byte {
	unsafe := func(r rune) bool { return r >= 0x7f && unsafeRune(r) }
	i := 0
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if unsafe(r) {
			break
		}
		i += size
	}
	if i == len(b) {
		return b
	}
	var out bytes.Buffer
	out.Grow(len(b) + 16)
	out.Write(b[:i])
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if unsafe(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[i : i+size])
		}
		i += size
	}
	return out.Bytes()
}

func sessionsRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions sessions revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sessionsUsage); fs.PrintDefaults() }
	dbURL := fs.String("db", "", "database URL: postgres://, mysql://, maria:// or sqlite:// (required)")
	userFlag := fs.String("user", "", "the user whose sessions to revoke: all of them without IDs, else only among them")
	servers := fs.String("memcache", "", "the app's memcached servers (host:port,...), to write cache tombstones for the revoked sessions")
	prefix := fs.String("cache-prefix", backend.DefaultCachePrefix, "the app's cache key prefix (CachedOptions.Prefix)")
	ttl := fs.Duration("cache-ttl", backend.DefaultCacheTTL, "the app's cache TTL (CachedOptions.TTL); tombstones live this long")
	unauthenticated := fs.Bool("cache-unauthenticated", false, "the app's cache runs without keys (CachedOptions.UnauthenticatedCache): write unsigned tombstones")
	ids, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ids) == 0 && *userFlag == "" {
		return errors.New("give the public ids of the sessions to revoke, or --user ID to revoke all of a user's sessions")
	}
	var want, bad []string
	for _, raw := range ids {
		id, ok := backend.ParsePublicID(strings.TrimSpace(raw))
		switch {
		case !ok:
			bad = append(bad, termCell(raw))
		case !slices.Contains(want, id):
			want = append(want, id)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not public session ids (16 hex digits, as `sessions list` shows): %s", strings.Join(bad, ", "))
	}
	sdb, err := openSessionDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer sdb.Close()
	uid := ""
	if *userFlag != "" {
		if uid, err = sdb.userID(*userFlag); err != nil {
			return err
		}
	}
	var b backend.Backend = backend.NewDB(sdb.store)
	var cached *backend.CachedDB
	if *servers != "" {
		mc, err := backend.NewMemcache(strings.Split(*servers, ","), backend.MemcacheOptions{})
		if err != nil {
			return fmt.Errorf("--memcache: %w", unprefixed(err))
		}
		defer mc.Close()
		// The tombstones are signed with the app's cache keys (never a
		// flag: a command line is visible to every user of the machine),
		// so the app verifies them as its own.
		keys, err := backend.ParseCacheKeys(os.Getenv(backend.CacheKeysEnv))
		if err != nil {
			return fmt.Errorf("%s: %w", backend.CacheKeysEnv, unprefixed(err))
		}
		if len(keys) == 0 && !*unauthenticated {
			return fmt.Errorf("--memcache needs the app's cache keys in %s (comma-separated hex, the app's CachedOptions.Keys), "+
				"or --cache-unauthenticated for an app that runs its cache without keys", backend.CacheKeysEnv)
		}
		opts := backend.CachedOptions{Prefix: *prefix, TTL: *ttl, Keys: keys, UnauthenticatedCache: len(keys) == 0}
		if cached, err = backend.NewCachedDB(sdb.store, mc, opts); err != nil {
			return fmt.Errorf("--cache-prefix/--cache-ttl: %w", unprefixed(err))
		}
		defer cached.Close()
		b = cached
	}
	m := manager(b)
	n, missing, err := revoke(ctx, m, uid, want)
	if cached != nil {
		if left := cached.Purge(ctx); left > 0 {
			fmt.Fprintf(stderr, "warning: %d cache tombstones could not be written; those sessions may still be served from the cache for up to %v\n", left, *ttl)
		}
	}
	noun := "sessions"
	if n == 1 {
		noun = "session"
	}
	fmt.Fprintf(stdout, "revoked %d %s\n", n, noun)
	if err != nil {
		return unprefixed(err)
	}
	if len(missing) > 0 {
		scope := "session"
		if uid != "" {
			scope = "live session of user " + termCell(uid)
		}
		return fmt.Errorf("no %s has the id %s", scope, strings.Join(missing, ", "))
	}
	return nil
}

// revoke ends sessions through m, the path every revoke of the app takes:
// every live session of userID when ids is empty (Manager.RevokeUser),
// else each id among userID's live sessions (Manager.Revoke) or, without
// a user, whoever owns it (Manager.AdminRevoke: a primary-key range
// lookup and a DELETE per id). It returns how many sessions ended and the
// ids no session had, and stops at the first failure other than "not
// found".
func revoke(ctx context.Context, m *qsessions.Manager, userID string, ids []string) (int, []string, error) {
	if len(ids) == 0 {
		n, err := m.RevokeUser(ctx, userID)
		return n, nil, err
	}
	n := 0
	var missing []string
	for _, id := range ids {
		var err error
		if userID != "" {
			err = m.Revoke(ctx, userID, id)
		} else {
			err = m.AdminRevoke(ctx, id)
		}
		switch {
		case errors.Is(err, backend.ErrNotFound):
			missing = append(missing, id)
		case err != nil:
			return n, missing, err
		default:
			n++
		}
	}
	return n, missing, nil
}
