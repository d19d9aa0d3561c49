package schema

import (
	"entgo.io/ent"

	"github.com/qsessions/qsessions/entschema"
)

// SessionEvent is the qsessions_event table: the security log of sign-ins,
// sign-outs, revokes and changes of place (package alerts).
type SessionEvent struct {
	ent.Schema
}

// Mixin declares the whole table.
func (SessionEvent) Mixin() []ent.Mixin {
	return []ent.Mixin{entschema.EventMixin{}}
}
