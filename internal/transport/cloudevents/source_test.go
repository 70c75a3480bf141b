package cloudevents

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/api/maestro"
	"github.com/baton-dev/baton/pkg/api"
)

func TestSpecRequestRoundTrip(t *testing.T) {
	spec := sampleSpec(1, false)
	tests := map[string]SpecRequest{
		"create": {Action: ActionCreate, BundleID: "b-1", Consumer: "c1", Source: "cs", Meta: spec.Meta, Spec: spec.Body},
		"update": {Action: ActionUpdate, BundleID: "b-1", Consumer: "c1", Source: "cs", Version: 3, Meta: spec.Meta, Spec: spec.Body},
		"delete": {Action: ActionDelete, BundleID: "b-1", Consumer: "c1", Source: "cs", Meta: spec.Meta, DeletionTimestamp: t0},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			e, err := EncodeSpecRequest(r, t0)
			if err != nil {
				t.Fatal(err)
			}
			if r.Action == ActionDelete && e.Data != nil {
				t.Errorf("delete request carries data %s", e.Data)
			}
			got, err := DecodeSpecRequest(e)
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(r)
			if string(gb) != string(wb) {
				t.Errorf("round trip:\n got %s\nwant %s", gb, wb)
			}
		})
	}
}

// A create request as an sdk-go source client sends it: the metadata
// extension is a whole work ObjectMeta and the data has fields baton ignores.
func TestDecodeSDKCreate(t *testing.T) {
	e := Event{Source: "maestro-client", Type: TypeSpecCreate, Ext: map[string]any{
		ExtResourceID: "55c61e54", ExtResourceVersion: int32(0), ExtClusterName: "mgmt-1",
		ExtOriginalSource: "", "logtracing": "{}",
		ExtMetadata: `{"name":"shared-ingress","namespace":"mgmt-1","uid":"55c61e54","resourceVersion":"0","creationTimestamp":null,"labels":{"x":"y"}}`,
	}, Data: []byte(`{"manifests":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"router"}}],
		"deleteOption":{"propagationPolicy":"Orphan"},"executer":{"subject":{"type":"ServiceAccount"}}}`)}
	r, err := DecodeSpecRequest(e)
	if err != nil {
		t.Fatal(err)
	}
	if r.BundleID != "55c61e54" || r.Consumer != "mgmt-1" || r.Source != "maestro-client" || r.Version != 0 {
		t.Errorf("identity = %+v", r)
	}
	if r.Meta.Name != "shared-ingress" || r.Meta.Labels["x"] != "y" {
		t.Errorf("meta = %+v", r.Meta)
	}
	if len(r.Spec.Manifests) != 1 || r.Spec.DeleteOption.PropagationPolicy != workv1.DeletePropagationPolicyTypeOrphan {
		t.Errorf("spec = %+v", r.Spec)
	}
}

func TestSourceStatusRoundTrip(t *testing.T) {
	created := metav1.NewTime(t0.Add(-time.Hour).Truncate(time.Second))
	spec := api.BundleSpec{Manifests: []json.RawMessage{json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`)}}
	s := SourceStatus{BundleID: "b-1", Consumer: "c1", Generation: 4, SequenceID: "2000808179721572352",
		Meta: api.ObjectMeta{Name: "work", CreationTimestamp: &created}, Reported: sampleReported(), Spec: &spec}
	e, err := EncodeSourceStatus(s, "baton", t0)
	if err != nil {
		t.Fatal(err)
	}
	// A strict client (sdk-go's payload types, unknown fields disallowed)
	// accepts the data and the metadata extension.
	var strict maestro.ManifestBundleStatus
	dec := json.NewDecoder(bytes.NewReader(e.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&strict); err != nil {
		t.Fatalf("strict decode of %s: %v", e.Data, err)
	}
	if strict.ManifestBundle == nil || len(strict.ManifestBundle.Manifests) != 1 || len(strict.ResourceStatus) != 1 {
		t.Errorf("strict data = %+v; want the spec and the resource status", strict)
	}
	var meta metav1.ObjectMeta
	dec = json.NewDecoder(strings.NewReader(e.Ext[ExtMetadata].(string)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&meta); err != nil || !meta.CreationTimestamp.Equal(&created) {
		t.Errorf("metadata %v: %v; want creationTimestamp %v", e.Ext[ExtMetadata], err, created)
	}
	got, err := DecodeSourceStatus(e)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Reported.ResourceStatus {
		s.Reported.ResourceStatus[i].Observed = api.Observed{} // baton's addition: REST only
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(s)
	if string(gb) != string(wb) {
		t.Errorf("round trip:\n got %s\nwant %s", gb, wb)
	}
	h, _ := SourceStatusHash(s.Reported)
	if e.Ext[ExtStatusHash] != h {
		t.Errorf("statushash = %v; want %s", e.Ext[ExtStatusHash], h)
	}
}

// The hash must equal what an sdk-go source client computes over the work
// status it decoded from the event's data: SHA-256 of the JSON of the
// unstructured status.
func TestSourceStatusHashMatchesClient(t *testing.T) {
	rep := sampleReported()
	data, _ := json.Marshal(rep)
	var client struct {
		Conditions     json.RawMessage            `json:"conditions"`
		ResourceStatus []workv1.ManifestCondition `json:"resourceStatus,omitempty"`
	}
	if err := json.Unmarshal(data, &client); err != nil {
		t.Fatal(err)
	}
	work := &workv1.ManifestWork{}
	if err := json.Unmarshal(client.Conditions, &work.Status.Conditions); err != nil {
		t.Fatal(err)
	}
	work.Status.ResourceStatus.Manifests = client.ResourceStatus
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(work)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(u["status"])
	sum := sha256.Sum256(b)
	want := hex.EncodeToString(sum[:])
	got, err := SourceStatusHash(rep)
	if err != nil || got != want {
		t.Errorf("SourceStatusHash = %s, %v; want %s", got, err, want)
	}
	other := sampleReported()
	other.ResourceStatus[0].Observed.UID = "u-2"
	if h, _ := SourceStatusHash(other); h != got {
		t.Errorf("hash depends on baton-only fields the client never sees")
	}
	other.ResourceStatus[0].Conditions[0].Reason = "Other"
	if h, _ := SourceStatusHash(other); h == got {
		t.Errorf("hash does not change with the conditions")
	}
}

func TestStatusResyncRoundTrip(t *testing.T) {
	r := StatusResync{Source: "cs", Consumer: "", Hashes: map[string]string{"b-1": "h1", "b-2": "h2"}}
	got, err := DecodeStatusResync(EncodeStatusResync(r, t0))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip = %+v; want %+v", got, r)
	}
	// sdk-go's wire form.
	e := Event{Source: "cs", Type: TypeStatusResync, Ext: map[string]any{ExtClusterName: "c1"},
		Data: []byte(`{"statusHashes":[]}`)}
	got, err = DecodeStatusResync(e)
	if err != nil || got.Consumer != "c1" || len(got.Hashes) != 0 {
		t.Errorf("DecodeStatusResync = %+v, %v", got, err)
	}
}

func TestDeletedStatus(t *testing.T) {
	if !IsDeleted(DeletedStatus(t0)) {
		t.Error("DeletedStatus is not Deleted")
	}
	if IsDeleted(sampleReported()) {
		t.Error("an applied status reads as Deleted")
	}
}
