//go:build ignore

// gen.go regenerates uuidapp's migration directories (postgres/, mysql/,
// sqlite/) from its ent schema with qsessions' generator. Run it with
// `go generate ./examples/uuidapp/migrations`; it needs the local Postgres
// and MariaDB servers (QSESSIONS_TEST_POSTGRES, QSESSIONS_TEST_MYSQL).
package main

import (
	"github.com/qsessions/qsessions/examples/uuidapp/ent/migrate"
	"github.com/qsessions/qsessions/migrations/gen"
)

func main() { gen.Main("examples/uuidapp/migrations", migrate.Tables) }
