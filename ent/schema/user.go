// Package schema is the reference schema of qsessions: a minimal User and
// the Session table. The demo, the CLI's default migrations and the tests use
// it; apps write their own schema with entschema's mixins instead.
package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"

	"github.com/qsessions/qsessions/entschema"
)

// User is a minimal user: a unique name, a password hash and an admin flag.
type User struct {
	ent.Schema
}

// Fields of User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("username").NotEmpty().MaxLen(150).Unique(),
		field.Bytes("password_hash").Optional().Sensitive(),
		field.Bool("is_admin").Default(false),
	}
}

// Mixin adds the sessions edge.
func (User) Mixin() []ent.Mixin {
	return []ent.Mixin{entschema.UserMixin{EventType: "SessionEvent"}}
}
