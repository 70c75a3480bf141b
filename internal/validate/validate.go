// Package validate checks consumers and resource bundles submitted over the
// API before anything is stored. Every function is pure: it returns the
// problems found, each naming the offending field with its JSON path
// ("manifests[2].metadata.name"), and changes nothing.
package validate

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
)

// Limits on what the API accepts (sizes: internal/limits).
const (
	// MaxManifests bounds the number of manifests of one bundle.
	MaxManifests = 1000
	// MaxLabels bounds the labels of a consumer or of bundle metadata.
	MaxLabels = 64
)

// FieldError is one problem with one field.
type FieldError struct {
	Field string // JSON path of the field, e.g. "manifests[0].metadata.name"
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Errors is the list of problems of one object, in field order.
type Errors []*FieldError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Err returns es as an error, or nil when it is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

func (es *Errors) add(field, format string, args ...any) {
	*es = append(*es, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// name checks a DNS-1123 subdomain (lowercase alphanumerics, '-' and '.',
// at most 253 bytes, starting and ending alphanumeric).
func (es *Errors) name(field, v string, required bool) {
	if v == "" {
		if required {
			es.add(field, "is required")
		}
		return
	}
	if msgs := content.IsDNS1123Subdomain(v); len(msgs) > 0 {
		es.add(field, "%q is not a valid name: %s", v, strings.Join(msgs, "; "))
	}
}

// ConsumerName checks a consumer name (a DNS-1123 subdomain).
func ConsumerName(field, name string) error {
	var es Errors
	es.name(field, name, true)
	return es.Err()
}

// Labels checks Kubernetes label keys and values.
func Labels(field string, labels map[string]string) error {
	var es Errors
	es.labels(field, labels)
	return es.Err()
}

func (es *Errors) labels(field string, labels map[string]string) {
	if len(labels) > MaxLabels {
		es.add(field, "has %d labels; at most %d are allowed", len(labels), MaxLabels)
		return
	}
	for _, k := range sortedKeys(labels) {
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			es.add(field, "key %q: %s", k, strings.Join(msgs, "; "))
		}
		if msgs := content.IsLabelValue(labels[k]); len(msgs) > 0 {
			es.add(field+"."+k, "value %q: %s", labels[k], strings.Join(msgs, "; "))
		}
	}
}

// Consumer checks a consumer as submitted: name and labels.
func Consumer(name string, labels map[string]string) error {
	var es Errors
	es.name("name", name, true)
	es.labels("labels", labels)
	return es.Err()
}
