package watch

import (
	"fmt"
	"strings"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

// Match evaluates a search filter against one bundle in memory, with the
// semantics the stores give it in SQL: byte-wise string comparison, like
// with % and _ wildcards (backslash escapes), times compared as instants,
// and labels.<key> reading the bundle's metadata labels (every comparison
// with a missing label is false, as with SQL NULL; a not around it is true).
func Match(f store.Filter, b store.Bundle) (bool, error) {
	switch f := f.(type) {
	case nil:
		return true, nil
	case store.And:
		for _, g := range f {
			if ok, err := Match(g, b); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case store.Or:
		for _, g := range f {
			if ok, err := Match(g, b); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case store.Not:
		ok, err := Match(f.F, b)
		return !ok && err == nil, err
	case store.Cmp:
		return matchCmp(f, b)
	default:
		return false, fmt.Errorf("filter %T: %w", f, store.ErrInvalid)
	}
}

func matchCmp(c store.Cmp, b store.Bundle) (bool, error) {
	val, present, isTime, err := field(c.Field, b)
	if err != nil {
		return false, err
	}
	eq := func(v string) bool {
		if isTime {
			t, err := time.Parse(time.RFC3339Nano, v)
			return err == nil && t.Equal(val.(time.Time))
		}
		return val.(string) == v
	}
	if !present {
		// SQL NULL: no comparison holds, negated ones included.
		return false, nil
	}
	switch c.Op {
	case "=", "in":
		for _, v := range c.Values {
			if eq(v) {
				return true, nil
			}
		}
		return false, nil
	case "!=", "not in":
		for _, v := range c.Values {
			if eq(v) {
				return false, nil
			}
		}
		return true, nil
	case "like", "not like":
		if isTime || len(c.Values) != 1 {
			return false, fmt.Errorf("field %s: %s: %w", c.Field, c.Op, store.ErrInvalid)
		}
		ok := like(val.(string), c.Values[0])
		return ok == (c.Op == "like"), nil
	default:
		return false, fmt.Errorf("operator %q: %w", c.Op, store.ErrInvalid)
	}
}

// field returns the value of a search field: a string or a time.Time.
func field(name string, b store.Bundle) (v any, present, isTime bool, err error) {
	switch name {
	case "id":
		return b.ID, true, false, nil
	case "name":
		return b.Name, true, false, nil
	case "consumer_name":
		return b.ConsumerName, true, false, nil
	case "source":
		return b.Source, true, false, nil
	case "created_at":
		return b.CreatedAt, true, true, nil
	case "updated_at":
		return b.UpdatedAt, true, true, nil
	}
	if key, ok := strings.CutPrefix(name, "labels."); ok && key != "" {
		v, ok := b.Meta.Labels[key]
		return v, ok, false, nil
	}
	return nil, false, false, fmt.Errorf("field %q: %w", name, store.ErrInvalid)
}

// like reports whether s matches an SQL LIKE pattern (% any run, _ one
// byte, backslash escapes the next byte).
func like(s, pattern string) bool {
	if pattern == "" {
		return s == ""
	}
	switch c := pattern[0]; c {
	case '%':
		for i := 0; i <= len(s); i++ {
			if like(s[i:], pattern[1:]) {
				return true
			}
		}
		return false
	case '_':
		return s != "" && like(s[1:], pattern[1:])
	case '\\':
		if len(pattern) > 1 {
			return s != "" && s[0] == pattern[1] && like(s[1:], pattern[2:])
		}
		return s == "\\"
	default:
		return s != "" && s[0] == c && like(s[1:], pattern[1:])
	}
}
