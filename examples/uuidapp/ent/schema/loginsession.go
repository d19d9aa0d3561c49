package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"github.com/google/uuid"

	"github.com/qsessions/qsessions/entschema"
)

// LoginSession is qsessions' session table. The app already had a type
// called Session, so it names its own.
type LoginSession struct {
	ent.Schema
}

// Mixin declares the table with UUID user IDs pointing at Account.
func (LoginSession) Mixin() []ent.Mixin {
	return []ent.Mixin{entschema.SessionMixin{
		UserID:   field.UUID("user_id", uuid.UUID{}),
		UserType: "Account",
	}}
}
