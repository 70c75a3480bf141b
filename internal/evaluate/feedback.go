package evaluate

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/jsonpath"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/pkg/api"
)

// MaxJSONRawBytes caps a JsonRaw feedback value (compact JSON), as Open
// Cluster Management documents it (FieldValue.jsonRaw has maxLength 1024).
// A larger value is dropped and StatusFeedbackSynced turns False
// (ValueTooLarge), so a status never carries a value a ManifestWork could
// not hold.
const MaxJSONRawBytes = 1024

// Versions is an object as read at other API versions than its
// manifest's, by version ("v1beta1"), for JsonPath.version.
type Versions map[string]*unstructured.Unstructured

// VersionsNeeded lists the API versions other than own that the JSONPaths
// rules name, in order of first use, without duplicates.
func VersionsNeeded(rules []workv1.FeedbackRule, own string) []string {
	var out []string
	for _, r := range rules {
		if r.Type != workv1.JSONPathsType {
			continue
		}
		for _, jp := range r.JsonPaths {
			if jp.Version != "" && jp.Version != own && !slices.Contains(out, jp.Version) {
				out = append(out, jp.Version)
			}
		}
	}
	return out
}

// PathError is why a JSONPath yielded no value. Reason is one of
// ReasonNoValue, ReasonInvalidJSONPath, ReasonValueTooLarge.
type PathError struct {
	Path   string
	Reason string
	Err    error
}

// Error describes the path and the cause.
func (e *PathError) Error() string { return fmt.Sprintf("path %q: %v", e.Path, e.Err) }

// Unwrap returns the cause.
func (e *PathError) Unwrap() error { return e.Err }

// Feedback evaluates rules on obj (which must exist) and returns the values
// in rule order plus the StatusFeedbackSynced condition (without time).
//
// Rules:
//   - JSONPaths: each path is evaluated on the whole object (EvalPath), or,
//     when it names a version other than obj's (JsonPath.version), on the
//     object as read at that version (versions). A path that finds
//     nothing, cannot be parsed, names a version the object cannot be read
//     at (VersionNotFound), or yields a value over MaxJSONRawBytes
//     contributes no value and makes the condition False; the reason is
//     the first problem's, the message lists all of them.
//   - WellKnownStatus: the fixed paths for the object's kind (WellKnownPaths);
//     fields absent from the object are simply not reported (a zero replica
//     count is omitted by Kubernetes), and a kind without a rule makes the
//     condition False with NoWellKnownRule.
//   - Duplicate names: the first value wins.
func Feedback(obj *unstructured.Unstructured, rules []workv1.FeedbackRule, versions Versions) ([]workv1.FeedbackValue, metav1.Condition) {
	var values []workv1.FeedbackValue
	var problems []string
	reason := ""
	fail := func(r, msg string) {
		if reason == "" {
			reason = r
		}
		problems = append(problems, msg)
	}
	seen := map[string]bool{}
	add := func(name string, v workv1.FieldValue) {
		if !seen[name] {
			seen[name] = true
			values = append(values, workv1.FeedbackValue{Name: name, Value: v})
		}
	}
	for _, rule := range rules {
		switch rule.Type {
		case workv1.JSONPathsType:
			for _, jp := range rule.JsonPaths {
				target := obj
				if jp.Version != "" && jp.Version != obj.GroupVersionKind().Version {
					if target = versions[jp.Version]; target == nil {
						fail(ReasonVersionNotFound, fmt.Sprintf("%s: the object cannot be read at version %s", jp.Name, jp.Version))
						continue
					}
				}
				v, err := EvalPath(target.Object, jp.Path)
				if err != nil {
					fail(err.Reason, fmt.Sprintf("%s: %v", jp.Name, err))
					continue
				}
				add(jp.Name, v)
			}
		case workv1.WellKnownStatusType:
			paths, ok := WellKnownPaths(obj.GroupVersionKind().GroupKind())
			if !ok {
				fail(ReasonNoWellKnownRule, fmt.Sprintf("no well-known status rule for kind %s", obj.GroupVersionKind().GroupKind()))
				continue
			}
			for _, jp := range paths {
				if v, err := EvalPath(obj.Object, jp.Path); err == nil {
					add(jp.Name, v)
				}
			}
		default:
			fail(ReasonUnknownRuleType, fmt.Sprintf("unknown feedback rule type %q", rule.Type))
		}
	}
	c := metav1.Condition{Type: api.ConditionStatusFeedbackSynced, Status: metav1.ConditionTrue,
		Reason: ReasonFeedbackSynced, Message: "Status feedback synced"}
	if len(rules) == 0 {
		c.Message = "No feedback rules"
	}
	if reason != "" {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, reason, strings.Join(problems, "; ")
	}
	return values, c
}

// EvalPath evaluates a kubectl-style JSONPath on data (an unstructured
// object). The path may be given with or without the surrounding braces;
// "@" is the whole object. A single scalar result becomes an Integer (also
// from a float without fraction), String or Boolean; a fractional number, a
// map, a slice, or several results (as a JSON array) become JsonRaw. It
// never panics.
func EvalPath(data map[string]any, path string) (v workv1.FieldValue, perr *PathError) {
	defer func() {
		if r := recover(); r != nil {
			v, perr = workv1.FieldValue{}, &PathError{Path: path, Reason: ReasonInvalidJSONPath, Err: fmt.Errorf("evaluation failed: %v", r)}
		}
	}()
	// A JSONPath's parse tree is mutated while it runs, so parse every time.
	jp := jsonpath.New("feedback").AllowMissingKeys(true)
	if err := jp.Parse(bracePath(path)); err != nil {
		return v, &PathError{Path: path, Reason: ReasonInvalidJSONPath, Err: err}
	}
	res, err := jp.FindResults(data)
	if err != nil {
		return v, &PathError{Path: path, Reason: ReasonNoValue, Err: err}
	}
	var found []any
	for _, list := range res {
		for _, r := range list {
			if x, ok := plain(r); ok {
				found = append(found, x)
			}
		}
	}
	switch len(found) {
	case 0:
		return v, &PathError{Path: path, Reason: ReasonNoValue, Err: fmt.Errorf("no value found")}
	case 1:
		v, err = fieldValue(found[0])
	default:
		v, err = rawValue(found)
	}
	if err != nil {
		return workv1.FieldValue{}, &PathError{Path: path, Reason: ReasonValueTooLarge, Err: err}
	}
	return v, nil
}

// bracePath turns ".a.b" into "{.a.b}" and "@" into "{@}"; a path that
// already holds a template action is kept.
func bracePath(p string) string {
	p = strings.TrimSpace(p)
	if strings.Contains(p, "{") {
		return p
	}
	return "{" + p + "}"
}

// plain unwraps a result; JSON null and invalid values are no value.
func plain(r reflect.Value) (any, bool) {
	for r.IsValid() && (r.Kind() == reflect.Interface || r.Kind() == reflect.Pointer) {
		if r.IsNil() {
			return nil, false
		}
		r = r.Elem()
	}
	if !r.IsValid() || !r.CanInterface() {
		return nil, false
	}
	return r.Interface(), true
}

func fieldValue(x any) (workv1.FieldValue, error) {
	switch t := x.(type) {
	case string:
		return workv1.FieldValue{Type: workv1.String, String: &t}, nil
	case bool:
		return workv1.FieldValue{Type: workv1.Boolean, Boolean: &t}, nil
	case int64:
		return intValue(t), nil
	case int:
		return intValue(int64(t)), nil
	case int32:
		return intValue(int64(t)), nil
	case float64:
		if t == math.Trunc(t) && t >= math.MinInt64 && t < math.MaxInt64 {
			return intValue(int64(t)), nil
		}
	}
	return rawValue(x)
}

func intValue(i int64) workv1.FieldValue { return workv1.FieldValue{Type: workv1.Integer, Integer: &i} }

func rawValue(x any) (workv1.FieldValue, error) {
	b, err := json.Marshal(x)
	if err != nil {
		return workv1.FieldValue{}, fmt.Errorf("encode value: %w", err)
	}
	if len(b) > MaxJSONRawBytes {
		return workv1.FieldValue{}, fmt.Errorf("value of %d bytes exceeds the %d byte limit", len(b), MaxJSONRawBytes)
	}
	s := string(b)
	return workv1.FieldValue{Type: workv1.JsonRaw, JsonRaw: &s}, nil
}
