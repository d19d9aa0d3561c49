// Package schema is the app's ent schema: its own User, plus the Session
// stub that gives it qsessions' table.
package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"

	"github.com/qsessions/qsessions/entschema"
)

// User is the app's user, with ent's default int ID.
type User struct {
	ent.Schema
}

// Fields of User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("username").NotEmpty().MaxLen(150).Unique(),
		field.Bytes("password_hash").Sensitive(),
		field.Bool("is_admin").Default(false),
	}
}

// Mixin adds the edge to the user's sessions (user.QuerySessions()).
func (User) Mixin() []ent.Mixin {
	return []ent.Mixin{entschema.UserMixin{}}
}
