// Package search parses the REST list parameters `search` and `orderBy`
// into the store's Filter AST and Order terms.
//
// The search language is Maestro's SQL-like one:
//
//	consumer_name='c1' and source='cs'
//	name in ('a', 'b') or not (labels.env = 'prod')
//	name like 'web-%' and created_at != '2026-05-01T10:00:00Z'
//
// Operators: =, !=, in (...), not in (...), like, not like; combinators and,
// or, not and parentheses (not binds tighter than and, and tighter than or).
// Values are single-quoted strings; a quote inside a value is written twice
// or escaped with a backslash:
//
//	name='it''s' or name='it\'s'
//
// Keywords are case-insensitive. Fields come from a whitelist (see Fields);
// the parser never produces SQL, so a value can never change the query's
// structure.
//
// Maestro's JSONB label forms on payload->'metadata'->'labels' are accepted
// too (see jsonb.go); unsupported constructs are errors that name them.
//
// Errors are *Error values naming the byte offset (from 1) and the problem.
package search

import (
	"fmt"
	"strings"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

// Limits that keep a hostile expression cheap to parse and to run.
const (
	MaxLength   = 8192 // bytes of a search expression
	MaxDepth    = 32   // nesting of parentheses and not
	MaxInValues = 1000 // values of one in (...) list
)

// Fields is the set of fields an expression may name. A field "labels." in
// the set allows every "labels.<key>".
type Fields map[string]bool

// BundleFields are the searchable fields of resource bundles.
var BundleFields = Fields{
	"id": true, "name": true, "consumer_name": true, "source": true,
	"created_at": true, "updated_at": true, "labels.": true,
}

// ConsumerFields are the searchable fields of consumers.
var ConsumerFields = Fields{
	"id": true, "name": true, "created_at": true, "updated_at": true, "labels.": true,
}

func (f Fields) allows(name string) bool {
	if f[name] && name != "labels." {
		return true
	}
	if key, ok := strings.CutPrefix(name, "labels."); ok {
		return f["labels."] && validLabelKey(key)
	}
	return false
}

// names lists the allowed fields for error messages.
func (f Fields) names() string {
	order := []string{"id", "name", "consumer_name", "source", "created_at", "updated_at", "labels."}
	var out []string
	for _, n := range order {
		if f[n] {
			if n == "labels." {
				n = "labels.<key>"
			}
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

func validLabelKey(k string) bool {
	if k == "" || len(k) > 317 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isFieldByte(k[i]) {
			return false
		}
	}
	return true
}

func isTimeField(name string) bool { return name == "created_at" || name == "updated_at" }

// Error is a search syntax or semantic error at a position.
type Error struct {
	Pos int    // byte offset in the expression, from 1
	Msg string // the problem
}

func (e *Error) Error() string { return fmt.Sprintf("search: position %d: %s", e.Pos, e.Msg) }

// Parse parses a search expression over the given fields. An empty or
// all-blank expression yields a nil Filter (everything).
func Parse(expr string, fields Fields) (store.Filter, error) {
	if len(expr) > MaxLength {
		return nil, &Error{Pos: MaxLength + 1, Msg: fmt.Sprintf("expression is longer than %d bytes", MaxLength)}
	}
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	if len(toks) == 1 { // only EOF
		return nil, nil
	}
	p := &parser{toks: toks, fields: fields}
	f, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, "expected and, or or the end of the expression, found %s", t)
	}
	return f, nil
}

type parser struct {
	toks   []token
	i      int
	fields Fields
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *parser) errAt(t token, format string, args ...any) error {
	return &Error{Pos: t.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) or(depth int) (store.Filter, error) {
	first, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	terms := store.Or{first}
	for p.peek().isWord("or") {
		p.next()
		f, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		terms = append(terms, f)
	}
	if len(terms) == 1 {
		return first, nil
	}
	return terms, nil
}

func (p *parser) and(depth int) (store.Filter, error) {
	first, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	terms := store.And{first}
	for p.peek().isWord("and") {
		p.next()
		f, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		terms = append(terms, f)
	}
	if len(terms) == 1 {
		return first, nil
	}
	return terms, nil
}

func (p *parser) unary(depth int) (store.Filter, error) {
	t := p.peek()
	if depth >= MaxDepth {
		return nil, p.errAt(t, "expression nests deeper than %d levels", MaxDepth)
	}
	switch {
	case t.isWord("not"):
		p.next()
		f, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return store.Not{F: f}, nil
	case t.kind == tLParen:
		p.next()
		f, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errAt(c, "expected ) to close the ( at position %d, found %s", t.pos, c)
		}
		return f, nil
	}
	return p.cmp()
}

func (p *parser) cmp() (store.Filter, error) {
	ft := p.next()
	if ft.kind != tWord || isKeyword(ft.text) {
		return nil, p.errAt(ft, "expected a field name, found %s", ft)
	}
	if strings.EqualFold(ft.text, "payload") && p.peek().kind == tArrow {
		return p.payload(ft)
	}
	field := strings.ToLower(ft.text)
	if strings.HasPrefix(field, "labels.") {
		field = "labels." + ft.text[len("labels."):] // label keys keep their case
	}
	if !p.fields.allows(field) {
		return nil, p.errAt(ft, "unknown field %q (allowed: %s)", ft.text, p.fields.names())
	}
	opTok := p.next()
	op := ""
	switch {
	case opTok.kind == tEq:
		op = "="
	case opTok.kind == tNe:
		op = "!="
	case opTok.isWord("in"):
		op = "in"
	case opTok.isWord("like"):
		op = "like"
	case opTok.isWord("not"):
		n := p.next()
		switch {
		case n.isWord("in"):
			op = "not in"
		case n.isWord("like"):
			op = "not like"
		default:
			return nil, p.errAt(n, "expected in or like after not, found %s", n)
		}
	default:
		return nil, p.errAt(opTok, "expected an operator (=, !=, in, not in, like, not like) after %s, found %s", ft.text, opTok)
	}
	if isTimeField(field) && strings.HasSuffix(op, "like") {
		return nil, p.errAt(opTok, "%s cannot be compared with %s; use = or !=", field, op)
	}
	var values []string
	var err error
	if strings.HasSuffix(op, "in") {
		values, err = p.list(field)
	} else {
		var v string
		v, err = p.value(field)
		values = []string{v}
	}
	if err != nil {
		return nil, err
	}
	return store.Cmp{Field: field, Op: op, Values: values}, nil
}

func (p *parser) list(field string) ([]string, error) {
	open := p.next()
	if open.kind != tLParen {
		return nil, p.errAt(open, "expected ( to start the list of values, found %s", open)
	}
	var vals []string
	for {
		if len(vals) == MaxInValues {
			return nil, p.errAt(p.peek(), "list has more than %d values", MaxInValues)
		}
		v, err := p.value(field)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
		t := p.next()
		if t.kind == tRParen {
			return vals, nil
		}
		if t.kind != tComma {
			return nil, p.errAt(t, "expected , or ) in the list started at position %d, found %s", open.pos, t)
		}
	}
}

func (p *parser) value(field string) (string, error) {
	t := p.next()
	if t.kind != tString {
		return "", p.errAt(t, "expected a quoted value such as 'abc', found %s", t)
	}
	if isTimeField(field) {
		if _, err := time.Parse(time.RFC3339Nano, t.text); err != nil {
			return "", p.errAt(t, "%s value %q is not an RFC 3339 time (2026-05-01T10:00:00Z)", field, t.text)
		}
	}
	return t.text, nil
}
