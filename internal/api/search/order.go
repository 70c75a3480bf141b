package search

import (
	"fmt"
	"strings"

	"github.com/baton-dev/baton/internal/store"
)

// MaxOrderTerms bounds the terms of one orderBy.
const MaxOrderTerms = 8

// OrderError is a bad orderBy parameter.
type OrderError struct {
	Term string // the offending term as given
	Msg  string
}

func (e *OrderError) Error() string { return fmt.Sprintf("orderBy: %q: %s", e.Term, e.Msg) }

// ParseOrder parses an orderBy parameter such as "created_at desc, name"
// into order terms. Label fields cannot be ordered by. An empty parameter
// yields nil (the store's default order).
func ParseOrder(s string, fields Fields) ([]store.Order, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxOrderTerms {
		return nil, &OrderError{Term: s, Msg: fmt.Sprintf("more than %d terms", MaxOrderTerms)}
	}
	out := make([]store.Order, 0, len(parts))
	seen := map[string]bool{}
	for _, part := range parts {
		words := strings.Fields(part)
		if len(words) == 0 || len(words) > 2 {
			return nil, &OrderError{Term: strings.TrimSpace(part), Msg: `want "<field>" or "<field> asc|desc"`}
		}
		field := strings.ToLower(words[0])
		if !fields[field] || strings.HasPrefix(field, "labels.") {
			return nil, &OrderError{Term: words[0], Msg: fmt.Sprintf("unknown field (allowed: %s)", orderNames(fields))}
		}
		if seen[field] {
			return nil, &OrderError{Term: words[0], Msg: "field appears twice"}
		}
		seen[field] = true
		o := store.Order{Field: field}
		if len(words) == 2 {
			switch strings.ToLower(words[1]) {
			case "asc":
			case "desc":
				o.Desc = true
			default:
				return nil, &OrderError{Term: strings.TrimSpace(part), Msg: fmt.Sprintf("direction %q is not asc or desc", words[1])}
			}
		}
		out = append(out, o)
	}
	return out, nil
}

func orderNames(f Fields) string {
	var out []string
	for _, n := range []string{"id", "name", "consumer_name", "source", "created_at", "updated_at"} {
		if f[n] {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}
