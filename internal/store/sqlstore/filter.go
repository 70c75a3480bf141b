package sqlstore

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

// fieldKind tells how filter values of a field are bound.
type fieldKind int

const (
	kindText fieldKind = iota
	kindTime
)

// field is a whitelisted filter or order field: its column and kind.
type field struct {
	col  string
	kind fieldKind
}

var bundleFields = map[string]field{
	"id":            {"b.id", kindText},
	"name":          {"b.name", kindText},
	"consumer_name": {"b.consumer_name", kindText},
	"source":        {"b.source", kindText},
	"created_at":    {"b.created_at", kindTime},
	"updated_at":    {"b.updated_at", kindTime},
}

var consumerFields = map[string]field{
	"id":         {"c.id", kindText},
	"name":       {"c.name", kindText},
	"created_at": {"c.created_at", kindTime},
	"updated_at": {"c.updated_at", kindTime},
}

// labelKey accepts Kubernetes label keys (optional DNS prefix, then a name).
var labelKey = regexp.MustCompile(`^([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$`)

// listQuery holds the SQL clauses of a list: " WHERE …", " ORDER BY …",
// " LIMIT … OFFSET …", and the arguments of the WHERE clause.
type listQuery struct {
	where, order, limit string
	args                []any
	offset              int
	paged               bool
}

// empty reports that the requested page lies beyond total matches.
func (q listQuery) empty(total int) bool { return q.paged && q.offset >= total }

// buildList translates opts into SQL. Every value is a bound parameter;
// field names go through the whitelist fields (plus labels.<key> read from
// the JSON column labelsCol); anything else is ErrInvalid. Size <= 0 means
// no limit; Page counts from 1 (0 is read as 1).
func buildList(d *dialect, fields map[string]field, labelsCol string, opts store.ListOptions) (listQuery, error) {
	var q listQuery
	b := filterBuilder{d: d, fields: fields, labelsCol: labelsCol}
	if opts.Filter != nil {
		var sb strings.Builder
		if err := b.build(&sb, opts.Filter); err != nil {
			return q, err
		}
		q.where = " WHERE (" + sb.String() + ")"
		q.args = b.args
	}
	order, err := b.orderBy(opts.OrderBy)
	if err != nil {
		return q, err
	}
	q.order = order
	if opts.Page < 0 {
		return q, fmt.Errorf("page %d: %w", opts.Page, store.ErrInvalid)
	}
	if opts.Size > 0 {
		page := max(opts.Page, 1)
		q.paged = true
		q.offset = (page - 1) * opts.Size
		// Integers from the program, not from the client's text: safe to inline.
		q.limit = " LIMIT " + strconv.Itoa(opts.Size) + " OFFSET " + strconv.Itoa(q.offset)
	}
	return q, nil
}

type filterBuilder struct {
	d         *dialect
	fields    map[string]field
	labelsCol string
	args      []any
}

func (b *filterBuilder) build(sb *strings.Builder, f store.Filter) error {
	switch f := f.(type) {
	case store.Cmp:
		return b.cmp(sb, f)
	case *store.Cmp:
		if f == nil {
			return fmt.Errorf("nil filter: %w", store.ErrInvalid)
		}
		return b.cmp(sb, *f)
	case store.And:
		return b.join(sb, []store.Filter(f), " AND ", "1=1")
	case store.Or:
		return b.join(sb, []store.Filter(f), " OR ", "1=0")
	case store.Not:
		if f.F == nil {
			return fmt.Errorf("empty not: %w", store.ErrInvalid)
		}
		sb.WriteString("NOT (")
		if err := b.build(sb, f.F); err != nil {
			return err
		}
		sb.WriteString(")")
		return nil
	default:
		return fmt.Errorf("filter %T: %w", f, store.ErrInvalid)
	}
}

func (b *filterBuilder) join(sb *strings.Builder, fs []store.Filter, sep, empty string) error {
	if len(fs) == 0 {
		sb.WriteString(empty)
		return nil
	}
	for i, f := range fs {
		if f == nil {
			return fmt.Errorf("nil filter: %w", store.ErrInvalid)
		}
		if i > 0 {
			sb.WriteString(sep)
		}
		sb.WriteString("(")
		if err := b.build(sb, f); err != nil {
			return err
		}
		sb.WriteString(")")
	}
	return nil
}

// column resolves a field name to its SQL expression, binding the label key
// when it reads a label.
func (b *filterBuilder) column(name string) (string, fieldKind, error) {
	if f, ok := b.fields[name]; ok {
		return f.col, f.kind, nil
	}
	if key, ok := strings.CutPrefix(name, "labels."); ok {
		if len(key) > 317 || !labelKey.MatchString(key) {
			return "", 0, fmt.Errorf("label key %q: %w", key, store.ErrInvalid)
		}
		expr, arg := b.d.labelExpr(b.labelsCol, key)
		b.args = append(b.args, arg)
		return expr, kindText, nil
	}
	return "", 0, fmt.Errorf("unknown field %q: %w", name, store.ErrInvalid)
}

var singleOps = map[string]string{
	"=": "=", "!=": "<>", "<>": "<>",
	"<": "<", "<=": "<=", ">": ">", ">=": ">=",
	"like": "LIKE", "not like": "NOT LIKE",
}

// labelTest writes the index-friendly forms of label comparisons: presence
// (store.OpExists) and, where the dialect has one, equality with a
// non-empty value. It reports whether it wrote c.
func (b *filterBuilder) labelTest(sb *strings.Builder, c store.Cmp, op string) (bool, error) {
	key, ok := strings.CutPrefix(c.Field, "labels.")
	if !ok {
		if op == store.OpExists {
			return false, fmt.Errorf("field %q: %s applies to labels only: %w", c.Field, op, store.ErrInvalid)
		}
		return false, nil
	}
	if len(key) > 317 || !labelKey.MatchString(key) {
		return false, fmt.Errorf("label key %q: %w", key, store.ErrInvalid)
	}
	switch {
	case op == store.OpExists:
		if len(c.Values) != 0 {
			return false, fmt.Errorf("field %q: %s takes no values: %w", c.Field, op, store.ErrInvalid)
		}
		expr, arg := b.d.labelHas(b.labelsCol, key)
		b.args = append(b.args, arg)
		sb.WriteString(expr)
		return true, nil
	case op == "=" && b.d.labelEq != nil && len(c.Values) == 1 && c.Values[0] != "":
		b.args = append(b.args, key, c.Values[0])
		sb.WriteString(b.d.labelEq(b.labelsCol))
		return true, nil
	}
	return false, nil
}

func (b *filterBuilder) cmp(sb *strings.Builder, c store.Cmp) error {
	op := strings.ToLower(strings.Join(strings.Fields(c.Op), " "))
	if done, err := b.labelTest(sb, c, op); done || err != nil {
		return err
	}
	sqlOp, single := singleOps[op]
	if !single && op != "in" && op != "not in" {
		return fmt.Errorf("operator %q: %w", c.Op, store.ErrInvalid)
	}
	col, kind, err := b.column(c.Field)
	if err != nil {
		return err
	}
	if kind == kindTime && strings.Contains(op, "like") {
		return fmt.Errorf("field %q: operator %q on a time: %w", c.Field, c.Op, store.ErrInvalid)
	}
	if single && len(c.Values) != 1 {
		return fmt.Errorf("field %q: operator %q takes one value, got %d: %w", c.Field, c.Op, len(c.Values), store.ErrInvalid)
	}
	if !single && len(c.Values) == 0 {
		return fmt.Errorf("field %q: operator %q needs values: %w", c.Field, c.Op, store.ErrInvalid)
	}
	for _, v := range c.Values {
		arg, err := value(kind, c.Field, v)
		if err != nil {
			return err
		}
		b.args = append(b.args, arg)
	}
	sb.WriteString(col)
	switch {
	case single:
		sb.WriteString(" " + sqlOp + " ?")
		if strings.Contains(op, "like") {
			sb.WriteString(` ESCAPE '\'`)
		}
	case op == "in":
		sb.WriteString(" IN (" + placeholders(len(c.Values)) + ")")
	default:
		sb.WriteString(" NOT IN (" + placeholders(len(c.Values)) + ")")
	}
	return nil
}

// value converts a filter value for binding: times are parsed (RFC 3339 or
// a date), text is bound as is.
func value(kind fieldKind, name, v string) (any, error) {
	if kind != kindTime {
		return v, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return norm(t), nil
		}
	}
	return nil, fmt.Errorf("field %q: %q is not a time: %w", name, v, store.ErrInvalid)
}

// orderBy builds the ORDER BY clause; id always ends it, for a stable order.
func (b *filterBuilder) orderBy(orders []store.Order) (string, error) {
	if len(orders) == 0 {
		orders = []store.Order{{Field: "created_at"}}
	}
	var sb strings.Builder
	sb.WriteString(" ORDER BY ")
	hasID := false
	for i, o := range orders {
		f, ok := b.fields[o.Field]
		if !ok {
			return "", fmt.Errorf("order by %q: %w", o.Field, store.ErrInvalid)
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(f.col)
		if o.Desc {
			sb.WriteString(" DESC")
		}
		hasID = hasID || o.Field == "id"
	}
	if !hasID {
		sb.WriteString(", " + b.fields["id"].col)
	}
	return sb.String(), nil
}
