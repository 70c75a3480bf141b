package cli

import (
	"errors"
	"strings"

	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

// fieldNames spell the bundle fields as one file shape does, by the REST
// field name internal/validate uses.
type fieldNames map[string]string

var (
	restFields = fieldNames{}
	workFields = fieldNames{
		"name":             "metadata.name",
		"consumer_name":    "metadata.namespace",
		"manifests":        "spec.workload.manifests",
		"manifest_configs": "spec.manifestConfigs",
		"delete_option":    "spec.deleteOption",
	}
)

// spell turns a REST field path into the file's spelling.
func (f fieldNames) spell(path string) string {
	head, rest := path, ""
	if i := strings.IndexAny(path, ".["); i >= 0 {
		head, rest = path[:i], path[i:]
	}
	if s, ok := f[head]; ok {
		return s + rest
	}
	return path
}

// fieldErrors are all problems of one document.
type fieldErrors []*fieldError

func (es fieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// validateBundle checks what the server would refuse (internal/validate),
// so that a bad file fails before anything is applied, with fields named
// as the file spells them.
func validateBundle(b *api.ResourceBundle, f fieldNames) error {
	if b.ConsumerName == "" {
		return &fieldError{f.spell("consumer_name"), "required (or pass --consumer)"}
	}
	err := validate.Bundle(b, "") // the server checks what its transport carries
	var ves validate.Errors
	if err == nil || !errors.As(err, &ves) {
		return err
	}
	out := make(fieldErrors, len(ves))
	for i, e := range ves {
		out[i] = &fieldError{f.spell(e.Field), e.Msg}
	}
	return out
}
