package agent

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	workv1 "open-cluster-management.io/api/work/v1"
	"sigs.k8s.io/yaml"

	"github.com/baton-dev/baton/internal/agent/apply"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/transport/mqtt"
)

func TestHelloBatches(t *testing.T) {
	for name, n := range map[string]int{"empty": 0, "one": 1, "many": 40000} {
		t.Run(name, func(t *testing.T) {
			held, incs := map[string]int64{}, map[string]string{}
			for i := range n {
				id := fmt.Sprintf("5f8e2c1a-0000-4000-8000-%012d", i)
				held[id] = int64(i) * 1000003
				if i%2 == 0 {
					incs[id] = "7c4d1b2e-9a3f-4e6b-8c5d-2f1e0a9b8c7d"
				}
			}
			batches := helloBatches(held, incs)
			seen := 0
			for i, part := range batches {
				b, _ := json.Marshal(protocol.Message{Type: protocol.TypeHello, Consumer: "a-consumer-name",
					Hello: &protocol.Hello{Epoch: "0e6f7a44-1c77-4a55-9d0a-7d3b0f1d2a9b", Held: part,
						Incarnations: incarnationsOf(part, incs), Batch: i + 1, Batches: len(batches)}})
				if len(b) > limits.BatchBytes {
					t.Errorf("batch %d encodes to %d bytes; limit %d", i+1, len(b), limits.BatchBytes)
				}
				// The transports' encoding (a CloudEvent in JSON, as MQTT
				// carries it) must fit too: brokers refuse larger packets.
				var m protocol.Message
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				wire, err := mqtt.EncodeMessage(m, "baton-agent-a-consumer-name", time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if len(wire) > limits.BatchBytes {
					t.Errorf("batch %d is %d bytes as a CloudEvent; limit %d", i+1, len(wire), limits.BatchBytes)
				}
				for id, g := range part {
					if held[id] != g {
						t.Errorf("batch %d: %s@%d; want @%d", i+1, id, g, held[id])
					}
				}
				seen += len(part)
			}
			if seen != n || len(batches) < 1 {
				t.Errorf("batches hold %d entries in %d batches; want %d in ≥1", seen, len(batches), n)
			}
			if n == 40000 && len(batches) < 2 {
				t.Errorf("40000 entries in one batch")
			}
		})
	}
}

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestDrifted(t *testing.T) {
	want := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ns, labels: {app: web}}
spec:
  replicas: 2
  template:
    spec:
      containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]
status: {replicas: 99}
`
	live := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ns, labels: {app: web, extra: x}, resourceVersion: "%s", uid: u1}
spec:
  replicas: %d
  strategy: {type: RollingUpdate}
  template:
    spec:
      containers: [{name: c, image: nginx, imagePullPolicy: Always, ports: [{containerPort: 80, protocol: TCP}]}]
status: {replicas: 1}
`
	applied := apply.ObjectResult{GVR: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Outcome: apply.Configured, Strategy: workv1.UpdateStrategyTypeUpdate, Exists: true, ResourceVersion: "10"}
	with := func(f func(*apply.ObjectResult)) apply.ObjectResult { r := applied; f(&r); return r }
	cases := map[string]struct {
		r    apply.ObjectResult
		live *unstructured.Unstructured
		want bool
	}{
		"defaults added by the server":  {applied, obj(t, fmt.Sprintf(live, "10", 2)), false},
		"field changed":                 {applied, obj(t, fmt.Sprintf(live, "11", 3)), true},
		"stale cache (older rv)":        {applied, obj(t, fmt.Sprintf(live, "9", 3)), false},
		"deleted":                       {applied, nil, true},
		"read-only never drifts":        {with(func(r *apply.ObjectResult) { r.Strategy = workv1.UpdateStrategyTypeReadOnly }), nil, false},
		"create-only edited":            {with(func(r *apply.ObjectResult) { r.Strategy = workv1.UpdateStrategyTypeCreateOnly }), obj(t, fmt.Sprintf(live, "11", 3)), false},
		"create-only deleted":           {with(func(r *apply.ObjectResult) { r.Strategy = workv1.UpdateStrategyTypeCreateOnly }), nil, true},
		"failed apply is not drift":     {with(func(r *apply.ObjectResult) { r.Outcome = apply.Failed }), nil, false},
		"server-side apply field moved": {with(func(r *apply.ObjectResult) { r.Strategy = workv1.UpdateStrategyTypeServerSideApply }), obj(t, fmt.Sprintf(live, "12", 1)), true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := drifted(c.r, obj(t, want), c.live); got != c.want {
				t.Errorf("drifted = %v; want %v", got, c.want)
			}
		})
	}
}

func TestContainsLabelRemoved(t *testing.T) {
	want := obj(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: a, labels: {team: x}}, data: {k: v}}`)
	live := obj(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: a, labels: {}}, data: {k: v}}`)
	if containsObject(live.Object, want.Object) {
		t.Error("a removed label is not drift")
	}
	live = obj(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: a, labels: {team: x}}, data: {k: v, other: w}}`)
	if !containsObject(live.Object, want.Object) {
		t.Error("an added key is drift")
	}
}
