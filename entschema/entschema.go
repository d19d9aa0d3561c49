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
	"strconv"

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
	// ColumnDeviceKey holds the public key a device-bound session (DBSC)
	// is bound to, as canonical JWK JSON; NULL when not bound.
	ColumnDeviceKey = "dbsc_key"
	// ColumnDeviceSecret holds the bound session's secret, which the short
	// cookie of a bound session is a MAC under; NULL when not bound.
	ColumnDeviceSecret = "dbsc_secret"

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
	// DeviceKeyLen bounds a device key's JWK (an RSA-4096 key is about 714
	// characters).
	DeviceKeyLen = 1024
	// DeviceSecretLen is the length of a bound session's secret.
	DeviceSecretLen = 32
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
		field.String(ColumnDeviceKey).
			Optional().
			Nillable().
			MaxLen(DeviceKeyLen).
			SchemaType(map[string]string{dialect.Postgres: "varchar(1024)"}).
			Comment("device-bound session: the device's public key (JWK); NULL when not bound"),
		field.Bytes(ColumnDeviceSecret).
			Optional().
			Nillable().
			Sensitive().
			MaxLen(DeviceSecretLen).
			SchemaType(map[string]string{dialect.MySQL: "varbinary(32)"}).
			Comment("device-bound session: the secret its short cookie is a MAC under"),
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
// deletes its sessions (ON DELETE CASCADE), and its security events when
// the app has an event type.
type UserMixin struct {
	mixin.Schema

	// SessionType is the name of the app's session schema type; default
	// "Session".
	SessionType string
	// EventType is the name of the app's security-event type (the one
	// with EventMixin); "" (the default) when the app keeps no event log.
	EventType string
}

func (m UserMixin) sessionType() string {
	if m.SessionType != "" {
		return m.SessionType
	}
	return DefaultSessionType
}

// Edges returns the sessions edge, bound to SessionType by name, and the
// events edge when EventType is set.
func (m UserMixin) Edges() []ent.Edge {
	e := edge.To(EdgeSessions, placeholder.Type).
		Annotations(entsql.OnDelete(entsql.Cascade))
	e.Descriptor().Type = m.sessionType()
	edges := []ent.Edge{e}
	if m.EventType != "" {
		ev := edge.To(EdgeEvents, placeholder.Type).
			Annotations(entsql.OnDelete(entsql.Cascade))
		ev.Descriptor().Type = m.EventType
		edges = append(edges, ev)
	}
	return edges
}

// Annotations marks the type for the extension.
func (m UserMixin) Annotations() []schema.Annotation {
	return []schema.Annotation{Annotation{Role: "user", Peer: m.sessionType()}}
}

// Names of the security-event table, its columns and indexes.
const (
	EventTable          = "qsessions_event"
	EventColumnKind     = "kind"
	EventColumnCause    = "cause"
	EventColumnSession  = "session_id"
	EventColumnBy       = "asked_by"
	EventColumnIP       = "ip"
	EventColumnAgent    = "user_agent"
	EventColumnDevice   = "device"
	EventColumnPlace    = "location"
	EventColumnCountry  = "country"
	EventColumnNewDev   = "new_device"
	EventColumnNewPlace = "new_location"
	EventColumnCreated  = "created_at"

	// IndexEventUserCreated serves "this user's recent events".
	IndexEventUserCreated = "qsessions_event_user_id_created_at"
	// IndexEventCreated serves the cleanup of old events.
	IndexEventCreated = "qsessions_event_created_at"

	// EdgeEvents is the user's edge to its events.
	EdgeEvents = "session_events"
)

// EventMixin declares the qsessions_event table, the security log package
// alerts keeps (sign-ins with their device and place, sign-outs, revokes,
// changes of place), on an app type of its own:
//
//	// ent/schema/sessionevent.go
//	type SessionEvent struct{ ent.Schema }
//
//	func (SessionEvent) Mixin() []ent.Mixin { return []ent.Mixin{entschema.EventMixin{}} }
//
// and EventType: "SessionEvent" in the user type's UserMixin. Rows are
// small (about 300 bytes) and bounded: alerts deletes those past its
// retention (180 days by default). The zero value gives an int user ID and a
// user type named "User".
type EventMixin struct {
	mixin.Schema

	// UserID is the user_id field, of the app's User ID type, as in
	// SessionMixin; default field.Int("user_id").
	UserID ent.Field
	// UserType is the name of the app's user schema type; default "User".
	UserType string
}

func (m EventMixin) userType() string {
	if m.UserType != "" {
		return m.UserType
	}
	return DefaultUserType
}

// Fields returns the event columns.
func (m EventMixin) Fields() []ent.Field {
	uid := m.UserID
	if uid == nil {
		uid = field.Int(ColumnUserID)
	}
	uid.Descriptor().Immutable = true
	// Text columns are bounded in characters (varchar(n)), as user_agent
	// of the session table: the log cuts values on a character boundary.
	short := func(name string, n int) ent.Field {
		vc := "varchar(" + strconv.Itoa(n) + ")"
		return field.String(name).Optional().Nillable().
			SchemaType(map[string]string{dialect.Postgres: vc, dialect.MySQL: vc})
	}
	return []ent.Field{
		uid,
		field.String(EventColumnKind).MaxLen(16).
			SchemaType(map[string]string{dialect.Postgres: "varchar(16)"}).
			Comment("sign-in, sign-out, revoke, ip-change"),
		short(EventColumnCause, 16),
		field.String(EventColumnSession).MaxLen(16).
			SchemaType(map[string]string{dialect.Postgres: "varchar(16)"}).
			Comment("public id of the session"),
		short(EventColumnBy, 16),
		short(EventColumnIP, IPLen),
		short(EventColumnAgent, UserAgentLen),
		short(EventColumnDevice, 100),
		short(EventColumnPlace, 200),
		short(EventColumnCountry, 2),
		field.Bool(EventColumnNewDev).Default(false),
		field.Bool(EventColumnNewPlace).Default(false),
		field.Time(EventColumnCreated).Immutable().SchemaType(mysqlTime),
	}
}

// Edges returns the edge to the user, bound to UserType by name.
func (m EventMixin) Edges() []ent.Edge {
	e := edge.From(EdgeUser, placeholder.Type).
		Ref(EdgeEvents).
		Field(ColumnUserID).
		Unique().
		Required().
		Immutable()
	e.Descriptor().Type = m.userType()
	return []ent.Edge{e}
}

// Indexes returns (user_id, created_at) and (created_at).
func (EventMixin) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields(ColumnUserID, EventColumnCreated).StorageKey(IndexEventUserCreated),
		index.Fields(EventColumnCreated).StorageKey(IndexEventCreated),
	}
}

// Annotations names the table and marks the type for the extension.
func (m EventMixin) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entsql.Annotation{Table: EventTable},
		Annotation{Role: "event", Peer: m.userType()},
	}
}

// placeholder gives the edge builders a type; the mixins overwrite its name.
type placeholder struct{ ent.Schema }
