// Package entcext is the entc extension of qsessions. An app's ent/entc.go
// passes it to entc.Generate; it generates ent/qsessions.go into the app's
// ent package: New<Session>Store, the backend.Store over the app's session
// table, with the invalidation hooks. Import it only from entc.go (it pulls
// in entc and go/packages, which have no place in an app binary).
//
//	//go:build ignore
//
//	func main() {
//		err := entc.Generate("./schema", &gen.Config{}, entc.Extensions(entcext.New()))
//		...
//	}
//
// The generated code needs no ent feature flag.
package entcext

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"text/template"

	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"

	"github.com/qsessions/qsessions/entschema"
)

//go:embed qsessions.tmpl
var tmpl string

// Extension generates the qsessions glue. Create it with New.
type Extension struct {
	entc.DefaultExtension
}

// New returns the extension.
func New() *Extension { return &Extension{} }

// Templates returns the template of ent/qsessions.go.
func (*Extension) Templates() []*gen.Template {
	return []*gen.Template{
		gen.MustParse(gen.NewTemplate("qsessions").
			Funcs(template.FuncMap{"qsessions": find}).
			Parse(tmpl)),
	}
}

// Hooks checks the graph before anything is generated, so a schema that
// lacks a mixin fails with a message saying which.
func (*Extension) Hooks() []gen.Hook {
	return []gen.Hook{func(next gen.Generator) gen.Generator {
		return gen.GenerateFunc(func(g *gen.Graph) error {
			if _, err := find(g); err != nil {
				return err
			}
			return next.Generate(g)
		})
	}}
}

// Nodes is what the template needs: the session and user types and the
// user_id field.
type Nodes struct {
	Session, User *gen.Type
	UserID        *gen.Field
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
func find(g *gen.Graph) (*Nodes, error) {
	var n Nodes
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
	return &n, nil
}
