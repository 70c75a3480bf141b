package mqtt

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	cesdk "github.com/cloudevents/sdk-go/v2/event"

	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/pkg/api"
)

var t0 = time.Date(2026, 11, 26, 4, 0, 0, 123456789, time.UTC)

// everyMessage returns one message of every type (three kinds of Spec),
// from consumer.
func everyMessage(consumer string) []protocol.Message {
	meta := api.ObjectMeta{Labels: map[string]string{"app": "web"}}
	body := api.BundleSpec{Manifests: []json.RawMessage{
		json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","namespace":"default"}}`)}}
	reported := api.ReportedStatus{}
	if err := json.Unmarshal([]byte(`{"conditions":[{"type":"Applied","status":"True","reason":"Applied",
		"message":"ok","lastTransitionTime":"2026-11-26T04:00:00Z"}]}`), &reported); err != nil {
		panic(err)
	}
	msgs := []protocol.Message{
		{Type: protocol.TypeSpec, Spec: &protocol.Spec{BundleID: "b1", Source: "maestro", Generation: 1, Meta: meta, Body: body}},
		{Type: protocol.TypeSpec, Spec: &protocol.Spec{BundleID: "b1", Generation: 5_000_000_000, Meta: meta, Body: body}},
		{Type: protocol.TypeSpec, Spec: &protocol.Spec{BundleID: "b1", Generation: 6, Deleting: true, Meta: meta, Body: body}},
		{Type: protocol.TypeSpecAck, SpecAck: &protocol.SpecAck{BundleID: "b1", Generation: 6, Gone: true}},
		{Type: protocol.TypeStatus, Status: &protocol.Status{BundleID: "b1", Generation: 6, Epoch: "e1", Revision: 7,
			Reported: reported, Hash: protocol.HashStatus(reported), Deleted: true, At: t0}},
		{Type: protocol.TypeStatusAck, StatusAck: &protocol.StatusAck{Epoch: "e1", BundleID: "b1", Revision: 7}},
		{Type: protocol.TypeHello, Hello: &protocol.Hello{Epoch: "e1", Held: map[string]int64{"b1": 6, "b2": 1}, Batch: 1, Batches: 2}},
		{Type: protocol.TypeHeartbeat, Heartbeat: &protocol.Heartbeat{Epoch: "e1", Digest: map[string]string{"b1": "h1"},
			Batch: 0, Batches: 1, At: t0}},
		{Type: protocol.TypeStatusRequest, StatusRequest: &protocol.StatusRequest{BundleIDs: []string{"b1", "b2"}}},
	}
	for i := range msgs {
		msgs[i].Consumer = consumer
	}
	return msgs
}

// viaCodec is what the transport-neutral codec alone makes of m: what any
// transport must deliver.
func viaCodec(t *testing.T, m protocol.Message) protocol.Message {
	t.Helper()
	e, err := ce.Encode(m, "test", t0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ce.Decode(e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJSONRoundTripEveryMessage(t *testing.T) {
	for _, m := range everyMessage("c1") {
		e, err := ce.Encode(m, "baton", t0)
		if err != nil {
			t.Fatal(err)
		}
		e.ID = "id-1"
		b, err := MarshalEvent(e)
		if err != nil {
			t.Fatalf("%s: marshal: %v", m.Type, err)
		}
		back, err := UnmarshalEvent(b)
		if err != nil {
			t.Fatalf("%s: unmarshal %s: %v", m.Type, b, err)
		}
		if back.ID != "id-1" || back.Source != "baton" || back.Type != e.Type || !back.Time.Equal(e.Time) {
			t.Errorf("%s: context attributes: got %+v; want id-1, baton, %s, %v", m.Type, back, e.Type, e.Time)
		}
		got, err := ce.Decode(back)
		if err != nil {
			t.Fatalf("%s: decode: %v", m.Type, err)
		}
		if want := viaCodec(t, m); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip:\n got %+v\nwant %+v", m.Type, got, want)
		}
	}
}

func TestJSONExtensionTypes(t *testing.T) {
	e := ce.Event{Source: "s", Type: "t", Ext: map[string]any{"small": int32(-5), "str": "x", "flag": true,
		"big": "9000000000", "when": t0}}
	b, err := MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"small":-5`) || !strings.Contains(string(b), `"flag":true`) ||
		!strings.Contains(string(b), `"when":"2026-11-26T04:00:00.123456789Z"`) {
		t.Errorf("encoding: got %s; want integer, boolean and RFC 3339 string values", b)
	}
	back, err := UnmarshalEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := back.Int("small"); err != nil || n != -5 {
		t.Errorf("small: got %d, %v; want -5", n, err)
	}
	if n, err := back.Int("big"); err != nil || n != 9_000_000_000 {
		t.Errorf("big: got %d, %v; want 9000000000", n, err)
	}
	if v, err := back.Bool("flag"); err != nil || !v {
		t.Errorf("flag: got %v, %v; want true", v, err)
	}
	if ts, err := back.Timestamp("when"); err != nil || !ts.Equal(t0) {
		t.Errorf("when: got %v, %v; want %v", ts, err, t0)
	}
	if _, err := MarshalEvent(ce.Event{Type: "t", Ext: map[string]any{"x": 1.5}}); !errors.Is(err, ce.ErrMalformed) {
		t.Errorf("float extension: got %v; want ErrMalformed", err)
	}
	if _, err := MarshalEvent(ce.Event{Type: "t", Ext: map[string]any{"data": "x"}}); !errors.Is(err, ce.ErrMalformed) {
		t.Errorf("extension named data: got %v; want ErrMalformed", err)
	}
}

func TestJSONRejectsMalformed(t *testing.T) {
	for _, in := range []string{
		`not json`,
		`{"specversion":"0.3","id":"1","source":"s","type":"t"}`,
		`{"specversion":"1.0","id":"1","source":"s"}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday"}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","x":{"nested":1}}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","x":1.5}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"%%%"}`,
	} {
		if _, err := UnmarshalEvent([]byte(in)); !errors.Is(err, ce.ErrMalformed) {
			t.Errorf("UnmarshalEvent(%s): got %v; want ErrMalformed", in, err)
		}
	}
}

// The payload is the CloudEvents JSON format as the CloudEvents Go SDK
// (what Maestro and OCM clients use) reads and writes it.
func TestJSONInteropWithSDK(t *testing.T) {
	m := everyMessage("c1")[4] // a Status: integers, strings, booleans, data, time
	e, err := ce.Encode(m, "baton", t0)
	if err != nil {
		t.Fatal(err)
	}
	e.ID = "id-7"
	b, err := MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	var sdk cesdk.Event
	if err := json.Unmarshal(b, &sdk); err != nil {
		t.Fatalf("sdk reads %s: %v", b, err)
	}
	if err := sdk.Validate(); err != nil {
		t.Fatalf("sdk validates: %v", err)
	}
	if sdk.ID() != "id-7" || sdk.Type() != ce.TypeStatusUpdate || sdk.Source() != "baton" || !sdk.Time().Equal(t0) ||
		sdk.DataContentType() != "application/json" {
		t.Errorf("sdk context: got %s", sdk.String())
	}
	if got := sdk.Extensions()[ce.ExtResourceID]; got != "b1" {
		t.Errorf("sdk resourceid: got %v; want b1", got)
	}
	var reported api.ReportedStatus
	if err := sdk.DataAs(&reported); err != nil || !reflect.DeepEqual(reported, m.Status.Reported) {
		t.Errorf("sdk data: got %+v, %v; want %+v", reported, err, m.Status.Reported)
	}

	// And the other way: an event the SDK wrote decodes to the message.
	out := cesdk.New()
	out.SetID("id-8")
	out.SetSource("maestro-agent")
	out.SetType(ce.TypeSpecAck)
	out.SetTime(t0)
	out.SetExtension(ce.ExtClusterName, "c1")
	out.SetExtension(ce.ExtResourceID, "b9")
	out.SetExtension(ce.ExtResourceVersion, 12)
	b, err = json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalEvent(b)
	if err != nil {
		t.Fatalf("UnmarshalEvent(%s): %v", b, err)
	}
	got, err := ce.Decode(back)
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.Message{Type: protocol.TypeSpecAck, Consumer: "c1", SpecAck: &protocol.SpecAck{BundleID: "b9", Generation: 12}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("from the sdk: got %+v; want %+v", got, want)
	}
}
