//go:build ignore

// gen.go regenerates the reference migration directories (postgres/,
// mysql/, sqlite/) from ent/schema's generated tables. Run it with
// `go generate ./migrations`; it needs the local Postgres and MariaDB
// servers (QSESSIONS_TEST_POSTGRES, QSESSIONS_TEST_MYSQL).
package main

import (
	"github.com/qsessions/qsessions/ent/migrate"
	"github.com/qsessions/qsessions/migrations/gen"
)

func main() { gen.Main("migrations", migrate.Tables) }
