package grpc

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/limits"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/pkg/api"
)

// TestSourceBundleOverTransportLimit: a source client's bundle whose spec
// message would not fit the agents' transport (MQTT: 512 KiB, with the
// annotations of the `metadata` extension counted) is refused with
// InvalidArgument naming the limit, and nothing is stored.
func TestSourceBundleOverTransportLimit(t *testing.T) {
	env := newSourceEnv(t, limits.MQTT)
	blob := strings.Repeat("x", limits.BundleSpecBytes-4000)
	spec := api.BundleSpec{Manifests: []json.RawMessage{json.RawMessage(
		`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"n"},"data":{"blob":"` + blob + `"}}`)}}
	meta := api.ObjectMeta{Name: "work", Namespace: "c1", Annotations: map[string]string{"example.com/notes": strings.Repeat("n", 200<<10)}}
	err := env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "big", Consumer: "c1", Meta: meta, Spec: spec})
	if status.Code(err) != codes.InvalidArgument || k8sReason(t, err) != metav1.StatusReasonBadRequest ||
		!strings.Contains(status.Convert(err).Message(), "mqtt transport carries at most 524288 bytes (512 KiB)") {
		t.Fatalf("create of an oversized bundle = %v; want InvalidArgument naming the 512 KiB limit", err)
	}
	if _, err := env.st.GetBundle(context.Background(), "big"); err == nil {
		t.Fatal("the refused bundle was stored")
	}
	meta.Annotations = nil
	if err := env.write(t, ce.SpecRequest{Action: ce.ActionCreate, BundleID: "fits", Consumer: "c1", Meta: meta, Spec: spec}); err != nil {
		t.Fatalf("the same bundle without annotations: %v", err)
	}
}
