package storetest

import (
	"testing"

	"github.com/baton-dev/baton/internal/store"
)

var orphanTests = map[string]func(*testing.T, *F){
	"OrphanBundle":                 testOrphanBundle,
	"OrphanDeletingBundle":         testOrphanDeletingBundle,
	"OrphanRecreateAndPurge":       testOrphanRecreateAndPurge,
	"DecommissionConsumer":         testDecommissionConsumer,
	"PendingOutboxQueryOpAndAfter": testPendingOutboxQuery,
}

func testOrphanBundle(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	NoErr(t, "AckOutbox", f.S.AckOutbox(f.Ctx, c.Name, b.ID, b.Generation))
	latest := f.Latest()
	out, err := f.S.OrphanBundle(f.Ctx, b.ID)
	NoErr(t, "OrphanBundle", err)
	if out.ID != b.ID || out.Generation <= b.Generation || out.DeletedAt == nil {
		t.Fatalf("OrphanBundle = id %s generation %d deletedAt %v; want %s above %d, marked deleting",
			out.ID, out.Generation, out.DeletedAt, b.ID, b.Generation)
	}
	_, err = f.S.GetBundle(f.Ctx, b.ID)
	WantErr(t, "GetBundle after OrphanBundle", err, store.ErrNotFound)
	changes, err := f.S.ChangesSince(f.Ctx, latest, 0)
	NoErr(t, "ChangesSince", err)
	if len(changes) != 1 || changes[0].Type != store.ChangeDeleted || changes[0].BundleID != b.ID {
		t.Fatalf("changes after OrphanBundle = %+v; want one DELETED of %s", changes, b.ID)
	}
	orphans, err := f.S.Orphans(f.Ctx, c.Name)
	NoErr(t, "Orphans", err)
	if len(orphans) != 1 || orphans[0].BundleID != b.ID || orphans[0].Generation != out.Generation ||
		orphans[0].ConsumerName != c.Name || orphans[0].At.IsZero() {
		t.Fatalf("Orphans = %+v; want %s at generation %d", orphans, b.ID, out.Generation)
	}
	ev := f.Pending(c.Name)
	if len(ev) != 1 || ev[0].Op != store.OpOrphan || ev[0].Generation != out.Generation {
		t.Fatalf("outbox after OrphanBundle = %+v; want one orphan event at %d", ev, out.Generation)
	}
	_, err = f.S.OrphanBundle(f.Ctx, b.ID)
	WantErr(t, "OrphanBundle twice", err, store.ErrNotFound)

	NoErr(t, "ForgetOrphan (older)", f.S.ForgetOrphan(f.Ctx, c.Name, b.ID, out.Generation-1))
	if o, _ := f.S.Orphans(f.Ctx, c.Name); len(o) != 1 {
		t.Fatalf("ForgetOrphan at an older generation removed it: %+v", o)
	}
	NoErr(t, "ForgetOrphan", f.S.ForgetOrphan(f.Ctx, c.Name, b.ID, out.Generation))
	if o, _ := f.S.Orphans(f.Ctx, c.Name); len(o) != 0 {
		t.Fatalf("Orphans after ForgetOrphan = %+v", o)
	}
	if ev := f.Pending(c.Name); len(ev) != 0 {
		t.Fatalf("outbox after ForgetOrphan = %+v", ev)
	}
}

func testOrphanDeletingBundle(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	del, err := f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle", err)
	out, err := f.S.OrphanBundle(f.Ctx, b.ID)
	NoErr(t, "OrphanBundle", err)
	if out.Generation <= del.Generation {
		t.Fatalf("orphan generation %d; want above the delete's %d", out.Generation, del.Generation)
	}
	if out.DeletedAt == nil || !out.DeletedAt.Equal(*del.DeletedAt) {
		t.Fatalf("deletedAt %v; want the delete's %v", out.DeletedAt, del.DeletedAt)
	}
	ev := f.Pending(c.Name)
	if len(ev) != 1 || ev[0].Op != store.OpOrphan {
		t.Fatalf("outbox = %+v; want only the orphan event (the delete's is superseded)", ev)
	}
}

// A name orphaned and created again goes on at a higher generation; the
// Orphan stays until that bundle's own delete is confirmed (purged).
func testOrphanRecreateAndPurge(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name, WithID("b1"))
	o, err := f.S.OrphanBundle(f.Ctx, b.ID)
	NoErr(t, "OrphanBundle", err)
	again := f.Bundle(c.Name, WithID("b1"))
	if again.Generation <= o.Generation {
		t.Fatalf("recreated at generation %d; want above the orphan's %d", again.Generation, o.Generation)
	}
	if ev := f.Pending(c.Name); len(ev) != 1 || ev[0].Op != store.OpUpsert {
		t.Fatalf("outbox after recreate = %+v; want the create only", ev)
	}
	del, err := f.S.DeleteBundle(f.Ctx, again.ID)
	NoErr(t, "DeleteBundle", err)
	NoErr(t, "PurgeBundle", f.S.PurgeBundle(f.Ctx, again.ID, del.Generation))
	if left, _ := f.S.Orphans(f.Ctx, c.Name); len(left) != 0 {
		t.Fatalf("Orphans after the recreated bundle's delete was confirmed = %+v", left)
	}
}

// A consumer decommissioned with a bundle in every state: pending (never
// acknowledged), applied, deleting.
func testDecommissionConsumer(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	other := f.Consumer("other", nil)
	keep := f.Bundle(other.Name)
	pending := f.Bundle(c.Name, WithName("pending"))
	applied := f.Bundle(c.Name, WithName("applied"))
	NoErr(t, "AckOutbox", f.S.AckOutbox(f.Ctx, c.Name, applied.ID, applied.Generation))
	deleting := f.Bundle(c.Name, WithName("deleting"))
	_, err := f.S.DeleteBundle(f.Ctx, deleting.ID)
	NoErr(t, "DeleteBundle", err)
	latest := f.Latest()

	d, err := f.S.DecommissionConsumer(f.Ctx, c.ID)
	NoErr(t, "DecommissionConsumer", err)
	if d.Name != c.Name || d.ConsumerID != c.ID || d.Bundles != 3 || d.At.IsZero() {
		t.Fatalf("DecommissionConsumer = %+v; want %s with 3 bundles", d, c.Name)
	}
	_, err = f.S.GetConsumer(f.Ctx, c.Name)
	WantErr(t, "GetConsumer after decommission", err, store.ErrNotFound)
	for _, id := range []string{pending.ID, applied.ID, deleting.ID} {
		_, err := f.S.GetBundle(f.Ctx, id)
		WantErr(t, "GetBundle after decommission", err, store.ErrNotFound)
	}
	f.Get(keep.ID)
	changes, err := f.S.ChangesSince(f.Ctx, latest, 0)
	NoErr(t, "ChangesSince", err)
	if len(changes) != 3 {
		t.Fatalf("changes after decommission = %+v; want 3 DELETED", changes)
	}
	for _, ch := range changes {
		if ch.Type != store.ChangeDeleted || ch.Consumer != c.Name {
			t.Fatalf("change %+v; want DELETED of consumer %s", ch, c.Name)
		}
	}
	if ev := f.Pending(c.Name); len(ev) != 0 {
		t.Fatalf("outbox of a decommissioned consumer = %+v", ev)
	}
	orphans, err := f.S.Orphans(f.Ctx, c.Name)
	NoErr(t, "Orphans", err)
	if len(orphans) != 3 {
		t.Fatalf("Orphans = %+v; want the 3 bundles", orphans)
	}
	got, err := f.S.Decommissioned(f.Ctx, c.Name)
	NoErr(t, "Decommissioned", err)
	if got.Bundles != 3 || !got.At.Equal(d.At) {
		t.Fatalf("Decommissioned = %+v; want %+v", got, d)
	}
	_, err = f.S.Decommissioned(f.Ctx, other.Name)
	WantErr(t, "Decommissioned(other)", err, store.ErrNotFound)
	_, err = f.S.DecommissionConsumer(f.Ctx, c.Name)
	WantErr(t, "DecommissionConsumer twice", err, store.ErrNotFound)

	// Registered again: the agent is welcome, the Orphans stay.
	f.Consumer(c.Name, nil)
	_, err = f.S.Decommissioned(f.Ctx, c.Name)
	WantErr(t, "Decommissioned after CreateConsumer", err, store.ErrNotFound)
	if o, _ := f.S.Orphans(f.Ctx, c.Name); len(o) != 3 {
		t.Fatalf("Orphans after the consumer was created again = %+v; want 3", o)
	}
}

func testPendingOutboxQuery(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	var dels []store.Bundle
	for range 3 {
		b := f.Bundle(c.Name)
		d, err := f.S.DeleteBundle(f.Ctx, b.ID)
		NoErr(t, "DeleteBundle", err)
		dels = append(dels, d)
	}
	up := f.Bundle(c.Name)
	ups, err := f.S.PendingOutboxQuery(f.Ctx, store.OutboxQuery{Consumer: c.Name, Op: store.OpUpsert, Limit: 1})
	NoErr(t, "PendingOutboxQuery(upsert)", err)
	if len(ups) != 1 || ups[0].BundleID != up.ID {
		t.Fatalf("upserts = %+v; want %s behind the deletes", ups, up.ID)
	}
	ds, err := f.S.PendingOutboxQuery(f.Ctx, store.OutboxQuery{Consumer: c.Name, Op: store.OpDelete, Limit: 2})
	NoErr(t, "PendingOutboxQuery(delete)", err)
	if len(ds) != 2 || ds[0].BundleID != dels[0].ID || ds[1].BundleID != dels[1].ID {
		t.Fatalf("deletes = %+v; want the first two", ds)
	}
	rest, err := f.S.PendingOutboxQuery(f.Ctx, store.OutboxQuery{Consumer: c.Name, Op: store.OpDelete, AfterSeq: ds[1].Seq})
	NoErr(t, "PendingOutboxQuery(after)", err)
	if len(rest) != 1 || rest[0].BundleID != dels[2].ID {
		t.Fatalf("deletes after %d = %+v; want the third", ds[1].Seq, rest)
	}
	all, err := f.S.PendingOutboxQuery(f.Ctx, store.OutboxQuery{Consumer: c.Name})
	NoErr(t, "PendingOutboxQuery(all)", err)
	if len(all) != 4 {
		t.Fatalf("all = %+v; want 4", all)
	}
}
