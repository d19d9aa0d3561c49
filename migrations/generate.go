package migrations

//go:generate go run gen.go
