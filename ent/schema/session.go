package schema

import (
	"entgo.io/ent"

	"github.com/qsessions/qsessions/entschema"
)

// Session is the qsessions_session table, with int user IDs.
type Session struct {
	ent.Schema
}

// Mixin declares the whole table.
func (Session) Mixin() []ent.Mixin {
	return []ent.Mixin{entschema.SessionMixin{}}
}
