// Package openapi embeds the hand-written OpenAPI 3 document of the REST
// API. A test in package rest checks that the document and the routes the
// server registers list the same operations.
package openapi

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

//go:embed openapi.yaml
var doc []byte

// YAML returns the document as written.
func YAML() []byte { return doc }

var toJSON = sync.OnceValues(func() ([]byte, error) { return yaml.YAMLToJSON(doc) })

// JSON returns the document converted to JSON. It panics if the embedded
// document is not valid YAML, which a test rules out.
func JSON() []byte {
	j, err := toJSON()
	if err != nil {
		panic(fmt.Sprintf("openapi: embedded document: %v", err))
	}
	return j
}

// Operations returns "METHOD /path" for every operation of the document,
// sorted, with path parameters as written ("/consumers/{id}").
func Operations() ([]string, error) {
	var d struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := yaml.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("openapi: parse: %w", err)
	}
	var ops []string
	for path, item := range d.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(ops)
	return ops, nil
}
