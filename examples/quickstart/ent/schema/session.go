package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"

	"github.com/qsessions/qsessions/entschema"
)

// Session is qsessions' table, qsessions_session; the mixin declares all of it.
type Session struct {
	ent.Schema
}

// Mixin declares the table; user_id has the type of User's ID (ent's default: int).
func (Session) Mixin() []ent.Mixin {
	return []ent.Mixin{entschema.SessionMixin{UserID: field.Int("user_id")}}
}
