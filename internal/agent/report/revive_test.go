package report

import (
	"testing"

	"github.com/baton-dev/baton/internal/protocol"
)

// TestReviveAfterDeletion: a bundle whose deletion at generation 4 was
// acked is taken again at generation 1 (a new incarnation of the server);
// until Revive its reports are dropped, after it they are sent.
func TestReviveAfterDeletion(t *testing.T) {
	h := newHarness(t)
	h.r.Set("b1", 4, status("1.1.1.1", "u1"))
	h.step(DefaultCoalesce)
	h.r.MarkDeleted("b1", 4)
	got := h.step(0)
	if len(got) != 1 || !got[0].Deleted {
		t.Fatalf("deletion report: %+v", got)
	}
	h.r.Ack(protocol.StatusAck{Epoch: h.r.Epoch(), BundleID: "b1", Revision: got[0].Revision})
	h.r.Set("b1", 1, status("2.2.2.2", "u2"))
	if got := h.step(DefaultCoalesce); len(got) != 0 {
		t.Fatalf("sent an older generation before Revive: %s", revisions(got))
	}
	h.r.Revive("b1")
	h.r.Set("b1", 1, status("2.2.2.2", "u2"))
	if got := h.step(DefaultCoalesce); len(got) != 1 || got[0].Deleted || got[0].Generation != 1 {
		t.Fatalf("after Revive: %+v", got)
	}
}

// TestReviveBeforeDeletionAcked: Revive while the deletion report is still
// unacknowledged lets the new life's status replace it.
func TestReviveBeforeDeletionAcked(t *testing.T) {
	h := newHarness(t)
	h.r.Set("b1", 4, status("1.1.1.1", "u1"))
	h.step(DefaultCoalesce)
	h.r.MarkDeleted("b1", 4)
	if got := h.step(0); len(got) != 1 || !got[0].Deleted {
		t.Fatalf("deletion report: %+v", got)
	}
	h.r.Revive("b1")
	h.r.Set("b1", 1, status("2.2.2.2", "u2"))
	got := h.step(DefaultCoalesce)
	if len(got) != 1 || got[0].Deleted || got[0].Generation != 1 {
		t.Fatalf("after Revive: %+v", got)
	}
	h.r.Ack(protocol.StatusAck{Epoch: h.r.Epoch(), BundleID: "b1", Revision: got[0].Revision})
	h.r.Set("b1", 1, status("3.3.3.3", "u3"))
	if got := h.step(DefaultCoalesce); len(got) != 1 || got[0].Generation != 1 {
		t.Fatalf("change after the ack: %+v", got)
	}
}
