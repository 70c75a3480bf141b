package mqtt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
)

// ContentType is the MQTT content type of every payload: one CloudEvent in
// the CloudEvents JSON structured format.
const ContentType = "application/cloudevents+json"

const (
	specVersion     = "1.0"
	jsonContentType = "application/json"
)

// context attributes that are not extensions.
var contextAttrs = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "time": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "data": true, "data_base64": true,
}

// MarshalEvent encodes e in the CloudEvents JSON format. An empty ID gets a
// fresh UUID. Data that is valid JSON is embedded as "data" with content
// type application/json, anything else goes to "data_base64".
func MarshalEvent(e ce.Event) ([]byte, error) {
	obj := make(map[string]any, len(e.Ext)+7)
	for name, v := range e.Ext {
		if contextAttrs[name] {
			return nil, fmt.Errorf("event %s: extension %s: reserved name: %w", e.Type, name, ce.ErrMalformed)
		}
		switch x := v.(type) {
		case string, int32, bool:
			obj[name] = x
		case time.Time:
			obj[name] = x.UTC().Format(time.RFC3339Nano)
		default:
			return nil, fmt.Errorf("event %s: extension %s: unsupported value type %T: %w", e.Type, name, v, ce.ErrMalformed)
		}
	}
	id := e.ID
	if id == "" {
		id = uuid.NewString()
	}
	obj["specversion"], obj["id"], obj["source"], obj["type"] = specVersion, id, e.Source, e.Type
	if !e.Time.IsZero() {
		obj["time"] = e.Time.UTC().Format(time.RFC3339Nano)
	}
	if e.Data != nil {
		if json.Valid(e.Data) {
			obj["datacontenttype"] = jsonContentType
			obj["data"] = json.RawMessage(e.Data)
		} else {
			obj["data_base64"] = base64.StdEncoding.EncodeToString(e.Data)
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("event %s: encode: %w", e.Type, err)
	}
	return b, nil
}

// UnmarshalEvent decodes one CloudEvent in the JSON format. Extension
// values become string, int32 (a JSON number that is an integer in 32
// bits), a decimal string (a larger integer) or bool; the cloudevents
// accessors read timestamps from their RFC 3339 strings.
func UnmarshalEvent(b []byte) (ce.Event, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return ce.Event{}, fmt.Errorf("event: %v: %w", err, ce.ErrMalformed)
	}
	var e ce.Event
	var sv string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"specversion", &sv}, {"id", &e.ID}, {"source", &e.Source}, {"type", &e.Type}} {
		if err := stringAttr(raw, f.name, f.dst); err != nil {
			return ce.Event{}, err
		}
	}
	if sv != specVersion {
		return ce.Event{}, fmt.Errorf("event %s: specversion %q: unsupported: %w", e.Type, sv, ce.ErrMalformed)
	}
	if e.Type == "" {
		return ce.Event{}, fmt.Errorf("event: type: missing: %w", ce.ErrMalformed)
	}
	if _, ok := raw["time"]; ok {
		var ts string
		if err := stringAttr(raw, "time", &ts); err != nil {
			return ce.Event{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return ce.Event{}, fmt.Errorf("event %s: time %q: %w", e.Type, ts, ce.ErrMalformed)
		}
		e.Time = t
	}
	if d, ok := raw["data_base64"]; ok {
		var s string
		if err := json.Unmarshal(d, &s); err != nil {
			return ce.Event{}, fmt.Errorf("event %s: data_base64: %v: %w", e.Type, err, ce.ErrMalformed)
		}
		data, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return ce.Event{}, fmt.Errorf("event %s: data_base64: %v: %w", e.Type, err, ce.ErrMalformed)
		}
		e.Data = data
	} else if d, ok := raw["data"]; ok && !bytes.Equal(d, []byte("null")) {
		e.Data = []byte(d)
	}
	for name, v := range raw {
		if contextAttrs[name] {
			continue
		}
		x, err := extValue(v)
		if err != nil {
			return ce.Event{}, fmt.Errorf("event %s: extension %s: %w", e.Type, name, err)
		}
		if x != nil {
			if e.Ext == nil {
				e.Ext = map[string]any{}
			}
			e.Ext[name] = x
		}
	}
	return e, nil
}

func stringAttr(raw map[string]json.RawMessage, name string, dst *string) error {
	v, ok := raw[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("event: %s: not a string: %w", name, ce.ErrMalformed)
	}
	return nil
}

// extValue converts a JSON extension value; null is nil.
func extValue(v json.RawMessage) (any, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil, fmt.Errorf("empty value: %w", ce.ErrMalformed)
	}
	switch c := v[0]; {
	case c == 'n':
		return nil, nil
	case c == '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("%v: %w", err, ce.ErrMalformed)
		}
		return s, nil
	case c == 't' || c == 'f':
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return nil, fmt.Errorf("%v: %w", err, ce.ErrMalformed)
		}
		return b, nil
	case c == '-' || (c >= '0' && c <= '9'):
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return valueOfInt(n), nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return nil, fmt.Errorf("number %s is not an integer: %w", v, ce.ErrMalformed)
		}
		return valueOfInt(int64(f)), nil
	}
	return nil, fmt.Errorf("value %.20s: not a string, integer or boolean: %w", v, ce.ErrMalformed)
}

// valueOfInt is an Integer when n fits in 32 bits, else its decimal
// string (as package cloudevents writes large integers).
func valueOfInt(n int64) any {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		return int32(n)
	}
	return strconv.FormatInt(n, 10)
}

// EncodeMessage is m as the MQTT transport carries it: a CloudEvent in the
// JSON format with the given source attribute.
func EncodeMessage(m protocol.Message, source string, now time.Time) ([]byte, error) {
	e, err := ce.Encode(m, source, now)
	if err != nil {
		return nil, err
	}
	return MarshalEvent(e)
}
