// Package maestro holds Go types generated from Maestro's REST schema
// (openapi.yaml): what a Maestro client built from that schema decodes. Tests
// decode baton's answers into them with unknown fields disallowed; nothing
// in the server uses them.
package maestro

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -generate types -package maestro -o types.gen.go openapi.yaml
