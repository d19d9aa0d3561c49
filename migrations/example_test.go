package migrations_test

import (
	"context"
	"database/sql"
	"log"

	"ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"

	"github.com/qsessions/qsessions/migrations"
)

// An app applies its own directory at start-up with the pool it already
// has (here a Postgres one; the app imports and registers its driver).
// Schema is what the app's atlas URL names (search_path=public), so the
// atlas CLI and Apply share one revision table. After the files, Apply
// checks that qsessions_session and its columns exist.
func ExampleApply() {
	ctx := context.Background()
	db, err := sql.Open("pgx", "postgres://app@localhost:5432/app?search_path=public")
	if err != nil {
		log.Fatal(err)
	}
	dir, err := migrate.NewLocalDir("migrations/postgres")
	if err != nil {
		log.Fatal(err)
	}
	res, err := migrations.Apply(ctx, db, dialect.Postgres, dir, migrations.Options{Schema: "public"})
	if err != nil {
		log.Fatal(err) // names the file, the statement, or what is missing
	}
	log.Printf("migrated from %q to %q: %v", res.From, res.To, res.Applied)
}

// ReadStatus reports what `qsessions migrate status` prints, the session
// table's state included.
func ExampleReadStatus() {
	ctx := context.Background()
	db, err := sql.Open("pgx", "postgres://app@localhost:5432/app?search_path=public")
	if err != nil {
		log.Fatal(err)
	}
	dir, err := migrations.Dir(dialect.Postgres) // qsessions' reference directory
	if err != nil {
		log.Fatal(err)
	}
	st, err := migrations.ReadStatus(ctx, db, dialect.Postgres, dir, migrations.Options{Schema: "public"})
	if err != nil {
		log.Fatal(err)
	}
	if st.SessionTable == migrations.SessionMissing {
		log.Fatal(st.SessionErr) // what is missing, why, and the fix
	}
}
