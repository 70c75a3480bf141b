// Package fieldpath finds the fields of an object that a server-side apply
// ignoreFields entry (Open Cluster Management's ManifestWork
// updateStrategy.serverSideApply.ignoreFields) names, and reads, writes and
// removes fields by location. It is pure: no clients, no clocks.
//
// An entry names fields three ways, all resolved to Paths (a list of map
// keys and list indexes) on the manifest:
//
//   - jsonPaths: Kubernetes JSONPath (".spec.replicas",
//     `.metadata.annotations["example.com/x"]`,
//     `.spec.template.spec.containers[?(@.name=="app")].image`); the last
//     segment is the field, the rest selects the maps holding it;
//   - jsonPointers: RFC 6901 ("/spec/replicas", "~1" for "/", "~0" for "~");
//   - jqPathExpressions: jq path expressions
//     (`.spec.template.spec.containers[] | select(.name == "app") | .image`),
//     resolved with gojq's path(); they run for at most JQTimeout.
//
// A field the manifest does not set is not found, which is no error. An
// expression that cannot be parsed, or that cannot be resolved on this
// object (a pointer indexing a list with a word, a jq type error), is an
// error naming the expression.
package fieldpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/itchyny/gojq"
	"k8s.io/client-go/util/jsonpath"
	workv1 "open-cluster-management.io/api/work/v1"
)

// JQTimeout bounds one jq expression on one object.
const JQTimeout = time.Second

// Path locates one field: each element is a map key (string) or a list
// index (int).
type Path []any

// String renders p as a JSON pointer.
func (p Path) String() string {
	var b strings.Builder
	for _, e := range p {
		b.WriteByte('/')
		switch t := e.(type) {
		case int:
			b.WriteString(strconv.Itoa(t))
		case string:
			b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
		}
	}
	return b.String()
}

// Check parses every expression of f without an object: what validation
// refuses up front.
func Check(f workv1.IgnoreField) error {
	var errs []error
	for _, p := range f.JSONPaths {
		if _, _, err := splitJSONPath(p); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range f.JSONPointers {
		if _, err := ParsePointer(p); err != nil {
			errs = append(errs, err)
		}
	}
	for _, e := range f.JQPathExpressions {
		if _, err := compileJQ(e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Locate returns the paths of the fields of obj that f names, without
// duplicates, in the order its expressions list them.
func Locate(obj map[string]any, f workv1.IgnoreField) ([]Path, error) {
	var out []Path
	seen := map[string]bool{}
	add := func(ps ...Path) {
		for _, p := range ps {
			if k := p.String(); !seen[k] {
				seen[k] = true
				out = append(out, p)
			}
		}
	}
	for _, p := range f.JSONPaths {
		ps, err := locateJSONPath(obj, p)
		if err != nil {
			return nil, err
		}
		add(ps...)
	}
	for _, s := range f.JSONPointers {
		p, err := ParsePointer(s)
		if err != nil {
			return nil, err
		}
		switch _, found, err := get(obj, p); {
		case err != nil:
			return nil, fmt.Errorf("JSON pointer %q: %w", s, err)
		case found:
			add(p)
		}
	}
	for _, e := range f.JQPathExpressions {
		ps, err := locateJQ(obj, e)
		if err != nil {
			return nil, err
		}
		add(ps...)
	}
	return out, nil
}

// ParsePointer parses an RFC 6901 JSON pointer. Tokens that are decimal
// numbers are kept as strings; Get, Set and Remove read them as list
// indexes where the value is a list.
func ParsePointer(s string) (Path, error) {
	if s == "" {
		return nil, fmt.Errorf("JSON pointer %q: the whole object cannot be ignored", s)
	}
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("JSON pointer %q: must start with \"/\"", s)
	}
	var p Path
	for _, tok := range strings.Split(s[1:], "/") {
		for i := 0; i < len(tok); i++ {
			if tok[i] == '~' && (i+1 == len(tok) || (tok[i+1] != '0' && tok[i+1] != '1')) {
				return nil, fmt.Errorf("JSON pointer %q: \"~\" must be followed by 0 or 1", s)
			}
		}
		p = append(p, strings.NewReplacer("~1", "/", "~0", "~").Replace(tok))
	}
	return p, nil
}

// Get returns the value at p in obj.
func Get(obj map[string]any, p Path) (any, bool) {
	v, ok, err := get(obj, p)
	return v, ok && err == nil
}

// get walks p; a missing key or index is not found, a step into a scalar
// or a word used as a list index is an error.
func get(obj map[string]any, p Path) (any, bool, error) {
	var cur any = obj
	for _, e := range p {
		switch c := cur.(type) {
		case map[string]any:
			k, ok := e.(string)
			if !ok {
				return nil, false, fmt.Errorf("index %v used on an object", e)
			}
			if cur, ok = c[k]; !ok {
				return nil, false, nil
			}
		case []any:
			i, err := Index(e)
			if err != nil {
				return nil, false, err
			}
			if i < 0 || i >= len(c) {
				return nil, false, nil
			}
			cur = c[i]
		case nil:
			return nil, false, nil
		default:
			return nil, false, fmt.Errorf("%v: cannot step into a %s", e, kind(cur))
		}
	}
	return cur, true, nil
}

// kind names a scalar's JSON type.
func kind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	return "number"
}

// Index reads a path element as a list index (an int, or a decimal string
// as JSON pointers carry them).
func Index(e any) (int, error) {
	switch t := e.(type) {
	case int:
		return t, nil
	case string:
		i, err := strconv.Atoi(t)
		if err != nil || strconv.Itoa(i) != t {
			return 0, fmt.Errorf("%q is not a list index", t)
		}
		return i, nil
	}
	return 0, fmt.Errorf("%v is not a list index", e)
}

// Set replaces the value at p, which must exist, with v.
func Set(obj map[string]any, p Path, v any) bool {
	return edit(obj, p, func(m map[string]any, k string) { m[k] = v }, func(l []any, i int) { l[i] = v })
}

// Remove deletes the field at p. A list element is never removed (it
// would shift the others); false then, and when p does not exist.
func Remove(obj map[string]any, p Path) bool {
	return edit(obj, p, func(m map[string]any, k string) { delete(m, k) }, nil)
}

func edit(obj map[string]any, p Path, inMap func(map[string]any, string), inList func([]any, int)) bool {
	if len(p) == 0 {
		return false
	}
	parent, ok, err := get(obj, p[:len(p)-1])
	if !ok || err != nil {
		return false
	}
	last := p[len(p)-1]
	switch c := parent.(type) {
	case map[string]any:
		k, ok := last.(string)
		if _, has := c[k]; !ok || !has {
			return false
		}
		inMap(c, k)
		return true
	case []any:
		i, err := Index(last)
		if err != nil || i < 0 || i >= len(c) || inList == nil {
			return false
		}
		inList(c, i)
		return true
	}
	return false
}

// splitJSONPath splits a JSONPath into the path of the maps holding the
// field and the field's key: ".a.b" → ".a", "b"; `.a["x.y"]` → ".a", "x.y".
func splitJSONPath(p string) (string, string, error) {
	s := strings.TrimSpace(p)
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	if strings.ContainsAny(s, "{}") {
		return "", "", fmt.Errorf("JSONPath %q: one field path, without templates", p)
	}
	var parent, key string
	switch {
	case strings.HasSuffix(s, `"]`) || strings.HasSuffix(s, `']`):
		q := s[len(s)-2 : len(s)-1]
		i := strings.LastIndex(s[:len(s)-2], "["+q)
		if i < 0 {
			return "", "", fmt.Errorf("JSONPath %q: unbalanced quoted key", p)
		}
		parent, key = s[:i], s[i+2:len(s)-2]
	default:
		i := strings.LastIndex(s, ".")
		if i < 0 || strings.ContainsAny(s[i+1:], "[]()@?*") {
			return "", "", fmt.Errorf("JSONPath %q: must end in a field name (.name or [\"name\"])", p)
		}
		parent, key = s[:i], s[i+1:]
	}
	if key == "" {
		return "", "", fmt.Errorf("JSONPath %q: must end in a field name", p)
	}
	if parent == "" {
		parent = "@"
	}
	if err := jsonpath.New("ignore").Parse("{" + parent + "}"); err != nil {
		return "", "", fmt.Errorf("JSONPath %q: %v", p, err)
	}
	return parent, key, nil
}

// locateJSONPath finds the maps the parent path selects and returns the
// path of key in each that holds it. The parents are found by identity:
// each is marked, then the marks are looked up by walking obj.
func locateJSONPath(obj map[string]any, p string) (out []Path, err error) {
	parent, key, err := splitJSONPath(p)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("JSONPath %q: evaluation failed: %v", p, r)
		}
	}()
	jp := jsonpath.New("ignore").AllowMissingKeys(true)
	if err := jp.Parse("{" + parent + "}"); err != nil {
		return nil, fmt.Errorf("JSONPath %q: %v", p, err)
	}
	res, err := jp.FindResults(obj)
	if err != nil {
		return nil, fmt.Errorf("JSONPath %q: %v", p, err)
	}
	targets := map[uintptr]bool{}
	for _, list := range res {
		for _, r := range list {
			for r.IsValid() && r.Kind() == reflect.Interface && !r.IsNil() {
				r = r.Elem()
			}
			if r.IsValid() && r.Kind() == reflect.Map && !r.IsNil() {
				if _, ok := r.Interface().(map[string]any)[key]; ok {
					targets[r.Pointer()] = true
				}
			}
		}
	}
	if len(targets) == 0 {
		return nil, nil
	}
	walk(obj, nil, func(at Path, m map[string]any) {
		if targets[reflect.ValueOf(m).Pointer()] {
			out = append(out, append(append(Path{}, at...), key))
		}
	})
	return out, nil
}

// walk calls fn for every map in v with its path.
func walk(v any, at Path, fn func(Path, map[string]any)) {
	switch t := v.(type) {
	case map[string]any:
		fn(at, t)
		for k, c := range t {
			walk(c, append(at[:len(at):len(at)], k), fn)
		}
	case []any:
		for i, c := range t {
			walk(c, append(at[:len(at):len(at)], i), fn)
		}
	}
}

func compileJQ(expr string) (*gojq.Code, error) {
	q, err := gojq.Parse("path(" + expr + ")")
	if err != nil {
		return nil, fmt.Errorf("jq expression %q: %v", expr, err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("jq expression %q: %v", expr, err)
	}
	return code, nil
}

// locateJQ runs path(expr) on (a JSON copy of) obj.
func locateJQ(obj map[string]any, expr string) ([]Path, error) {
	code, err := compileJQ(expr)
	if err != nil {
		return nil, err
	}
	// gojq knows JSON's types only (float64, not int64): run it on a copy.
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("jq expression %q: %v", expr, err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("jq expression %q: %v", expr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), JQTimeout)
	defer cancel()
	var out []Path
	iter := code.RunWithContext(ctx, doc)
	for {
		v, ok := iter.Next()
		if !ok {
			return out, nil
		}
		switch t := v.(type) {
		case error:
			if errors.Is(t, context.DeadlineExceeded) {
				return nil, fmt.Errorf("jq expression %q: timed out after %v", expr, JQTimeout)
			}
			return nil, fmt.Errorf("jq expression %q: %v", expr, t)
		case []any:
			p := make(Path, 0, len(t))
			for _, e := range t {
				switch x := e.(type) {
				case string:
					p = append(p, x)
				case int:
					p = append(p, x)
				case float64:
					p = append(p, int(x))
				default:
					return nil, fmt.Errorf("jq expression %q: path element %v is neither a key nor an index", expr, e)
				}
			}
			if len(p) == 0 {
				return nil, fmt.Errorf("jq expression %q: the whole object cannot be ignored", expr)
			}
			if _, found := Get(obj, p); found {
				out = append(out, p)
			}
		}
	}
}
