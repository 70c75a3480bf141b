package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

var statusTests = map[string]func(*testing.T, *F){
	"StatusAcceptConfirm":     testStatusAcceptConfirm,
	"StatusStaleRevision":     testStatusStaleRevision,
	"StatusEpochSupersession": testStatusEpochSupersession,
	"StatusUnknown":           testStatusUnknown,
	"StatusDeletedReport":     testStatusDeletedReport,
	"ConfirmStatusDigest":     testConfirmStatusDigest,
}

// t0 is a fixed report time; reports use t0 plus seconds.
var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

func report(b store.Bundle, epoch string, rev int64, value string) store.StatusUpdate {
	return store.StatusUpdate{ConsumerName: b.ConsumerName, BundleID: b.ID, AgentEpoch: epoch, AgentRevision: rev,
		ObservedGeneration: b.Generation, Reported: SampleStatus(value), Hash: "hash-" + value,
		SequenceID: "seq-" + value, At: t0.Add(time.Duration(rev) * time.Second)}
}

func testStatusAcceptConfirm(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	u := report(b, "e1", 1, "a")
	got := f.Apply(u, store.StatusAccepted)
	want := store.Status{Reported: u.Reported, ObservedGeneration: 1, Revision: 1, SequenceID: "seq-a",
		AgentEpoch: "e1", AgentRevision: 1, Hash: "hash-a", ReportedAt: u.At, ConfirmedAt: u.At}
	if !JSONEqual(t, got.Status, want) || got.ChangeSeq <= b.ChangeSeq {
		t.Fatalf("accepted status = %+v; want %+v", got.Status, want)
	}
	if read := f.Get(b.ID); !reflect.DeepEqual(read, got) {
		t.Fatalf("GetBundle after accept = %+v\nwant %+v", read, got)
	}
	if cons, _ := f.S.GetConsumer(f.Ctx, c.Name); cons.Agent.Epoch != "e1" {
		t.Fatalf("consumer epoch = %q; want e1 adopted from the first report", cons.Agent.Epoch)
	}

	// Same content, newer revision: confirmed, no new server revision, no change.
	latest := f.Latest()
	same := report(b, "e1", 2, "a")
	same.SequenceID = "seq-other"
	conf := f.Apply(same, store.StatusConfirmed)
	if conf.Status.Revision != 1 || conf.Status.SequenceID != "seq-a" || conf.Status.AgentRevision != 2 ||
		!conf.Status.ConfirmedAt.Equal(same.At) || !conf.Status.ReportedAt.Equal(u.At) {
		t.Fatalf("confirmed status = %+v", conf.Status)
	}
	if f.Latest() != latest || conf.ChangeSeq != got.ChangeSeq {
		t.Fatalf("a plain confirmation moved the change sequence %d -> %d", latest, f.Latest())
	}
	if read := f.Get(b.ID); !reflect.DeepEqual(read.Status, conf.Status) {
		t.Fatalf("stored status after confirm = %+v; want %+v", read.Status, conf.Status)
	}

	// A confirmation at a new observed generation is visible.
	upd, err := f.S.UpdateBundle(f.Ctx, b, 0)
	NoErr(t, "UpdateBundle", err)
	gen2 := report(upd, "e1", 3, "a")
	conf2 := f.Apply(gen2, store.StatusConfirmed)
	if conf2.Status.ObservedGeneration != 2 || conf2.ChangeSeq <= upd.ChangeSeq || conf2.Status.Revision != 1 {
		t.Fatalf("confirmation at generation 2 = seq %d status %+v; want observed 2, new seq, revision 1", conf2.ChangeSeq, conf2.Status)
	}

	// New content: accepted as revision 2.
	next := f.Apply(report(upd, "e1", 4, "b"), store.StatusAccepted)
	if next.Status.Revision != 2 || next.Status.Hash != "hash-b" || next.Status.SequenceID != "seq-b" || next.ChangeSeq <= conf2.ChangeSeq {
		t.Fatalf("second accepted status = %+v", next.Status)
	}
	changes, err := f.S.ChangesSince(f.Ctx, conf2.ChangeSeq, 0)
	NoErr(t, "ChangesSince", err)
	if len(changes) != 1 || changes[0].Type != store.ChangeUpdated || changes[0].Seq != next.ChangeSeq {
		t.Fatalf("changes after accept = %+v; want one MODIFIED at %d", changes, next.ChangeSeq)
	}
}

func testStatusStaleRevision(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	good := f.Apply(report(b, "e1", 5, "a"), store.StatusAccepted)
	latest := f.Latest()
	for _, rev := range []int64{5, 4, 1} {
		stale := f.Apply(report(b, "e1", rev, "old"), store.StatusStale)
		if !reflect.DeepEqual(stale, good) {
			t.Fatalf("stale report (rev %d) returned %+v; want the stored bundle", rev, stale)
		}
	}
	if read := f.Get(b.ID); !reflect.DeepEqual(read, good) || f.Latest() != latest {
		t.Fatalf("stale reports changed the bundle: %+v", read.Status)
	}
	f.Apply(report(b, "e1", 6, "new"), store.StatusAccepted)
}

func testStatusEpochSupersession(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	NoErr(t, "SetAgentState(e1)", f.S.SetAgentState(f.Ctx, c.Name, store.AgentState{Connected: true, Epoch: "e1"}))
	f.Apply(report(b, "e0", 100, "foreign"), store.StatusStale)
	f.Apply(report(b, "e1", 50, "a"), store.StatusAccepted)

	// The agent restarts with a new epoch; its revisions start over.
	NoErr(t, "SetAgentState(e2)", f.S.SetAgentState(f.Ctx, c.Name, store.AgentState{Connected: true, Epoch: "e2"}))
	f.Apply(report(b, "e1", 51, "late"), store.StatusStale)
	got := f.Apply(report(b, "e2", 1, "b"), store.StatusAccepted)
	if got.Status.AgentEpoch != "e2" || got.Status.AgentRevision != 1 || got.Status.Revision != 2 || got.Status.Hash != "hash-b" {
		t.Fatalf("status from the new epoch = %+v", got.Status)
	}
	f.Apply(report(b, "e2", 1, "dup"), store.StatusStale)
	// Same content from the next epoch is a confirmation, not a new revision.
	NoErr(t, "SetAgentState(e3)", f.S.SetAgentState(f.Ctx, c.Name, store.AgentState{Connected: true, Epoch: "e3"}))
	conf := f.Apply(report(b, "e3", 1, "b"), store.StatusConfirmed)
	if conf.Status.AgentEpoch != "e3" || conf.Status.Revision != 2 {
		t.Fatalf("confirmation from epoch e3 = %+v", conf.Status)
	}
	f.Apply(report(b, "e2", 9, "b"), store.StatusStale)
}

func testStatusUnknown(t *testing.T, f *F) {
	a, other := f.Consumer("a", nil), f.Consumer("b", nil)
	b := f.Bundle(a.Name)
	foreign := report(b, "e1", 1, "x")
	foreign.ConsumerName = other.Name
	if res, got, err := f.S.ApplyStatus(f.Ctx, foreign); err != nil || res != store.StatusUnknown || got.ID != "" {
		t.Fatalf("status from another consumer = %s, %+v, %v; want Unknown and no bundle", ResultName(res), got.ID, err)
	}
	missing := report(store.Bundle{ID: "missing", ConsumerName: a.Name}, "e1", 1, "x")
	f.Apply(missing, store.StatusUnknown)
	ghost := report(b, "e1", 1, "x")
	ghost.ConsumerName = "ghost"
	f.Apply(ghost, store.StatusUnknown)
	if read := f.Get(b.ID); read.Status.Revision != 0 {
		t.Fatalf("bundle status after foreign reports = %+v; want none", read.Status)
	}
}

func testStatusDeletedReport(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	gone := report(b, "e1", 1, "x")
	gone.Deleted = true
	f.Apply(gone, store.StatusStale) // not marked deleting
	del, err := f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle", err)
	gone.AgentRevision = 2
	f.Apply(gone, store.StatusStale) // observed generation 1 < delete generation 2
	latest := f.Latest()
	gone.ObservedGeneration, gone.AgentRevision = del.Generation, 3
	purged := f.Apply(gone, store.StatusPurged)
	if purged.ID != b.ID {
		t.Fatalf("purge returned bundle %q; want %q", purged.ID, b.ID)
	}
	_, err = f.S.GetBundle(f.Ctx, b.ID)
	WantErr(t, "GetBundle after purge by report", err, store.ErrNotFound)
	changes, err := f.S.ChangesSince(f.Ctx, latest, 0)
	NoErr(t, "ChangesSince", err)
	if len(changes) != 1 || changes[0].Type != store.ChangeDeleted {
		t.Fatalf("changes after purge = %+v; want one DELETED", changes)
	}
	if ev := f.Pending(c.Name); len(ev) != 0 {
		t.Fatalf("outbox after purge = %+v; want empty", ev)
	}
	f.Apply(gone, store.StatusUnknown)
}

func testConfirmStatusDigest(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	acc := f.Apply(report(b, "e1", 1, "a"), store.StatusAccepted)
	latest := f.Latest()

	at := t0.Add(time.Hour)
	match, err := f.S.ConfirmStatus(f.Ctx, c.Name, b.ID, "hash-a", at)
	NoErr(t, "ConfirmStatus(match)", err)
	got := f.Get(b.ID)
	if !match || !got.Status.ConfirmedAt.Equal(at) || got.Status.DigestMismatch || f.Latest() != latest {
		t.Fatalf("after matching digest: match %v status %+v latest %d->%d", match, got.Status, latest, f.Latest())
	}
	// An older confirmation does not move ConfirmedAt back.
	_, err = f.S.ConfirmStatus(f.Ctx, c.Name, b.ID, "hash-a", at.Add(-time.Minute))
	NoErr(t, "ConfirmStatus(older)", err)
	if got := f.Get(b.ID); !got.Status.ConfirmedAt.Equal(at) {
		t.Fatalf("ConfirmedAt moved back to %v", got.Status.ConfirmedAt)
	}

	match, err = f.S.ConfirmStatus(f.Ctx, c.Name, b.ID, "hash-other", at.Add(time.Minute))
	NoErr(t, "ConfirmStatus(mismatch)", err)
	got = f.Get(b.ID)
	if match || !got.Status.DigestMismatch || !got.Status.ConfirmedAt.Equal(at) || got.ChangeSeq <= acc.ChangeSeq {
		t.Fatalf("after mismatching digest: match %v status %+v seq %d", match, got.Status, got.ChangeSeq)
	}
	if got.Status.Revision != 1 || got.Status.Hash != "hash-a" {
		t.Fatalf("mismatch changed the stored status: %+v", got.Status)
	}
	// The next accepted report clears the mismatch.
	cleared := f.Apply(report(b, "e1", 2, "b"), store.StatusAccepted)
	if cleared.Status.DigestMismatch || f.Get(b.ID).Status.DigestMismatch {
		t.Fatal("accepted report left DigestMismatch set")
	}
	_, err = f.S.ConfirmStatus(f.Ctx, "ghost", b.ID, "hash-b", at)
	WantErr(t, "ConfirmStatus(other consumer)", err, store.ErrNotFound)
	_, err = f.S.ConfirmStatus(f.Ctx, c.Name, "missing", "hash-b", at)
	WantErr(t, "ConfirmStatus(missing bundle)", err, store.ErrNotFound)

	// A matching digest also clears a mismatch.
	_, err = f.S.ConfirmStatus(f.Ctx, c.Name, b.ID, "nope", at.Add(2*time.Minute))
	NoErr(t, "ConfirmStatus(mismatch)", err)
	match, err = f.S.ConfirmStatus(f.Ctx, c.Name, b.ID, "hash-b", at.Add(3*time.Minute))
	NoErr(t, "ConfirmStatus(match)", err)
	if got := f.Get(b.ID); !match || got.Status.DigestMismatch || !got.Status.ConfirmedAt.Equal(at.Add(3*time.Minute)) {
		t.Fatalf("after matching again: %+v", got.Status)
	}
}
