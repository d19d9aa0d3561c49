// Package migrations holds uuidapp's Atlas migration directories
// (postgres/, mysql/, sqlite/), generated from its ent schema by
// `go generate ./examples/uuidapp/migrations` with qsessions' generator,
// the way an app that adds qsessions generates its own.
//
// The mysql directory is generated against MariaDB, which has a native
// uuid type; for MySQL 8, which does not, an app generates it against a
// MySQL 8 dev database instead (its user IDs become char(36)).
package migrations

import (
	"embed"

	"ariga.io/atlas/sql/migrate"

	"github.com/qsessions/qsessions/migrations"
)

//go:generate go run gen.go

//go:embed postgres mysql sqlite
var embedded embed.FS

// Dir returns uuidapp's embedded directory for a dialect (postgres, mysql
// or sqlite; see migrations.DirName), a fresh in-memory copy per call.
func Dir(dialect string) (migrate.Dir, error) {
	name, err := migrations.DirName(dialect)
	if err != nil {
		return nil, err
	}
	return migrations.DirFS(embedded, name)
}
