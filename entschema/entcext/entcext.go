// Package entcext is the entc extension of qsessions. An app's ent/entc.go
// passes it to entc.Generate; it generates ent/qsessions.go into the app's
// ent package:
//
//   - New<Session>Store, the backend.Store over the app's session table,
//     with the hooks that report sessions ended through ent;
//   - New<Session>AdminSource, the qsessions.AdminSource the admin pages
//     list and search sessions with;
//   - (*<Session>).Record and PublicID, for code that shows sessions.
//
// Import it only from entc.go (it pulls in entc and go/packages, which have
// no place in an app binary):
//
//	//go:build ignore
//
//	func main() {
//		ext := entcext.New(entcext.UserNameField("username"))
//		err := entc.Generate("./schema", &gen.Config{}, entc.Extensions(ext))
//		...
//	}
//
// The generated code needs no ent feature flag and links neither the
// device nor the location package: its ent package stays small.
package entcext

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"text/template"

	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"
	"entgo.io/ent/schema/field"

	"github.com/qsessions/qsessions/entschema"
)

//go:embed qsessions.tmpl
var tmpl string

// Extension generates the qsessions glue. Create it with New.
type Extension struct {
	entc.DefaultExtension
	userName string
}

// Option configures the Extension.
type Option func(*Extension)

// UserNameField names the string field of the app's user type that the
// admin pages show as a session's owner and search in ("username",
// "email"). Without it the admin list shows owners by ID (or through
// pages.Config.UserName) and searches IP prefixes only.
func UserNameField(name string) Option {
	return func(e *Extension) { e.userName = name }
}

// New returns the extension.
func New(opts ...Option) *Extension {
	e := &Extension{}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Templates returns the template of ent/qsessions.go.
func (e *Extension) Templates() []*gen.Template {
	return []*gen.Template{
		gen.MustParse(gen.NewTemplate("qsessions").
			Funcs(template.FuncMap{"qsessions": e.find}).
			Parse(tmpl)),
	}
}

// Hooks checks the graph before anything is generated, so a schema that
// lacks a mixin, or names a user field that is not there, fails with a
// message saying which.
func (e *Extension) Hooks() []gen.Hook {
	return []gen.Hook{func(next gen.Generator) gen.Generator {
		return gen.GenerateFunc(func(g *gen.Graph) error {
			if _, err := e.find(g); err != nil {
				return err
			}
			return next.Generate(g)
		})
	}}
}

// Nodes is what the template needs: the session and user types, the
// user_id field, the session's edge to its user and the user's name field
// (nil when not configured).
type Nodes struct {
	Session, User *gen.Type
	// Event is the type with entschema.EventMixin; nil when the app keeps
	// no event log.
	Event         *gen.Type
	UserID        *gen.Field
	UserEdge      string
	UserNameField *gen.Field
}

func role(t *gen.Type) (entschema.Annotation, bool) {
	var a entschema.Annotation
	raw, ok := t.Annotations[entschema.AnnotationName]
	if !ok {
		return a, false
	}
	b, err := json.Marshal(raw)
	if err != nil || json.Unmarshal(b, &a) != nil {
		return a, false
	}
	return a, true
}

// find locates the types carrying SessionMixin and UserMixin.
func (e *Extension) find(g *gen.Graph) (*Nodes, error) {
	n := Nodes{UserEdge: entschema.EdgeUser}
	for _, t := range g.Nodes {
		a, ok := role(t)
		if !ok {
			continue
		}
		switch a.Role {
		case "session":
			if n.Session != nil {
				return nil, fmt.Errorf("qsessions: both %s and %s use entschema.SessionMixin; one type may", n.Session.Name, t.Name)
			}
			n.Session = t
		case "event":
			if n.Event != nil {
				return nil, fmt.Errorf("qsessions: both %s and %s use entschema.EventMixin; one type may", n.Event.Name, t.Name)
			}
			n.Event = t
		case "user":
			if n.User != nil {
				return nil, fmt.Errorf("qsessions: both %s and %s use entschema.UserMixin; one type may", n.User.Name, t.Name)
			}
			n.User = t
		}
	}
	if n.Session == nil {
		return nil, fmt.Errorf("qsessions: no schema type uses entschema.SessionMixin; add the Session stub to the schema package")
	}
	if n.User == nil {
		return nil, fmt.Errorf("qsessions: no schema type uses entschema.UserMixin; add it to the Mixin() of the user type")
	}
	for _, f := range n.Session.Fields {
		if f.Name == entschema.ColumnUserID {
			n.UserID = f
		}
	}
	if n.UserID == nil {
		return nil, fmt.Errorf("qsessions: %s has no user_id field; SessionMixin.UserID must be named user_id", n.Session.Name)
	}
	if n.User.ID == nil || n.User.ID.Type.String() != n.UserID.Type.String() {
		return nil, fmt.Errorf("qsessions: %s.user_id is %s but %s IDs are %s; set SessionMixin.UserID to a field of the ID type",
			n.Session.Name, n.UserID.Type, n.User.Name, n.User.ID.Type)
	}
	if n.Event != nil {
		var uid *gen.Field
		for _, f := range n.Event.Fields {
			if f.Name == entschema.ColumnUserID {
				uid = f
			}
		}
		if uid == nil || uid.Type.String() != n.UserID.Type.String() {
			return nil, fmt.Errorf("qsessions: %s.user_id must be of %s's ID type %s; set EventMixin.UserID as SessionMixin.UserID", n.Event.Name, n.User.Name, n.UserID.Type)
		}
	}
	if e.userName != "" {
		for _, f := range n.User.Fields {
			if f.Name == e.userName {
				n.UserNameField = f
			}
		}
		switch {
		case n.UserNameField == nil:
			return nil, fmt.Errorf("qsessions: entcext.UserNameField(%q): %s has no field %q", e.userName, n.User.Name, e.userName)
		case n.UserNameField.Type.Type != field.TypeString:
			return nil, fmt.Errorf("qsessions: entcext.UserNameField(%q): %s.%s is %s, not a string", e.userName, n.User.Name, e.userName, n.UserNameField.Type)
		case n.UserNameField.Sensitive():
			return nil, fmt.Errorf("qsessions: entcext.UserNameField(%q): %s.%s is Sensitive; name a field that may be shown", e.userName, n.User.Name, e.userName)
		}
	}
	return &n, nil
}
