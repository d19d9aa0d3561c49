//go:build ignore

// gen.go regenerates the reference migration directories (postgres/,
// mysql/, sqlite/) from ent/schema's generated tables. Run it with
// `go generate ./migrations`; it needs the local Postgres and MariaDB
// servers (QSESSIONS_TEST_POSTGRES, QSESSIONS_TEST_MYSQL).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"

	"github.com/qsessions/qsessions/ent/migrate"
	"github.com/qsessions/qsessions/migrations/gen"
)

func main() {
	name := flag.String("name", "", "name of a new migration file (default: initial, then changes)")
	version := flag.String("version", "", "version of a new migration file (default: fixed, see package gen)")
	flag.Parse()
	res, err := gen.Generate(context.Background(), gen.Config{
		Root:    ".",
		Tables:  migrate.Tables,
		Name:    *name,
		Version: *version,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res {
		if r.File != "" {
			fmt.Printf("migrations/%s: wrote %s\n", r.Dialect, r.File)
		}
	}
}
