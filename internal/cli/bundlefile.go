package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/validate"
	"github.com/baton-dev/baton/pkg/api"
)

// bundleDoc is one bundle, or one consumer, read from a file.
type bundleDoc struct {
	Source string // "FILE, document N (line L)"
	Bundle api.ResourceBundle
	// Consumer is set instead of Bundle for a document of kind Consumer.
	Consumer *api.Consumer
}

// fieldError is a problem with one field of a document; Path uses dots and
// [i] indexes as the file spells the fields.
type fieldError struct {
	Path string
	Msg  string
}

func (e *fieldError) Error() string { return fmt.Sprintf("field %s: %s", e.Path, e.Msg) }

// parseBundles reads every bundle (and consumer) of a YAML or JSON file: multi-document
// YAML, one JSON value or several, a JSON/YAML array of bundles, or a list
// object with items (the output of `baton get bundles -o json`). Each bundle
// is the REST shape or a ManifestWork; a document of kind Consumer
// ({kind: Consumer, name, labels}) is a consumer. consumer is used when a document
// names none. Errors name the file, the document, its line and the field.
func parseBundles(file string, data []byte, consumer string) ([]bundleDoc, error) {
	if looksJSON(data) {
		if err := jsonSyntax(data); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		// Tabs may only be whitespace in valid JSON, but YAML refuses them.
		data = bytes.ReplaceAll(data, []byte("\t"), []byte(" "))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []bundleDoc
	var errs []error
	for index := 1; ; index++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s, document %d: %w", file, index, err)
		}
		for _, item := range items(&doc) {
			where := fmt.Sprintf("%s, document %d (line %d)", file, index, item.Line)
			if k := child(item, "kind"); k != nil && k.Value == api.KindConsumer {
				c, err := decodeConsumer(item)
				if err != nil {
					for _, e := range locate(item, err) {
						errs = append(errs, fmt.Errorf("%s: %w", where, e))
					}
					continue
				}
				out = append(out, bundleDoc{Source: where, Consumer: c})
				continue
			}
			b, err := decodeBundle(item, consumer)
			if err != nil {
				for _, e := range locate(item, err) {
					errs = append(errs, fmt.Errorf("%s: %w", where, e))
				}
				continue
			}
			out = append(out, bundleDoc{Source: where, Bundle: b})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no bundles in file", file)
	}
	return out, nil
}

func looksJSON(data []byte) bool {
	t := bytes.TrimSpace(data)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// jsonSyntax checks a stream of JSON values and names the line of the first error.
func jsonSyntax(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			off := dec.InputOffset()
			var se *json.SyntaxError
			if errors.As(err, &se) {
				off = se.Offset
			}
			return fmt.Errorf("line %d: invalid JSON: %w", 1+bytes.Count(data[:min(int(off), len(data))], []byte("\n")), err)
		}
	}
}

// items returns the bundle nodes of a document: the document itself, the
// elements of a top-level sequence, or the items of a list object.
func items(doc *yaml.Node) []*yaml.Node {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	n := doc.Content[0]
	switch n.Kind {
	case yaml.SequenceNode:
		return n.Content
	case yaml.MappingNode:
		if k := child(n, "kind"); k != nil && strings.HasSuffix(k.Value, "List") {
			if it := child(n, "items"); it != nil && it.Kind == yaml.SequenceNode {
				return it.Content
			}
		}
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
	}
	return []*yaml.Node{n}
}

func child(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// decodeConsumer reads a consumer document ({kind: Consumer, name, labels}).
func decodeConsumer(n *yaml.Node) (*api.Consumer, error) {
	data, err := nodeJSON(n)
	if err != nil {
		return nil, err
	}
	var c api.Consumer
	if err := strictJSON(data, &c); err != nil {
		return nil, err
	}
	if err := validate.Consumer(c.Name, c.Labels); err != nil {
		var ves validate.Errors
		if errors.As(err, &ves) {
			out := make(fieldErrors, len(ves))
			for i, e := range ves {
				out[i] = &fieldError{e.Field, e.Msg}
			}
			return nil, out
		}
		return nil, err
	}
	return &c, nil
}

// nodeJSON converts a YAML node to JSON.
func nodeJSON(n *yaml.Node) ([]byte, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("converting to JSON: %w", err)
	}
	return data, nil
}

// ManifestWork identity.
const (
	workAPIVersion = "work.open-cluster-management.io/v1"
	workKind       = "ManifestWork"
)

// decodeBundle converts one node into a bundle and validates it.
func decodeBundle(n *yaml.Node, consumer string) (api.ResourceBundle, error) {
	if n.Kind != yaml.MappingNode {
		return api.ResourceBundle{}, fmt.Errorf("want a bundle object, got a %s", nodeKind(n))
	}
	data, err := nodeJSON(n)
	if err != nil {
		return api.ResourceBundle{}, err
	}
	if child(n, "apiVersion") != nil || child(n, "spec") != nil {
		return decodeWork(data, consumer)
	}
	var b api.ResourceBundle
	if err := strictJSON(data, &b); err != nil {
		return b, err
	}
	if b.Name == "" {
		b.Name = b.Metadata.Name
	}
	if b.ConsumerName == "" {
		b.ConsumerName = consumer
	}
	return b, validateBundle(&b, restFields)
}

func decodeWork(data []byte, consumer string) (api.ResourceBundle, error) {
	var w workv1.ManifestWork
	if err := strictJSON(data, &w); err != nil {
		return api.ResourceBundle{}, err
	}
	if w.APIVersion != workAPIVersion {
		return api.ResourceBundle{}, &fieldError{"apiVersion", fmt.Sprintf("want %s, got %q", workAPIVersion, w.APIVersion)}
	}
	if w.Kind != workKind {
		return api.ResourceBundle{}, &fieldError{"kind", fmt.Sprintf("want %s, got %q", workKind, w.Kind)}
	}
	b := api.ResourceBundle{
		Name:         w.Name,
		ConsumerName: w.Namespace,
		Metadata: api.ObjectMeta{Name: w.Name, Namespace: w.Namespace,
			Labels: w.Labels, Annotations: w.Annotations},
		DeleteOption:    w.Spec.DeleteOption,
		ManifestConfigs: w.Spec.ManifestConfigs,
		Executor:        w.Spec.Executor,
	}
	if b.ConsumerName == "" {
		b.ConsumerName, b.Metadata.Namespace = consumer, consumer
	}
	for _, m := range w.Spec.Workload.Manifests {
		b.Manifests = append(b.Manifests, json.RawMessage(m.Raw))
	}
	return b, validateBundle(&b, workFields)
}

// strictJSON decodes data into v, refusing unknown fields.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te) && te.Field != "":
		return &fieldError{te.Field, fmt.Sprintf("want %s, got %s", te.Type, te.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &fieldError{field, "unknown field"}
	}
	return err
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar " + n.Tag
	case yaml.AliasNode:
		return "alias"
	}
	return "node"
}

// locate splits err into one error per field and adds each field's line.
func locate(n *yaml.Node, err error) []error {
	var fes fieldErrors
	if !errors.As(err, &fes) {
		var fe *fieldError
		if !errors.As(err, &fe) {
			return []error{err}
		}
		fes = fieldErrors{fe}
	}
	out := make([]error, len(fes))
	for i, fe := range fes {
		out[i] = fmt.Errorf("line %d: %w", lineOf(n, fe.Path), fe)
	}
	return out
}

// lineOf finds the line of a dotted field path ("a.b[2].c") in n: the line
// of the deepest part of the path present in the file. A single field name
// that is not a top-level key (Go's JSON decoder names unknown fields
// without their path) is searched for anywhere.
func lineOf(n *yaml.Node, path string) int {
	segs := splitPath(path)
	line, depth := walk(n, segs)
	if depth == 0 && len(segs) == 1 {
		if k := findKey(n, segs[0]); k != nil {
			return k.Line
		}
	}
	return line
}

// walk follows segs from n and returns the line reached and how many
// segments matched. A sequence met without an index is searched element by
// element for the deepest match.
func walk(n *yaml.Node, segs []string) (line, depth int) {
	if len(segs) == 0 {
		return n.Line, 0
	}
	seg := segs[0]
	if strings.HasPrefix(seg, "[") {
		var idx int
		if _, err := fmt.Sscanf(seg, "[%d]", &idx); err == nil && n.Kind == yaml.SequenceNode && idx >= 0 && idx < len(n.Content) {
			l, d := walk(n.Content[idx], segs[1:])
			return l, d + 1
		}
		return n.Line, 0
	}
	switch n.Kind {
	case yaml.MappingNode:
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == seg {
				l, d := walk(n.Content[j+1], segs[1:])
				if d == 0 {
					l = n.Content[j].Line
				}
				return l, d + 1
			}
		}
	case yaml.SequenceNode:
		line = n.Line
		for _, el := range n.Content {
			if l, d := walk(el, segs); d > depth {
				line, depth = l, d
			}
		}
		return line, depth
	}
	return n.Line, 0
}

func splitPath(p string) []string {
	var segs []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.Index(part, "[")
			switch {
			case i < 0:
				segs, part = append(segs, part), ""
			case i > 0:
				segs, part = append(segs, part[:i]), part[i:]
			default:
				j := strings.Index(part, "]")
				if j < 0 {
					j = len(part) - 1
				}
				segs, part = append(segs, part[:j+1]), part[j+1:]
			}
		}
	}
	return segs
}

// findKey finds the first mapping key named key anywhere under n.
func findKey(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == key {
				return n.Content[j]
			}
		}
	}
	for _, c := range n.Content {
		if k := findKey(c, key); k != nil {
			return k
		}
	}
	return nil
}

// ReadBundles parses a bundle file as `baton apply -f` does and returns its
// consumers and bundles; consumer is the --consumer default. For tools and
// tests that check bundle files without a server.
func ReadBundles(file string, data []byte, consumer string) ([]api.Consumer, []api.ResourceBundle, error) {
	docs, err := parseBundles(file, data, consumer)
	if err != nil {
		return nil, nil, err
	}
	var cs []api.Consumer
	var bs []api.ResourceBundle
	for _, d := range docs {
		if d.Consumer != nil {
			cs = append(cs, *d.Consumer)
		} else {
			bs = append(bs, d.Bundle)
		}
	}
	return cs, bs, nil
}
