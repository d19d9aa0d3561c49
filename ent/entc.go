//go:build ignore

package main

import (
	"log"

	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"

	"github.com/qsessions/qsessions/entschema/entcext"
)

func main() {
	err := entc.Generate("./schema", &gen.Config{}, entc.Extensions(entcext.New(entcext.UserNameField("username"))))
	if err != nil {
		log.Fatalf("running ent codegen: %v", err)
	}
}
