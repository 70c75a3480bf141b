package rest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// TestBundleEncodingMatchesEncodingJSON checks the spliced encoding of a
// bundle is the JSON encoding/json makes of the same value.
func TestBundleEncodingMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 123000, time.UTC)
	h := New(Options{Store: nil})
	cases := map[string]store.Bundle{
		"full": {
			ID: "id1", Name: "n", ConsumerName: "c", Source: "s", Generation: 3, CreatedAt: now, UpdatedAt: now, DeletedAt: &now,
			Meta: api.ObjectMeta{Name: "w", Namespace: "c", UID: "id1", Labels: map[string]string{"a": "<b>&"}},
			Spec: api.BundleSpec{
				Manifests: []json.RawMessage{
					json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"k":"<\u00e9>\n&"}}`),
					json.RawMessage(` { "apiVersion" : "v1", "kind":"Secret" , "metadata":{"name":"y"}} `),
				},
				ManifestConfigs: []workv1.ManifestConfigOption{{ResourceIdentifier: workv1.ResourceIdentifier{Resource: "services", Name: "x"}}},
				DeleteOption:    &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan},
			},
			Status: store.Status{Revision: 2, ObservedGeneration: 3, SequenceID: "9",
				Reported: api.ReportedStatus{Conditions: []metav1.Condition{{Type: "Applied", Status: "True", LastTransitionTime: metav1.NewTime(now)}}}},
		},
		"empty": {ID: "id2"},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			v := h.bundleOut(&b, true)
			got, err := newItemEncoder().encode(v)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
			var g, w any
			_ = json.Unmarshal(got, &g)
			_ = json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("spliced encoding differs:\ngot  %s\nwant %s", got, want)
			}
		})
	}
}
