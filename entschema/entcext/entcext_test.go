package entcext_test

import (
	"strings"
	"testing"

	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"
	"entgo.io/ent/schema/field"

	"github.com/qsessions/qsessions/entschema"
	"github.com/qsessions/qsessions/entschema/entcext"
)

// check runs the extension's hooks on g, as entc.Generate does before
// generating anything.
func check(g *gen.Graph) error {
	var next gen.Generator = gen.GenerateFunc(func(*gen.Graph) error { return nil })
	for _, h := range entcext.New().Hooks() {
		next = h(next)
	}
	return next.Generate(g)
}

func load(t *testing.T, dir string) *gen.Graph {
	t.Helper()
	g, err := entc.LoadGraph(dir, &gen.Config{})
	if err != nil {
		t.Fatalf("loading %s: %v", dir, err)
	}
	return g
}

func node(t *testing.T, g *gen.Graph, name string) *gen.Type {
	t.Helper()
	for _, n := range g.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no type %s", name)
	return nil
}

// TestHooks checks that the extension accepts both schemas of the module
// and names what is wrong in a schema that lacks a mixin or mixes ID types.
func TestHooks(t *testing.T) {
	if err := check(load(t, "../../ent/schema")); err != nil {
		t.Errorf("reference schema: %v", err)
	}
	g := load(t, "../../examples/uuidapp/ent/schema")
	if err := check(g); err != nil {
		t.Errorf("uuidapp schema: %v", err)
	}

	// Each case breaks g and returns what undoes it.
	for _, c := range []struct {
		name   string
		mutate func(t *testing.T) (undo func())
		want   string
	}{
		{"no UserMixin", func(t *testing.T) func() {
			n := node(t, g, "Account")
			a := n.Annotations[entschema.AnnotationName]
			delete(n.Annotations, entschema.AnnotationName)
			return func() { n.Annotations[entschema.AnnotationName] = a }
		}, "no schema type uses entschema.UserMixin"},
		{"no SessionMixin", func(t *testing.T) func() {
			n := node(t, g, "LoginSession")
			a := n.Annotations[entschema.AnnotationName]
			delete(n.Annotations, entschema.AnnotationName)
			return func() { n.Annotations[entschema.AnnotationName] = a }
		}, "no schema type uses entschema.SessionMixin"},
		{"two SessionMixins", func(t *testing.T) func() {
			other, old := node(t, g, "Session"), node(t, g, "Session").Annotations
			other.Annotations = gen.Annotations{entschema.AnnotationName: node(t, g, "LoginSession").Annotations[entschema.AnnotationName]}
			return func() { other.Annotations = old }
		}, "use entschema.SessionMixin; one type may"},
		{"user_id of another type", func(t *testing.T) func() {
			for _, f := range node(t, g, "LoginSession").Fields {
				if f.Name == entschema.ColumnUserID {
					old := f.Type
					f.Type = &field.TypeInfo{Type: field.TypeInt64}
					return func() { f.Type = old }
				}
			}
			t.Fatal("no user_id field")
			return nil
		}, "LoginSession.user_id is int64 but Account IDs are uuid.UUID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			undo := c.mutate(t)
			defer undo()
			err := check(g)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
		if err := check(g); err != nil {
			t.Fatalf("after undoing %s: %v", c.name, err)
		}
	}
}
