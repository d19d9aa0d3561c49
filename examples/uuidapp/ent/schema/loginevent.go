package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"github.com/google/uuid"

	"github.com/qsessions/qsessions/entschema"
)

// LoginEvent is qsessions' security log (qsessions_event), with UUID user
// IDs pointing at Account.
type LoginEvent struct {
	ent.Schema
}

// Mixin declares the table.
func (LoginEvent) Mixin() []ent.Mixin {
	return []ent.Mixin{entschema.EventMixin{
		UserID:   field.UUID("user_id", uuid.UUID{}),
		UserType: "Account",
	}}
}
