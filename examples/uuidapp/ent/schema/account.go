// Package schema is uuidapp's ent schema.
package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"github.com/google/uuid"

	"github.com/qsessions/qsessions/entschema"
)

// Account is the app's user type: UUID IDs and fields of its own. Its name
// is not "User", so the Session stub names it.
type Account struct {
	ent.Schema
}

// Fields of Account.
func (Account) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("id", uuid.UUID{}).Default(uuid.New),
		field.String("email").Unique(),
		field.String("display_name").Optional(),
		field.Time("joined_at").Default(time.Now).Immutable(),
	}
}

// Mixin adds qsessions' sessions edge.
func (Account) Mixin() []ent.Mixin {
	return []ent.Mixin{entschema.UserMixin{SessionType: "LoginSession", EventType: "LoginEvent"}}
}
