//go:build ignore

package main

import (
	"log"

	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"

	"github.com/qsessions/qsessions/entschema/entcext"
)

func main() {
	ext := entcext.New(entcext.UserNameField("username")) // the admin pages show and search it
	if err := entc.Generate("./schema", &gen.Config{}, entc.Extensions(ext)); err != nil {
		log.Fatalf("running ent codegen: %v", err)
	}
}
