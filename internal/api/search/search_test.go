package search

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/baton-dev/baton/internal/store"
)

func TestParse(t *testing.T) {
	cmp := func(f, op string, v ...string) store.Cmp { return store.Cmp{Field: f, Op: op, Values: v} }
	tests := map[string]struct {
		in   string
		want store.Filter
	}{
		"empty":        {"", nil},
		"blank":        {"  \t ", nil},
		"eq":           {"name='a'", cmp("name", "=", "a")},
		"maestro":      {"consumer_name='c1' and source='cs'", store.And{cmp("consumer_name", "=", "c1"), cmp("source", "=", "cs")}},
		"ne":           {"name != 'a'", cmp("name", "!=", "a")},
		"ne sql":       {"name <> 'a'", cmp("name", "!=", "a")},
		"in":           {"id in ('a', 'b','c')", cmp("id", "in", "a", "b", "c")},
		"not in":       {"id NOT IN ('a')", cmp("id", "not in", "a")},
		"like":         {"name like 'web-%'", cmp("name", "like", "web-%")},
		"not like":     {"name not like '%x'", cmp("name", "not like", "%x")},
		"doubled":      {"name='it''s'", cmp("name", "=", "it's")},
		"backslash":    {`name='it\'s'`, cmp("name", "=", "it's")},
		"backslash2":   {`name='a\\'`, cmp("name", "=", `a\`)},
		"empty value":  {"name=''", cmp("name", "=", "")},
		"label":        {"labels.app.kubernetes.io/name='x'", cmp("labels.app.kubernetes.io/name", "=", "x")},
		"label case":   {"LABELS.Env='x'", cmp("labels.Env", "=", "x")},
		"time":         {"created_at = '2026-05-01T10:00:00Z'", cmp("created_at", "=", "2026-05-01T10:00:00Z")},
		"keyword case": {"name='a' AND name='b' Or name='c'", store.Or{store.And{cmp("name", "=", "a"), cmp("name", "=", "b")}, cmp("name", "=", "c")}},
		"precedence": {"not name='a' or name='b' and name='c'",
			store.Or{store.Not{F: cmp("name", "=", "a")}, store.And{cmp("name", "=", "b"), cmp("name", "=", "c")}}},
		"parens": {"(name='a' or name='b') and not (source='s')",
			store.And{store.Or{cmp("name", "=", "a"), cmp("name", "=", "b")}, store.Not{F: cmp("source", "=", "s")}}},
		"injection stays a value": {"name='x'' or 1=1 --'", cmp("name", "=", "x' or 1=1 --")},
		"semicolon in value":      {"name='a; DROP TABLE bundles'", cmp("name", "=", "a; DROP TABLE bundles")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.in, BundleFields)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q) = %#v; want %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]struct {
		in      string
		fields  Fields
		pos     int
		mention string
	}{
		"unknown field":        {"color='red'", BundleFields, 1, `unknown field "color"`},
		"consumer no source":   {"source='x'", ConsumerFields, 1, "unknown field"},
		"missing value":        {"name=", BundleFields, 6, "expected a quoted value"},
		"unquoted value":       {"name=abc", BundleFields, 6, "expected a quoted value"},
		"double quotes":        {`name="a"`, BundleFields, 6, "single quotes"},
		"unterminated":         {"name='abc", BundleFields, 6, "not closed"},
		"missing operator":     {"name 'a'", BundleFields, 6, "expected an operator"},
		"trailing and":         {"name='a' and", BundleFields, 13, "expected a field name"},
		"unclosed paren":       {"(name='a'", BundleFields, 10, "expected ) to close the ( at position 1"},
		"extra paren":          {"name='a')", BundleFields, 9, "expected and, or"},
		"in without list":      {"name in 'a'", BundleFields, 9, "expected ( to start"},
		"in bad sep":           {"name in ('a' 'b')", BundleFields, 14, "expected , or )"},
		"not alone":            {"name not 'a'", BundleFields, 10, "expected in or like"},
		"sql comment":          {"name='a' -- x", BundleFields, 10, "expected and, or"},
		"semicolon":            {"name='a'; drop table x", BundleFields, 9, "unexpected character"},
		"bad time":             {"created_at='yesterday'", BundleFields, 12, "RFC 3339"},
		"like on time":         {"updated_at like '2026%'", BundleFields, 12, "cannot be compared"},
		"keyword as field":     {"and='x'", BundleFields, 1, "expected a field name"},
		"empty label key":      {"labels.='x'", BundleFields, 1, "unknown field"},
		"or 1=1 injection":     {"name='a' or 1=1", BundleFields, 13, "unknown field \"1\""},
		"union injection":      {"name='a' union select * from consumers", BundleFields, 23, "unexpected character"},
		"empty parens":         {"()", BundleFields, 2, "expected a field name"},
		"too deep":             {strings.Repeat("(", MaxDepth+1) + "name='a'" + strings.Repeat(")", MaxDepth+1), BundleFields, MaxDepth + 1, "nests deeper"},
		"too long":             {"name='" + strings.Repeat("a", MaxLength) + "'", BundleFields, MaxLength + 1, "longer than"},
		"stray not":            {"not", BundleFields, 4, "expected a field name"},
		"control char":         {"name='a'\x00", BundleFields, 9, "unexpected character"},
		"comparison operators": {"name > 'a'", BundleFields, 6, "unexpected character"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.in, tc.fields)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error = %v; want *Error", tc.in, err)
			}
			if se.Pos != tc.pos || !strings.Contains(se.Msg, tc.mention) {
				t.Fatalf("Parse(%q) = %q at %d; want %q at %d", tc.in, se.Msg, se.Pos, tc.mention, tc.pos)
			}
			if !strings.Contains(err.Error(), "position") {
				t.Fatalf("error %q does not name the position", err)
			}
		})
	}
}

func TestParseOrder(t *testing.T) {
	got, err := ParseOrder("created_at desc, name ,ID ASC", BundleFields)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Order{{Field: "created_at", Desc: true}, {Field: "name"}, {Field: "id"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v; want %v", got, want)
	}
	if o, err := ParseOrder(" ", BundleFields); o != nil || err != nil {
		t.Fatalf("blank: got %v, %v; want nil, nil", o, err)
	}
	for in, mention := range map[string]string{
		"color":                     `"color": unknown field`,
		"name sideways":             "not asc or desc",
		"name desc extra":           "want",
		"name,,id":                  "want",
		"name, name desc":           "appears twice",
		"consumer_name":             "", // allowed for bundles, checked below for consumers
		"labels.env":                "unknown field",
		"name; drop table consumer": "want",
	} {
		_, err := ParseOrder(in, BundleFields)
		if mention == "" {
			if err != nil {
				t.Errorf("ParseOrder(%q): %v", in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("ParseOrder(%q) = %v; want error mentioning %q", in, err, mention)
		}
	}
	if _, err := ParseOrder("consumer_name", ConsumerFields); err == nil {
		t.Error("consumer_name accepted as a consumer order field")
	}
}

// seeds are the fuzz seed corpus; the normal test run executes each once.
var seeds = []string{
	"", "name='a'", "consumer_name='c1' and source='cs'", "id in ('a','b')", "not (name like 'x%')",
	"labels.env != 'prod' or name not in ('a')", "name='it''s'", `name='a\'b'`, "((name='a'))",
	"created_at='2026-05-01T10:00:00Z'", "name='", "name in (", "(((", "not not not", "name='a' or",
	"labels./='x'", "name <> 'x'", "\xff", "name='\x00'",
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := Parse(s, BundleFields)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): error %T is not *Error", s, err)
			}
			if se.Pos < 1 || se.Pos > len(s)+1 {
				t.Fatalf("Parse(%q): position %d outside 1..%d", s, se.Pos, len(s)+1)
			}
			return
		}
		checkFilter(t, s, flt, 0)
	})
}

// checkFilter asserts the AST only holds whitelisted fields, known
// operators and the right number of values.
func checkFilter(t *testing.T, src string, f store.Filter, depth int) {
	if depth > MaxDepth+2 {
		t.Fatalf("Parse(%q): AST deeper than the limit", src)
	}
	switch f := f.(type) {
	case nil:
	case store.Cmp:
		if !BundleFields.allows(f.Field) {
			t.Fatalf("Parse(%q): field %q not allowed", src, f.Field)
		}
		switch f.Op {
		case "=", "!=", "like", "not like":
			if len(f.Values) != 1 {
				t.Fatalf("Parse(%q): %s with %d values", src, f.Op, len(f.Values))
			}
		case "in", "not in":
			if len(f.Values) == 0 || len(f.Values) > MaxInValues {
				t.Fatalf("Parse(%q): %s with %d values", src, f.Op, len(f.Values))
			}
		default:
			t.Fatalf("Parse(%q): operator %q", src, f.Op)
		}
	case store.And:
		for _, g := range f {
			checkFilter(t, src, g, depth+1)
		}
	case store.Or:
		for _, g := range f {
			checkFilter(t, src, g, depth+1)
		}
	case store.Not:
		checkFilter(t, src, f.F, depth+1)
	default:
		t.Fatalf("Parse(%q): unexpected node %T", src, f)
	}
}

func TestMaestroLabelFormsErrors(t *testing.T) {
	const l = `payload->'metadata'->'labels'`
	for expr, mention := range map[string]string{
		`payload->'spec'->'x'='y'`: "payload path element",
		l + `->'app'='x'`:          "->>",
		l + `->>'app' like 'x%'`:   `unsupported search construct "like"`,
		l + `@>'["a"]'`:            "JSON object",
		l + `@>'{"a":1}'`:          "JSON object",
		l + `->>'app' is 'x'`:      "expected null",
		`payload='x'`:              "unknown field",
	} {
		_, err := Parse(expr, BundleFields)
		if err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("Parse(%s) = %v; want an error mentioning %q", expr, err, mention)
		}
	}
	if _, err := Parse(l+`@>'{"a":"b"}'`, ConsumerFields); err != nil {
		t.Errorf("consumers have labels too: %v", err)
	}
}
