// Package entschema holds what an app's ent/schema package imports to get
// qsessions sessions: SessionMixin for the app's session type and UserMixin
// for its user type. It is imported by every app binary, so it holds the
// schema declarations and nothing else.
//
// An app adds two stubs to its schema package:
//
//	// ent/schema/session.go
//	type Session struct{ ent.Schema }
//
//	func (Session) Mixin() []ent.Mixin {
//		return []ent.Mixin{entschema.SessionMixin{UserID: field.UUID("user_id", uuid.UUID{})}}
//	}
//
//	// ent/schema/user.go, beside the user's own fields:
//	func (User) Mixin() []ent.Mixin { return []ent.Mixin{entschema.UserMixin{}} }
//
// Everything that shapes the table lives in these mixins, so ent's migration
// diff and `atlas migrate diff` see the same table.
package entschema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"entgo.io/ent/schema/mixin"
)

// Names of the table, its columns and its indexes. They are the ones
// django-qsessions uses where it has one.
const (
	Table              = "qsessions_session"
	ColumnKey          = "session_key"
	ColumnData         = "session_data"
	ColumnExpireDate   = "expire_date"
	ColumnUserID       = "user_id"
	ColumnUserAgent    = "user_agent"
	ColumnIP           = "ip"
	ColumnCreatedAt    = "created_at"
	ColumnUpdatedAt    = "updated_at"
	ColumnLastActivity = "last_activity"

	// IndexUserExpire serves "this user's live sessions" and the cascade delete.
	IndexUserExpire = "qsessions_session_user_id_expire_date"
	// IndexExpire serves the cleanup of expired sessions.
	IndexExpire = "qsessions_session_expire_date"

	// KeyLen is the length of a stored key: lowercase hex SHA-256.
	KeyLen = 64
	// UserAgentLen is the most characters of a user agent that are stored.
	UserAgentLen = 300
	// IPLen fits any textual IPv6 address without a zone.
	IPLen = 45
)

// Default type and edge names; SessionMixin and UserMixin take others.
const (
	DefaultUserType    = "User"
	DefaultSessionType = "Session"
	// EdgeUser is the session's edge to its user; EdgeSessions the inverse.
	EdgeUser     = "user"
	EdgeSessions = "sessions"
)

// Annotation marks the session and user types for the entc extension
// (entschema/entcext), which finds them in the graph by it.
type Annotation struct {
	// Role is "session" or "user".
	Role string `json:"role"`
	// Peer is the type name at the other end of the edge.
	Peer string `json:"peer"`
}

// AnnotationName is the key of Annotation in ent's generated graph.
const AnnotationName = "QSessions"

// Name implements schema.Annotation.
func (Annotation) Name() string { return AnnotationName }

// mysqlTime is the column type of every time column on MySQL and MariaDB:
// microsecond precision, no 2038 limit, and no session time zone conversion.
var mysqlTime = map[string]string{dialect.MySQL: "datetime(6)"}

// SessionMixin declares the qsessions_session table on the app's session
// type. The zero value gives an int user ID and a user type named "User".
type SessionMixin struct {
	mixin.Schema

	// UserID is the user_id field, of the same type as the app's User ID:
	// field.Int("user_id") (the default), field.Int64, field.String or
	// field.UUID("user_id", uuid.UUID{}). It is made optional and nillable
	// (anonymous sessions have no user); its name must be "user_id".
	UserID ent.Field
	// UserType is the name of the app's user schema type; default "User".
	UserType string
}

func (m SessionMixin) userType() string {
	if m.UserType != "" {
		return m.UserType
	}
	return DefaultUserType
}

// Fields returns the session columns. The ID is the session key: the hex
// SHA-256 of the cookie token, never the token itself.
func (m SessionMixin) Fields() []ent.Field {
	uid := m.UserID
	if uid == nil {
		uid = field.Int(ColumnUserID)
	}
	d := uid.Descriptor()
	d.Optional = true
	d.Nillable = true
	return []ent.Field{
		field.String("id").
			StorageKey(ColumnKey).
			MaxLen(KeyLen).
			// ent gives Postgres an unbounded varchar whatever MaxLen says.
			SchemaType(map[string]string{dialect.Postgres: "varchar(64)"}).
			NotEmpty().
			Immutable().
			Comment("lowercase hex SHA-256 of the cookie token"),
		field.Bytes(ColumnData).
			SchemaType(map[string]string{dialect.MySQL: "mediumblob"}).
			Comment("encoded session values"),
		field.Time(ColumnExpireDate).
			SchemaType(mysqlTime).
			Comment("absolute or idle expiry, whichever comes first"),
		uid,
		field.String(ColumnUserAgent).
			Optional().
			Nillable().
			SchemaType(map[string]string{dialect.MySQL: "varchar(300)", dialect.Postgres: "varchar(300)"}).
			Comment("valid UTF-8, at most 300 characters"),
		field.String(ColumnIP).
			Optional().
			Nillable().
			MaxLen(IPLen).
			SchemaType(map[string]string{dialect.Postgres: "varchar(45)"}).
			Comment("client IP, normalised by net/netip"),
		field.Time(ColumnCreatedAt).
			Immutable().
			SchemaType(mysqlTime),
		field.Time(ColumnUpdatedAt).
			SchemaType(mysqlTime),
		field.Time(ColumnLastActivity).
			SchemaType(mysqlTime),
	}
}

// Edges returns the edge to the user, bound to UserType by name.
func (m SessionMixin) Edges() []ent.Edge {
	e := edge.From(EdgeUser, placeholder.Type).
		Ref(EdgeSessions).
		Field(ColumnUserID).
		Unique()
	e.Descriptor().Type = m.userType()
	return []ent.Edge{e}
}

// Indexes returns the two named indexes: (user_id, expire_date) and
// (expire_date).
func (SessionMixin) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields(ColumnUserID, ColumnExpireDate).StorageKey(IndexUserExpire),
		index.Fields(ColumnExpireDate).StorageKey(IndexExpire),
	}
}

// Annotations names the table and marks the type for the extension.
func (m SessionMixin) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entsql.Annotation{Table: Table},
		Annotation{Role: "session", Peer: m.userType()},
	}
}

// UserMixin adds the sessions edge to the app's user type. Deleting a user
// deletes its sessions (ON DELETE CASCADE).
type UserMixin struct {
	mixin.Schema

	// SessionType is the name of the app's session schema type; default
	// "Session".
	SessionType string
}

func (m UserMixin) sessionType() string {
	if m.SessionType != "" {
		return m.SessionType
	}
	return DefaultSessionType
}

// Edges returns the sessions edge, bound to SessionType by name.
func (m UserMixin) Edges() []ent.Edge {
	e := edge.To(EdgeSessions, placeholder.Type).
		Annotations(entsql.OnDelete(entsql.Cascade))
	e.Descriptor().Type = m.sessionType()
	return []ent.Edge{e}
}

// Annotations marks the type for the extension.
func (m UserMixin) Annotations() []schema.Annotation {
	return []schema.Annotation{Annotation{Role: "user", Peer: m.sessionType()}}
}

// placeholder gives the edge builders a type; the mixins overwrite its name.
type placeholder struct{ ent.Schema }
