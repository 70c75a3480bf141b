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
// and labels.<key> reading the bundle's metadata labels, a missing label
// reading as the empty string.
func Match(f store.Filter, b store.Bundle) (bool, error) {
	switch f := f.(type) {
	case nil:
		return true, nil
	case store.Cmp:
		return evalCmp(f, b)
	case *store.Cmp:
		return evalCmp(*f, b)
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
	default:
		return false, fmt.Errorf("filter %T: %w", f, store.ErrInvalid)
	}
}

func evalCmp(c store.Cmp, b store.Bundle) (bool, error) {
	if c.Op == store.OpExists {
		key, ok := strings.CutPrefix(c.Field, "labels.")
		if !ok || key == "" || len(c.Values) != 0 {
			return false, fmt.Errorf("field %s: %s: %w", c.Field, c.Op, store.ErrInvalid)
		}
		_, has := b.Meta.Labels[key]
		return has, nil
	}
	val, err := field(c.Field, b)
	if err != nil {
		return false, err
	}
	op := strings.ToLower(strings.Join(strings.Fields(c.Op), " "))
	_, isTime := val.(time.Time)
	if strings.HasSuffix(op, "like") && isTime {
		return false, fmt.Errorf("field %s: %s on a time: %w", c.Field, c.Op, store.ErrInvalid)
	}
	if len(c.Values) == 0 || (op != "in" && op != "not in" && len(c.Values) != 1) {
		return false, fmt.Errorf("field %s: %s: %d values: %w", c.Field, c.Op, len(c.Values), store.ErrInvalid)
	}
	cmps := make([]int, len(c.Values))
	for i, v := range c.Values {
		if cmps[i], err = compare(val, v); err != nil {
			return false, fmt.Errorf("field %s: %w", c.Field, err)
		}
	}
	switch op {
	case "=", "in":
		for _, r := range cmps {
			if r == 0 {
				return true, nil
			}
		}
		return false, nil
	case "!=", "<>", "not in":
		for _, r := range cmps {
			if r == 0 {
				return false, nil
			}
		}
		return true, nil
	case "<":
		return cmps[0] < 0, nil
	case "<=":
		return cmps[0] <= 0, nil
	case ">":
		return cmps[0] > 0, nil
	case ">=":
		return cmps[0] >= 0, nil
	case "like":
		return like(val.(string), c.Values[0]), nil
	case "not like":
		return !like(val.(string), c.Values[0]), nil
	default:
		return false, fmt.Errorf("operator %q: %w", c.Op, store.ErrInvalid)
	}
}

// compare orders a field value against a filter value.
func compare(val any, v string) (int, error) {
	switch val := val.(type) {
	case time.Time:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, fmt.Errorf("time %q: %w", v, store.ErrInvalid)
		}
		return val.Compare(t), nil
	default:
		return strings.Compare(val.(string), v), nil
	}
}

// field returns the value of a search field: a string or a time.Time.
func field(name string, b store.Bundle) (any, error) {
	switch name {
	case "id":
		return b.ID, nil
	case "name":
		return b.Name, nil
	case "consumer_name":
		return b.ConsumerName, nil
	case "source":
		return b.Source, nil
	case "created_at":
		return b.CreatedAt, nil
	case "updated_at":
		return b.UpdatedAt, nil
	}
	if key, ok := strings.CutPrefix(name, "labels."); ok && key != "" {
		return b.Meta.Labels[key], nil
	}
	return nil, fmt.Errorf("field %q: %w", name, store.ErrInvalid)
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
