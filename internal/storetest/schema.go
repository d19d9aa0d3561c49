package storetest

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/qsessions/qsessions/internal/testutil"
)

// RunSchema checks, on each dialect, the table that create (the schema's
// client.Schema.Create over drv) makes on a real server: its column types
// are the ones the mixins declare, and a second create finds nothing to
// change, so ent's diff (and Atlas') sees the table the mixins describe.
func RunSchema(t *testing.T, create func(ctx context.Context, drv dialect.Driver) error) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		drv := testutil.NewCountingDriver(db.Driver())
		if err := create(ctx, drv); err != nil {
			t.Fatalf("creating the schema: %v", err)
		}
		drv.Reset()
		if err := create(ctx, drv); err != nil {
			t.Fatalf("creating the schema again: %v", err)
		}
		for _, q := range drv.Queries() {
			s := strings.ToUpper(strings.TrimSpace(q.SQL))
			for _, verb := range []string{"CREATE", "ALTER", "DROP"} {
				if strings.HasPrefix(s, verb) {
					t.Errorf("a second migration changes the schema: %s", q.SQL)
				}
			}
		}
		if db.Dialect == dialect.SQLite {
			return // SQLite keeps no lengths or precisions
		}
		want := map[string]string{
			"session_key":   "varchar(64)",
			"session_data":  map[string]string{dialect.MySQL: "mediumblob", dialect.Postgres: "bytea"}[db.Dialect],
			"user_agent":    "varchar(300)",
			"ip":            "varchar(45)",
			"expire_date":   map[string]string{dialect.MySQL: "datetime(6)", dialect.Postgres: "timestamptz(6)"}[db.Dialect],
			"created_at":    "",
			"updated_at":    "",
			"last_activity": "",
		}
		for _, c := range []string{"created_at", "updated_at", "last_activity"} {
			want[c] = want["expire_date"]
		}
		// information_schema, as both servers have it.
		query := `SELECT column_name, data_type, character_maximum_length, datetime_precision
FROM information_schema.columns WHERE table_name = ? AND table_schema = ` +
			map[string]string{dialect.MySQL: "DATABASE()", dialect.Postgres: "current_schema()"}[db.Dialect]
		if db.Dialect == dialect.Postgres {
			query = strings.Replace(query, "?", "$1", 1)
		}
		rows, err := db.SQL.QueryContext(ctx, query, Table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]string{}
		for rows.Next() {
			var name, typ string
			var length, prec *int64
			if err := rows.Scan(&name, &typ, &length, &prec); err != nil {
				t.Fatal(err)
			}
			typ = strings.ToLower(typ)
			switch typ {
			case "character varying":
				typ = "varchar"
			case "timestamp with time zone":
				typ = "timestamptz"
			}
			switch {
			case length != nil && (typ == "varchar"):
				typ += "(" + strconv.FormatInt(*length, 10) + ")"
			case prec != nil && (typ == "datetime" || typ == "timestamptz"):
				typ += "(" + strconv.FormatInt(*prec, 10) + ")"
			}
			got[name] = typ
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for col, typ := range want {
			if got[col] != typ {
				t.Errorf("column %s is %q on the server, want %q", col, got[col], typ)
			}
		}
	})
}
