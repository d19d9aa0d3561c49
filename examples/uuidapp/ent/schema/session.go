package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// Session is the app's own, unrelated type of the same name (a workout
// session), which is why qsessions' table is LoginSession here.
type Session struct {
	ent.Schema
}

// Fields of Session.
func (Session) Fields() []ent.Field {
	return []ent.Field{
		field.String("title"),
		field.Int("minutes").NonNegative(),
	}
}
