package agent

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
)

// TestSpecOfAnotherIncarnation: the agent holds bundle x at generation 5
// of incarnation A (durably: it survives a restart and is claimed in
// Hello). The server's database is reset, so x restarts at generation 1:
// a spec of generation 1 in the same incarnation A is older and ignored,
// but generation 1 of the new incarnation B is applied, acknowledged,
// reported and recorded. A deletion of another incarnation is taken
// whatever its generation, and the bundle taken again afterwards at a
// generation no newer than the deletion's is reported.
func TestSpecOfAnotherIncarnation(t *testing.T) {
	h := newHarness(t)
	cfgV := config("configmaps", h.ns, "cm", workv1.UpdateStrategyTypeUpdate, workv1.JsonPath{Name: "v", Path: ".data.v"})
	withInc := func(s protocol.Spec, inc string) protocol.Spec { s.Incarnation = inc; return s }
	x := func(gen int64, inc, v string) protocol.Spec {
		return withInc(spec("x", gen, []json.RawMessage{h.configMap("cm", map[string]any{"v": v})}, cfgV), inc)
	}
	h.server.sendSpec(t, x(5, "A", "five"))
	h.server.sendSpec(t, withInc(spec("y", 3, []json.RawMessage{h.configMap("cm-y", map[string]any{"v": "y"})}), "A"))
	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "x@5 reported", func(m protocol.Message) bool {
		v, _ := value(status(m, "x"), 0, "v")
		return v == "five" && m.Status.Generation == 5
	})
	h.server.waitFor(t, protocol.TypeSpecAck, 0, 5*time.Second, "y@3 acked", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "y" && m.SpecAck.Generation == 3
	})

	// The incarnation is recorded: a restarted agent claims it.
	h.stop()
	h.startAgent()
	hello, _ := h.server.waitFor(t, protocol.TypeHello, 0, 10*time.Second, "hello", func(protocol.Message) bool { return true })
	if m := hello.m.Hello; m.Held["x"] != 5 || m.Incarnations["x"] != "A" || m.Held["y"] != 3 || m.Incarnations["y"] != "A" {
		t.Fatalf("hello after restart = %+v; want x@5 and y@3 of incarnation A", m)
	}
	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "x re-reported", func(m protocol.Message) bool {
		return status(m, "x") != nil
	})

	// Same incarnation, lower generation: ignored, the held one re-acked.
	acks := len(h.server.snapshot(protocol.TypeSpecAck))
	h.server.sendSpec(t, x(1, "A", "stale"))
	h.server.waitFor(t, protocol.TypeSpecAck, acks, 5*time.Second, "x@5 re-acked", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "x" && m.SpecAck.Generation == 5
	})
	time.Sleep(300 * time.Millisecond)
	if v := h.cmValue("cm"); v != "five" {
		t.Fatalf("a stale spec of the same incarnation was applied: data.v = %q", v)
	}
	for _, r := range h.server.snapshot(protocol.TypeStatus) {
		if s := status(r.m, "x"); s != nil && s.Generation != 5 {
			t.Fatalf("status of generation %d after a stale spec", s.Generation)
		}
	}

	// Another incarnation: generation 1 is taken.
	acks = len(h.server.snapshot(protocol.TypeSpecAck))
	statuses := len(h.server.snapshot(protocol.TypeStatus))
	h.server.sendSpec(t, x(1, "B", "one"))
	h.server.waitFor(t, protocol.TypeSpecAck, acks, 5*time.Second, "x@1 acked", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "x" && m.SpecAck.Generation == 1
	})
	h.server.waitFor(t, protocol.TypeStatus, statuses, 5*time.Second, "x@1 reported", func(m protocol.Message) bool {
		v, _ := value(status(m, "x"), 0, "v")
		return v == "one" && m.Status.Generation == 1
	})
	if v := h.cmValue("cm"); v != "one" {
		t.Fatalf("generation 1 of incarnation B not applied: data.v = %q", v)
	}
	// A repeat of it is only re-acknowledged.
	acks = len(h.server.snapshot(protocol.TypeSpecAck))
	h.server.sendSpec(t, x(1, "B", "one"))
	h.server.waitFor(t, protocol.TypeSpecAck, acks, 5*time.Second, "x@1 re-acked", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "x" && m.SpecAck.Generation == 1
	})

	// A deletion of incarnation B at a generation below y's 3 removes y.
	d := withInc(spec("y", 1, nil), "B")
	d.Deleting = true
	h.server.sendSpec(t, d)
	h.server.waitFor(t, protocol.TypeSpecAck, acks, 10*time.Second, "y gone", func(m protocol.Message) bool {
		return m.SpecAck.BundleID == "y" && m.SpecAck.Gone
	})

	h.server.waitFor(t, protocol.TypeStatus, 0, 5*time.Second, "y's deletion reported", func(m protocol.Message) bool {
		s := status(m, "y")
		return s != nil && s.Deleted
	})

	// y comes back at generation 1 of yet another incarnation (the consumer
	// recreated): it is applied and reported although its deletion at
	// generation 1 was reported just before.
	statuses = len(h.server.snapshot(protocol.TypeStatus))
	h.server.sendSpec(t, withInc(spec("y", 1, []json.RawMessage{h.configMap("cm-y", map[string]any{"v": "back"})},
		config("configmaps", h.ns, "cm-y", workv1.UpdateStrategyTypeUpdate, workv1.JsonPath{Name: "v", Path: ".data.v"})), "C"))
	h.server.waitFor(t, protocol.TypeStatus, statuses, 5*time.Second, "y@1 of C reported", func(m protocol.Message) bool {
		v, _ := value(status(m, "y"), 0, "v")
		return v == "back" && m.Status.Generation == 1 && !m.Status.Deleted
	})

	// The new incarnations are what the records hold now.
	h.stop()
	h.startAgent()
	hello, _ = h.server.waitFor(t, protocol.TypeHello, 0, 10*time.Second, "hello", func(protocol.Message) bool { return true })
	if m := hello.m.Hello; m.Held["x"] != 1 || m.Incarnations["x"] != "B" || m.Held["y"] != 1 || m.Incarnations["y"] != "C" || len(m.Held) != 2 {
		t.Fatalf("hello after the second restart = %+v; want x@1 of incarnation B and y@1 of C", m)
	}
}

// cmValue returns data.v of ConfigMap name of the harness namespace.
func (h *harness) cmValue(name string) string {
	h.t.Helper()
	cm, err := h.kube.CoreV1().ConfigMaps(h.ns).Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatalf("get ConfigMap %s: %v", name, err)
	}
	return cm.Data["v"]
}
