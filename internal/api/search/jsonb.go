package search

import (
	"encoding/json"

	"sort"

	"github.com/baton-dev/baton/internal/store"
)

// Maestro's clients search bundle labels with PostgreSQL JSONB syntax on
// the payload column. These forms are parsed into the same filter tree as
// labels.<key>, with SQL's NULL semantics (a missing label matches neither
// = nor <>, in nor not in):
//
//	payload->'metadata'->'labels'@>'{"app":"x","tier":"web"}'  every pair present
//	payload->'metadata'->'labels'->>'app' = 'x'                 present and equal
//	payload->'metadata'->'labels'->>'app' <> 'x'                present and different
//	payload->'metadata'->'labels'->>'app' in ('a', 'b')         present and one of
//	payload->'metadata'->'labels'->>'app' not in ('a', 'b')     present and none of
//	payload->'metadata'->'labels'->>'app' <> null               present (also: is not null)
//	payload->'metadata'->'labels'->>'app' = null                absent (also: is null)
//
// Any other path or operator is an error naming the construct.

// OpExists is the store.Cmp operator of a label presence test; it takes no
// values. Its negation (store.Not) is absence.
const OpExists = store.OpExists

// payload parses what follows the word payload.
func (p *parser) payload(ft token) (store.Filter, error) {
	if !p.fields.allows("labels.x") {
		return nil, p.errAt(ft, "unsupported search construct payload->…: these objects have no payload")
	}
	for _, want := range []string{"metadata", "labels"} {
		a := p.next()
		if a.kind != tArrow {
			return nil, p.errAt(a, "unsupported search construct: expected -> after payload path, found %s "+
				"(supported: payload->'metadata'->'labels'@>'{…}' and payload->'metadata'->'labels'->>'key' …)", a)
		}
		k := p.next()
		if k.kind != tString || k.text != want {
			return nil, p.errAt(k, "unsupported search construct payload path element %s: only payload->'metadata'->'labels' is searchable", k)
		}
	}
	switch t := p.next(); t.kind {
	case tContains:
		return p.containment()
	case tArrowText:
		return p.labelText()
	case tArrow:
		return nil, p.errAt(t, "unsupported search construct ->: a label is read as text with ->>")
	default:
		return nil, p.errAt(t, "unsupported search construct: expected @> or ->> after payload->'metadata'->'labels', found %s", t)
	}
}

// containment parses the JSON object of @>.
func (p *parser) containment() (store.Filter, error) {
	t := p.next()
	if t.kind != tString {
		return nil, p.errAt(t, "expected a quoted JSON object after @>, such as '{\"app\":\"x\"}', found %s", t)
	}
	var labels map[string]string
	if err := json.Unmarshal([]byte(t.text), &labels); err != nil || labels == nil {
		return nil, p.errAt(t, "unsupported search construct @> %q: want a JSON object of string label values", t.text)
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if !validLabelKey(k) {
			return nil, p.errAt(t, "label key %q is not a valid label key", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	all := store.And{}
	for _, k := range keys {
		all = append(all, present("labels."+k), store.Cmp{Field: "labels." + k, Op: "=", Values: []string{labels[k]}})
	}
	return all, nil
}

// labelText parses ->>'key' followed by its comparison.
func (p *parser) labelText() (store.Filter, error) {
	kt := p.next()
	if kt.kind != tString || !validLabelKey(kt.text) {
		return nil, p.errAt(kt, "expected a quoted label key after ->>, found %s", kt)
	}
	field := "labels." + kt.text
	op := p.next()
	switch {
	case op.isWord("is"):
		neg := false
		n := p.next()
		if n.isWord("not") {
			neg, n = true, p.next()
		}
		if !n.isWord("null") {
			return nil, p.errAt(n, "expected null after is, found %s", n)
		}
		if neg {
			return present(field), nil
		}
		return store.Not{F: present(field)}, nil
	case op.kind == tEq || op.kind == tNe:
		if p.peek().isWord("null") {
			p.next()
			if op.kind == tNe {
				return present(field), nil
			}
			return store.Not{F: present(field)}, nil
		}
		v, err := p.value(field)
		if err != nil {
			return nil, err
		}
		sqlOp := "="
		if op.kind == tNe {
			sqlOp = "!="
		}
		return store.And{present(field), store.Cmp{Field: field, Op: sqlOp, Values: []string{v}}}, nil
	case op.isWord("in"), op.isWord("not"):
		sqlOp := "in"
		if op.isWord("not") {
			if n := p.next(); !n.isWord("in") {
				return nil, p.errAt(n, "expected in after not, found %s", n)
			}
			sqlOp = "not in"
		}
		vals, err := p.list(field)
		if err != nil {
			return nil, err
		}
		return store.And{present(field), store.Cmp{Field: field, Op: sqlOp, Values: vals}}, nil
	}
	return nil, p.errAt(op, "unsupported search construct %s on a label: use =, <>, in, not in, <> null or = null", op)
}

func present(field string) store.Cmp { return store.Cmp{Field: field, Op: OpExists} }
