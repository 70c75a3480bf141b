package cloudevents

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Event is a transport-neutral CloudEvent: the context attributes baton uses,
// its extensions, and JSON data. Extension values are string, int32, bool or
// time.Time, the CloudEvents types every format can carry.
type Event struct {
	ID     string
	Source string
	Type   string
	Time   time.Time
	// Ext holds the extension attributes by (lower-case) name.
	Ext map[string]any
	// Data is the JSON payload; nil when the event carries none.
	Data []byte
}

// ErrMalformed is returned (wrapped) for an event that lacks a required
// attribute or carries one of the wrong type or a payload that does not parse.
var ErrMalformed = errors.New("malformed cloudevent")

func (e *Event) set(name string, v any) {
	if e.Ext == nil {
		e.Ext = map[string]any{}
	}
	e.Ext[name] = v
}

// setInt stores an integer as a CloudEvents Integer when it fits in 32 bits
// and as its decimal string otherwise.
func (e *Event) setInt(name string, v int64) {
	if v >= -1<<31 && v < 1<<31 {
		e.set(name, int32(v))
		return
	}
	e.set(name, strconv.FormatInt(v, 10))
}

// String returns a string extension; missing is "".
func (e Event) String(name string) (string, error) {
	v, ok := e.Ext[name]
	if !ok {
		return "", nil
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	}
	return "", fmt.Errorf("extension %s: %T is not a string: %w", name, v, ErrMalformed)
}

func (e Event) mustString(name string) (string, error) {
	s, err := e.String(name)
	if err == nil && s == "" {
		err = fmt.Errorf("extension %s: missing: %w", name, ErrMalformed)
	}
	return s, err
}

// Int returns an integer extension, accepting an Integer or a decimal string;
// missing is 0.
func (e Event) Int(name string) (int64, error) {
	v, ok := e.Ext[name]
	if !ok {
		return 0, nil
	}
	switch x := v.(type) {
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("extension %s: %q: %w", name, x, ErrMalformed)
		}
		return n, nil
	}
	return 0, fmt.Errorf("extension %s: %T is not an integer: %w", name, v, ErrMalformed)
}

// Bool returns a boolean extension, accepting a Boolean or "true"/"false";
// missing is false.
func (e Event) Bool(name string) (bool, error) {
	v, ok := e.Ext[name]
	if !ok {
		return false, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		b, err := strconv.ParseBool(x)
		if err != nil {
			return false, fmt.Errorf("extension %s: %q: %w", name, x, ErrMalformed)
		}
		return b, nil
	}
	return false, fmt.Errorf("extension %s: %T is not a boolean: %w", name, v, ErrMalformed)
}

// Timestamp returns a time extension, accepting a Timestamp or an RFC 3339
// string; missing is the zero time.
func (e Event) Timestamp(name string) (time.Time, error) {
	v, ok := e.Ext[name]
	if !ok {
		return time.Time{}, nil
	}
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, fmt.Errorf("extension %s: %q: %w", name, x, ErrMalformed)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("extension %s: %T is not a timestamp: %w", name, v, ErrMalformed)
}

// Has reports whether the extension is present.
func (e Event) Has(name string) bool { _, ok := e.Ext[name]; return ok }
