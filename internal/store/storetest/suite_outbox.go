package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

var outboxTests = map[string]func(*testing.T, *F){
	"OutboxOrderAndLimit": testOutboxOrderAndLimit,
	"OutboxMarkSent":      testOutboxMarkSent,
	"OutboxAck":           testOutboxAck,
}

func testOutboxOrderAndLimit(t *testing.T, f *F) {
	a, other := f.Consumer("a", nil), f.Consumer("b", nil)
	b1 := f.Bundle(a.Name)
	f.Bundle(other.Name)
	b2 := f.Bundle(a.Name)
	b3 := f.Bundle(a.Name)
	_, err := f.S.UpdateBundle(f.Ctx, b1, 0) // b1's event moves behind b3's
	NoErr(t, "UpdateBundle", err)
	ev := f.Pending(a.Name)
	var got []string
	for i, e := range ev {
		got = append(got, e.BundleID)
		if i > 0 && e.Seq <= ev[i-1].Seq {
			t.Fatalf("outbox out of order: %+v", ev)
		}
		if e.ConsumerName != a.Name || e.CreatedAt.IsZero() {
			t.Fatalf("event %+v", e)
		}
	}
	if want := []string{b2.ID, b3.ID, b1.ID}; !reflect.DeepEqual(got, want) {
		t.Fatalf("pending bundles = %v; want %v", got, want)
	}
	limited, err := f.S.PendingOutbox(f.Ctx, a.Name, 2)
	NoErr(t, "PendingOutbox(limit 2)", err)
	if len(limited) != 2 || limited[0].Seq != ev[0].Seq || limited[1].Seq != ev[1].Seq {
		t.Fatalf("PendingOutbox(limit 2) = %+v; want the first two of %+v", limited, ev)
	}
	names, err := f.S.ConsumersWithPending(f.Ctx)
	NoErr(t, "ConsumersWithPending", err)
	if !reflect.DeepEqual(names, []string{"a", "b"}) {
		t.Fatalf("ConsumersWithPending = %v; want [a b]", names)
	}
	none, err := f.S.PendingOutbox(f.Ctx, "nobody", 10)
	NoErr(t, "PendingOutbox(nobody)", err)
	if len(none) != 0 {
		t.Fatalf("PendingOutbox(nobody) = %+v", none)
	}
}

func testOutboxMarkSent(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	f.Bundle(c.Name)
	f.Bundle(c.Name)
	ev := f.Pending(c.Name)
	at := time.Date(2026, 7, 8, 9, 10, 11, 12000, time.UTC)
	NoErr(t, "MarkSent", f.S.MarkSent(f.Ctx, []int64{ev[0].Seq}, at))
	NoErr(t, "MarkSent again", f.S.MarkSent(f.Ctx, []int64{ev[0].Seq, 999999}, at.Add(time.Second)))
	NoErr(t, "MarkSent(none)", f.S.MarkSent(f.Ctx, nil, at))
	got := f.Pending(c.Name)
	if got[0].Attempts != 2 || got[0].LastSentAt == nil || !got[0].LastSentAt.Equal(at.Add(time.Second)) {
		t.Fatalf("first event after two sends = %+v", got[0])
	}
	if got[1].Attempts != 0 || got[1].LastSentAt != nil {
		t.Fatalf("unsent event = %+v", got[1])
	}
}

func testOutboxAck(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	other := f.Bundle(c.Name)
	NoErr(t, "AckOutbox(generation 0)", f.S.AckOutbox(f.Ctx, c.Name, b.ID, 0))
	if n := len(f.Pending(c.Name)); n != 2 {
		t.Fatalf("pending after ack of generation 0 = %d; want 2", n)
	}
	// In flight: generation 1 was sent, then the bundle changed.
	upd, err := f.S.UpdateBundle(f.Ctx, b, 0)
	NoErr(t, "UpdateBundle", err)
	NoErr(t, "AckOutbox(generation 1)", f.S.AckOutbox(f.Ctx, c.Name, b.ID, 1))
	ev := f.Pending(c.Name)
	if len(ev) != 2 || ev[0].BundleID != other.ID || ev[1].BundleID != b.ID || ev[1].Generation != upd.Generation {
		t.Fatalf("pending after a stale ack = %+v; want other's event and b at generation %d", ev, upd.Generation)
	}
	NoErr(t, "AckOutbox(wrong consumer)", f.S.AckOutbox(f.Ctx, "ghost", b.ID, upd.Generation))
	if n := len(f.Pending(c.Name)); n != 2 {
		t.Fatalf("an ack from another consumer removed events: %d left", n)
	}
	NoErr(t, "AckOutbox(current)", f.S.AckOutbox(f.Ctx, c.Name, b.ID, upd.Generation))
	NoErr(t, "AckOutbox(other, newer)", f.S.AckOutbox(f.Ctx, c.Name, other.ID, 99))
	if ev := f.Pending(c.Name); len(ev) != 0 {
		t.Fatalf("pending after acks = %+v; want none", ev)
	}
	names, err := f.S.ConsumersWithPending(f.Ctx)
	NoErr(t, "ConsumersWithPending", err)
	if len(names) != 0 {
		t.Fatalf("ConsumersWithPending = %v; want none", names)
	}
	// Acknowledged events are gone for good; a new change queues again.
	del, err := f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle", err)
	if ev := f.Pending(c.Name); len(ev) != 1 || ev[0].Op != store.OpDelete || ev[0].Generation != del.Generation {
		t.Fatalf("pending after delete = %+v", ev)
	}
}
