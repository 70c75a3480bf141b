package agent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
)

// TestNoFalseDriftOnQuantities: a manifest saying cpu "1000m", which the
// API server stores as "1", is not drift: events of the object (status
// written by a controller, a label someone adds) re-apply nothing; a real
// edit of a field the manifest sets still does.
func TestNoFalseDriftOnQuantities(t *testing.T) {
	for _, st := range []workv1.UpdateStrategyType{workv1.UpdateStrategyTypeUpdate, workv1.UpdateStrategyTypeServerSideApply} {
		t.Run(string(st), func(t *testing.T) {
			h := newHarness(t)
			quota := manifest(t, map[string]any{"apiVersion": "v1", "kind": "ResourceQuota",
				"metadata": map[string]any{"name": "q", "namespace": h.ns},
				"spec":     map[string]any{"hard": map[string]any{"cpu": "1000m", "memory": "1024Mi"}}})
			c := config("resourcequotas", h.ns, "q", st)
			if st == workv1.UpdateStrategyTypeServerSideApply {
				// Force, so that the repair below takes the field back from
				// the editor's field manager.
				c.UpdateStrategy.ServerSideApply = &workv1.ServerSideApplyConfig{Force: true}
			}
			h.server.sendSpec(t, spec("quota", 1, []json.RawMessage{quota}, c))
			h.server.waitFor(t, protocol.TypeStatus, 0, 10*time.Second, "applied", func(m protocol.Message) bool {
				s := status(m, "quota")
				return s != nil && s.Reported.ResourceStatus[0].Observed.Exists
			})
			applies := func() float64 { return counterValue(h.agent.metrics.applies.WithLabelValues("ok")) }
			base := applies()
			get := func() *corev1.ResourceQuota {
				q, err := h.kube.CoreV1().ResourceQuotas(h.ns).Get(h.ctx, "q", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return q
			}
			if cpu := get().Spec.Hard[corev1.ResourceCPU]; cpu.String() != "1" {
				t.Fatalf("stored cpu = %s; the test expects the server to canonicalise 1000m to 1", cpu.String())
			}

			// Events that are not drift: status written, a label added.
			for i := range 3 {
				q := get()
				q.Status.Hard = q.Spec.Hard
				q.Status.Used = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
				if i == 1 {
					q.Status.Used[corev1.ResourceCPU] = resource.MustParse("200m")
				}
				if _, err := h.kube.CoreV1().ResourceQuotas(h.ns).UpdateStatus(h.ctx, q, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				q = get()
				q.Labels = map[string]string{"edited": string(rune('a' + i))}
				if _, err := h.kube.CoreV1().ResourceQuotas(h.ns).Update(h.ctx, q, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			rv := get().ResourceVersion
			// Wait until the agent has evaluated the last event: it
			// reports the object at that resourceVersion.
			h.server.waitFor(t, protocol.TypeStatus, 0, 10*time.Second, "the last edit reported", func(m protocol.Message) bool {
				s := status(m, "quota")
				return s != nil && s.Reported.ResourceStatus[0].Observed.ResourceVersion == rv
			})
			if n := counterValue(h.agent.metrics.driftReapplies); n != 0 {
				t.Errorf("%v drift re-applies for canonicalised values", n)
			}
			if n := applies() - base; n != 0 {
				t.Errorf("%v applies after the bundle was applied; want none", n)
			}
			if got := get().ResourceVersion; got != rv {
				t.Errorf("the agent wrote the quota again (rv %s → %s)", rv, got)
			}

			// A real edit is drift and is repaired.
			q := get()
			q.Spec.Hard[corev1.ResourceCPU] = resource.MustParse("2")
			if _, err := h.kube.CoreV1().ResourceQuotas(h.ns).Update(h.ctx, q, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "cpu restored", func() bool {
				cpu := get().Spec.Hard[corev1.ResourceCPU]
				return cpu.String() == "1"
			})
			if n := counterValue(h.agent.metrics.driftReapplies); n < 1 {
				t.Errorf("real drift not counted")
			}
		})
	}
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
