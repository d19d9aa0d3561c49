// Package uuidapp is an example app that adds qsessions to its own ent
// schema the way users do: a User with UUID IDs and fields of its own, a
// Session stub with entschema.SessionMixin, and entcext in its entc.go.
// Its generated code is committed, so `go vet ./...` and `go test ./...`
// compile and test it.
package uuidapp
