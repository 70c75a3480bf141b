package rest

import (
	"errors"
	"testing"

	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

// FuzzBundleBody decodes any request body as a bundle create does (strict
// JSON, then defaults and validation) and checks that bad input is a clean
// error, never a panic, and that an accepted bundle has its identity.
func FuzzBundleBody(f *testing.F) {
	for _, s := range []string{
		`{"consumer_name":"mgmt-1","metadata":{"name":"w"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"default"}}]}`,
		`{"consumer_name":"mgmt-1","name":"w","manifests":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"k":"v"}}],` +
			`"manifest_configs":[{"resourceIdentifier":{"group":"","resource":"secrets","name":"s","namespace":"default"},` +
			`"feedbackRules":[{"type":"JSONPaths","jsonPaths":[{"name":"x","path":".data.k"}]}],"updateStrategy":{"type":"ServerSideApply"}}],` +
			`"delete_option":{"propagationPolicy":"Orphan"}}`,
		`{}`, `[]`, `{"manifests":[1]}`, `{"consumer_name":"a","name":"b","manifests":[{"kind":"X"}]}`, `{"a":1}`, `{"version":-1}`, "",
	} {
		f.Add([]byte(s))
	}
	h := New(Options{Source: "fuzz"})
	f.Fuzz(func(t *testing.T, body []byte) {
		var in api.ResourceBundle
		if err := decodeJSON(body, &in); err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("decode error %T (%v) is not an API error", err, err)
			}
			return
		}
		b, err := h.newBundle(&in)
		if err == nil {
			err = h.writer.Check(&b)
		}
		if err != nil {
			var ve validate.Errors
			if !errors.As(err, &ve) || len(ve) == 0 {
				t.Fatalf("validation error %T (%v) names no field", err, err)
			}
			return
		}
		if b.ID == "" || b.Source != in.Source || b.Meta.Name == "" {
			t.Fatalf("accepted bundle without identity: %+v", b)
		}
	})
}
