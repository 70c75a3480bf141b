package cloudevents

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/api/maestro"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/pkg/api"
)

var t0 = time.Date(2026, 11, 25, 17, 0, 0, 123456789, time.UTC)

func sampleReported() api.ReportedStatus {
	str := "20.1.2.3"
	return api.ReportedStatus{
		Conditions: []metav1.Condition{{Type: api.ConditionApplied, Status: metav1.ConditionTrue,
			Reason: "Applied", LastTransitionTime: metav1.NewTime(t0.Truncate(time.Second))}},
		ResourceStatus: []api.ResourceStatus{{
			ResourceMeta: workv1.ManifestResourceMeta{Version: "v1", Kind: "Service", Resource: "services",
				Name: "router", Namespace: "ingress"},
			StatusFeedbacks: workv1.StatusFeedbackResult{Values: []workv1.FeedbackValue{{Name: "ip",
				Value: workv1.FieldValue{Type: workv1.String, String: &str}}}},
			Conditions: []metav1.Condition{{Type: api.ConditionAvailable, Status: metav1.ConditionTrue,
				Reason: "Found", LastTransitionTime: metav1.NewTime(t0.Truncate(time.Second))}},
			Observed: api.Observed{UID: "u-1", ResourceVersion: "42", Generation: 3, Exists: true, ObservedAt: t0},
		}},
	}
}

func sampleSpec(gen int64, deleting bool) *protocol.Spec {
	return &protocol.Spec{
		BundleID: "b-1", Source: "cs", Generation: gen, Deleting: deleting,
		Meta: api.ObjectMeta{Name: "work", Namespace: "c1", Labels: map[string]string{"a": "b"}},
		Body: api.BundleSpec{
			Manifests:    []json.RawMessage{json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`)},
			DeleteOption: &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan},
		},
	}
}

func withIncarnation(s *protocol.Spec, inc string) *protocol.Spec { s.Incarnation = inc; return s }

func TestRoundTrip(t *testing.T) {
	rep := sampleReported()
	tests := map[string]struct {
		msg  protocol.Message
		want string // event type
	}{
		"spec create":          {protocol.Message{Type: protocol.TypeSpec, Consumer: "c1", Spec: sampleSpec(1, false)}, TypeSpecCreate},
		"spec update":          {protocol.Message{Type: protocol.TypeSpec, Consumer: "c1", Spec: sampleSpec(7, false)}, TypeSpecUpdate},
		"spec huge generation": {protocol.Message{Type: protocol.TypeSpec, Consumer: "c1", Spec: sampleSpec(1<<40, false)}, TypeSpecUpdate},
		"spec delete":          {protocol.Message{Type: protocol.TypeSpec, Consumer: "c1", Spec: sampleSpec(8, true)}, TypeSpecDelete},
		"spec incarnation":     {protocol.Message{Type: protocol.TypeSpec, Consumer: "c1", Spec: withIncarnation(sampleSpec(2, false), "i-1")}, TypeSpecUpdate},
		"spec ack":             {protocol.Message{Type: protocol.TypeSpecAck, Consumer: "c1", SpecAck: &protocol.SpecAck{BundleID: "b-1", Generation: 8, Gone: true}}, TypeSpecAck},
		"status": {protocol.Message{Type: protocol.TypeStatus, Consumer: "c1", Status: &protocol.Status{
			BundleID: "b-1", Generation: 7, Epoch: "e1", Revision: 99, Reported: rep,
			Hash: protocol.HashStatus(rep), At: t0}}, TypeStatusUpdate},
		"status deleted": {protocol.Message{Type: protocol.TypeStatus, Consumer: "c1", Status: &protocol.Status{
			BundleID: "b-1", Generation: 8, Epoch: "e1", Revision: 100, Hash: protocol.HashStatus(api.ReportedStatus{}),
			Deleted: true, At: t0}}, TypeStatusUpdate},
		"status ack": {protocol.Message{Type: protocol.TypeStatusAck, Consumer: "c1", StatusAck: &protocol.StatusAck{Epoch: "e1", BundleID: "b-1", Revision: 99}}, TypeStatusAck},
		"hello": {protocol.Message{Type: protocol.TypeHello, Consumer: "c1", Hello: &protocol.Hello{
			Epoch: "e1", Held: map[string]int64{"b-1": 3, "b-2": 5}, Batch: 1, Batches: 2}}, TypeSpecResync},
		"hello incarnations": {protocol.Message{Type: protocol.TypeHello, Consumer: "c1", Hello: &protocol.Hello{
			Epoch: "e1", Held: map[string]int64{"b-1": 3, "b-2": 5}, Incarnations: map[string]string{"b-1": "i-1"}, Batch: 1, Batches: 1}}, TypeSpecResync},
		"hello empty": {protocol.Message{Type: protocol.TypeHello, Consumer: "c1", Hello: &protocol.Hello{
			Epoch: "e2", Held: map[string]int64{}, Batch: 0, Batches: 1}}, TypeSpecResync},
		"heartbeat": {protocol.Message{Type: protocol.TypeHeartbeat, Consumer: "c1", Heartbeat: &protocol.Heartbeat{
			Epoch: "e1", Digest: map[string]string{"b-1": "h1", "b-2": "h2"}, Batch: 0, Batches: 1, At: t0}}, TypeHeartbeat},
		"status request some": {protocol.Message{Type: protocol.TypeStatusRequest, Consumer: "c1",
			StatusRequest: &protocol.StatusRequest{BundleIDs: []string{"b-1", "b-2"}}}, TypeStatusResync},
		"status request all": {protocol.Message{Type: protocol.TypeStatusRequest, Consumer: "c1",
			StatusRequest: &protocol.StatusRequest{}}, TypeStatusResync},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := Encode(tc.msg, "baton", t0)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if e.Type != tc.want {
				t.Fatalf("type = %q; want %q", e.Type, tc.want)
			}
			if IsKeepalive(e) {
				t.Fatalf("IsKeepalive = true for a protocol message")
			}
			if e.Type == TypeStatusUpdate || e.Type == TypeSpecCreate || e.Type == TypeSpecUpdate {
				strictData(t, e)
			}
			got, err := Decode(e)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(norm(t, got), norm(t, tc.msg)) {
				t.Errorf("round trip:\n got %+v\nwant %+v", norm(t, got), norm(t, tc.msg))
			}
		})
	}
}

// norm compares messages through their JSON form (time zones and nil
// versus empty collections do not matter on the wire).
func norm(t *testing.T, m protocol.Message) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDeleteCarriesTimestampAndIdentity(t *testing.T) {
	e, err := Encode(protocol.Message{Type: protocol.TypeSpec, Consumer: "c1", Spec: sampleSpec(8, true)}, "baton", t0)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := e.Timestamp(ExtDeletionTimestamp)
	if err != nil || !ts.Equal(t0) {
		t.Errorf("deletiontimestamp = %v, %v; want %v", ts, err, t0)
	}
	for name, want := range map[string]any{ExtResourceID: "b-1", ExtResourceVersion: int32(8), ExtClusterName: "c1", ExtOriginalSource: "cs"} {
		if got := e.Ext[name]; got != want {
			t.Errorf("extension %s = %#v; want %#v", name, got, want)
		}
	}
}

func TestKeepalive(t *testing.T) {
	if !IsKeepalive(Event{Type: TypeHeartbeat}) {
		t.Error("bare heartbeat is not a keepalive")
	}
	e, _ := Encode(protocol.Message{Type: protocol.TypeHeartbeat, Heartbeat: &protocol.Heartbeat{Epoch: "e"}}, "a", t0)
	if IsKeepalive(e) {
		t.Error("agent heartbeat taken for a keepalive")
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := map[string]Event{
		"unknown type":       {Type: "x.y"},
		"spec without id":    {Type: TypeSpecUpdate, Ext: map[string]any{ExtClusterName: "c1"}},
		"bad data":           {Type: TypeSpecUpdate, Ext: map[string]any{ExtResourceID: "b"}, Data: []byte("{")},
		"bad version":        {Type: TypeSpecAck, Ext: map[string]any{ExtResourceID: "b", ExtResourceVersion: "x"}},
		"bool of wrong type": {Type: TypeSpecAck, Ext: map[string]any{ExtResourceID: "b", ExtGone: int32(1)}},
		"bad metadata":       {Type: TypeSpecCreate, Ext: map[string]any{ExtResourceID: "b", ExtMetadata: "{"}},
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(e); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode error = %v; want ErrMalformed", err)
			}
		})
	}
	if _, err := Encode(protocol.Message{Type: protocol.TypeSpec}, "s", t0); !errors.Is(err, ErrMalformed) {
		t.Errorf("Encode of empty spec: %v; want ErrMalformed", err)
	}
}

// strictData decodes a spec or status event's data with OCM's payload types
// and unknown fields disallowed, as a strict Maestro peer would.
func strictData(t *testing.T, e Event) {
	t.Helper()
	var out any = &maestro.ManifestBundle{}
	if e.Type == TypeStatusUpdate {
		out = &maestro.ManifestBundleStatus{}
	}
	d := json.NewDecoder(bytes.NewReader(e.Data))
	d.DisallowUnknownFields()
	if err := d.Decode(out); err != nil {
		t.Fatalf("%s data %s: a strict peer rejects it: %v", e.Type, e.Data, err)
	}
}
