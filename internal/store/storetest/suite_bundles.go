package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

var bundleTests = map[string]func(*testing.T, *F){
	"BundleCreate":               testBundleCreate,
	"BundleCreateErrors":         testBundleCreateErrors,
	"BundleUpdate":               testBundleUpdate,
	"BundleDeleteAndPurge":       testBundleDeleteAndPurge,
	"GenerationHighWaterMark":    testGenerationHighWaterMark,
	"ChangeLog":                  testChangeLog,
	"ConcurrentCreate":           testConcurrentCreate,
	"ConcurrentUpdate":           testConcurrentUpdate,
	"ListBundlesByConsumer":      testListBundlesByConsumer,
	"BundleRoundTripsEveryField": testBundleRoundTrip,
	"ReturnedValuesAreCopies":    testReturnedCopies,
	"ConcurrentMixed":            testConcurrentMixed,
}

func testBundleCreate(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name, WithName("web"), WithSource("maestro"), WithLabels(map[string]string{"app": "web"}))
	if b.ID == "" || b.Generation != 1 || b.Name != "web" {
		t.Fatalf("created bundle id %q generation %d name %q; want generated id, 1, web", b.ID, b.Generation, b.Name)
	}
	if b.Meta.UID != b.ID || b.Meta.Name != "web" {
		t.Fatalf("meta uid %q name %q; want the id and the bundle name", b.Meta.UID, b.Meta.Name)
	}
	if b.DeletedAt != nil || b.CreatedAt.IsZero() || !b.CreatedAt.Equal(b.UpdatedAt) {
		t.Fatalf("timestamps created %v updated %v deleted %v", b.CreatedAt, b.UpdatedAt, b.DeletedAt)
	}
	if b.ChangeSeq == 0 || b.ChangeSeq != f.Latest() {
		t.Fatalf("ChangeSeq %d, latest change %d; want equal and non-zero", b.ChangeSeq, f.Latest())
	}
	got := f.Get(b.ID)
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("GetBundle = %+v\nwant %+v", got, b)
	}
	ev := f.Pending(c.Name)
	if len(ev) != 1 || ev[0].BundleID != b.ID || ev[0].Generation != 1 || ev[0].Op != store.OpUpsert ||
		ev[0].ConsumerName != c.Name || ev[0].Attempts != 0 || ev[0].LastSentAt != nil {
		t.Fatalf("outbox after create = %+v; want one upsert at generation 1", ev)
	}
	changes, err := f.S.ChangesSince(f.Ctx, 0, 0)
	NoErr(t, "ChangesSince", err)
	want := []store.Change{{Seq: b.ChangeSeq, BundleID: b.ID, Consumer: c.Name, Source: "maestro", Type: store.ChangeCreated}}
	if !reflect.DeepEqual(changes, want) {
		t.Fatalf("changes = %+v; want %+v", changes, want)
	}

	// Name defaults to the metadata name, then to the id.
	byMeta := f.Bundle(c.Name, func(b *store.Bundle) { b.Meta.Name = "from-meta" })
	if byMeta.Name != "from-meta" {
		t.Fatalf("name from metadata = %q; want from-meta", byMeta.Name)
	}
	byID := f.Bundle(c.Name, WithID("explicit-id"))
	if byID.ID != "explicit-id" || byID.Name != "explicit-id" || byID.Meta.Name != "explicit-id" {
		t.Fatalf("bundle with only an id = %+v; want id, name and meta name explicit-id", byID)
	}
}

func testBundleCreateErrors(t *testing.T, f *F) {
	_, err := f.S.CreateBundle(f.Ctx, store.Bundle{ConsumerName: "ghost"})
	WantErr(t, "CreateBundle(unknown consumer)", err, store.ErrNotFound)
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name, WithID("b1"))
	_, err = f.S.CreateBundle(f.Ctx, store.Bundle{ID: "b1", ConsumerName: c.Name})
	WantErr(t, "CreateBundle(existing id)", err, store.ErrConflict)
	_, err = f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle", err)
	_, err = f.S.CreateBundle(f.Ctx, store.Bundle{ID: "b1", ConsumerName: c.Name})
	WantErr(t, "CreateBundle(id marked deleting)", err, store.ErrConflict)
	_, err = f.S.GetBundle(f.Ctx, "missing")
	WantErr(t, "GetBundle(missing)", err, store.ErrNotFound)
	if n := len(f.Pending(c.Name)); n != 1 {
		t.Fatalf("outbox after failed creates has %d events; want 1 (the delete)", n)
	}
}

func testBundleUpdate(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name, WithName("web"), WithSource("src"))
	upd := b
	upd.Name, upd.Source = "ignored", "ignored"
	upd.Meta = api.ObjectMeta{Labels: map[string]string{"v": "2"}, Annotations: map[string]string{"a": "b"}}
	upd.Spec = SampleSpec("cm2")
	got, err := f.S.UpdateBundle(f.Ctx, upd, 0)
	NoErr(t, "UpdateBundle", err)
	if got.Generation != 2 || got.Name != "web" || got.Source != "src" || got.ConsumerName != c.Name {
		t.Fatalf("updated bundle generation %d name %q source %q; want 2, web, src", got.Generation, got.Name, got.Source)
	}
	if got.Meta.UID != b.ID || got.Meta.Name != "web" || got.Meta.Labels["v"] != "2" || got.Meta.Annotations["a"] != "b" {
		t.Fatalf("updated meta = %+v", got.Meta)
	}
	if !JSONEqual(t, got.Spec, SampleSpec("cm2")) || got.ChangeSeq <= b.ChangeSeq || !got.CreatedAt.Equal(b.CreatedAt) {
		t.Fatalf("updated bundle = %+v", got)
	}
	if read := f.Get(b.ID); !reflect.DeepEqual(read, got) {
		t.Fatalf("GetBundle after update = %+v\nwant %+v", read, got)
	}
	ev := f.Pending(c.Name)
	if len(ev) != 1 || ev[0].Generation != 2 || ev[0].Op != store.OpUpsert {
		t.Fatalf("outbox after update = %+v; want one upsert at generation 2 (superseding 1)", ev)
	}

	_, err = f.S.UpdateBundle(f.Ctx, upd, 1)
	WantErr(t, "UpdateBundle(expected generation 1)", err, store.ErrConflict)
	got3, err := f.S.UpdateBundle(f.Ctx, upd, 2)
	NoErr(t, "UpdateBundle(expected generation 2)", err)
	if got3.Generation != 3 {
		t.Fatalf("generation after second update = %d; want 3", got3.Generation)
	}
	_, err = f.S.UpdateBundle(f.Ctx, store.Bundle{ID: "missing"}, 0)
	WantErr(t, "UpdateBundle(missing)", err, store.ErrNotFound)
	_, err = f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle", err)
	_, err = f.S.UpdateBundle(f.Ctx, upd, 0)
	WantErr(t, "UpdateBundle(deleting)", err, store.ErrConflict)
}

func testBundleDeleteAndPurge(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	WantErr(t, "PurgeBundle(not deleting)", f.S.PurgeBundle(f.Ctx, b.ID, 10), store.ErrConflict)
	del, err := f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle", err)
	if del.DeletedAt == nil || del.Generation != 2 || del.ChangeSeq <= b.ChangeSeq {
		t.Fatalf("deleted bundle deletedAt %v generation %d seq %d; want set, 2, > %d", del.DeletedAt, del.Generation, del.ChangeSeq, b.ChangeSeq)
	}
	if read := f.Get(b.ID); !reflect.DeepEqual(read, del) {
		t.Fatalf("GetBundle after delete = %+v\nwant %+v", read, del)
	}
	ev := f.Pending(c.Name)
	if len(ev) != 1 || ev[0].Op != store.OpDelete || ev[0].Generation != 2 {
		t.Fatalf("outbox after delete = %+v; want one delete at generation 2", ev)
	}
	latest := f.Latest()
	again, err := f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle again", err)
	if !reflect.DeepEqual(again, del) || f.Latest() != latest || len(f.Pending(c.Name)) != 1 {
		t.Fatalf("second delete changed something: %+v, latest %d->%d", again, latest, f.Latest())
	}
	WantErr(t, "PurgeBundle(old generation)", f.S.PurgeBundle(f.Ctx, b.ID, 1), store.ErrConflict)
	NoErr(t, "PurgeBundle", f.S.PurgeBundle(f.Ctx, b.ID, 2))
	_, err = f.S.GetBundle(f.Ctx, b.ID)
	WantErr(t, "GetBundle after purge", err, store.ErrNotFound)
	if ev := f.Pending(c.Name); len(ev) != 0 {
		t.Fatalf("outbox after purge = %+v; want empty", ev)
	}
	changes, err := f.S.ChangesSince(f.Ctx, latest, 0)
	NoErr(t, "ChangesSince", err)
	if len(changes) != 1 || changes[0].Type != store.ChangeDeleted || changes[0].BundleID != b.ID || changes[0].Seq != latest+1 {
		t.Fatalf("changes after purge = %+v; want one DELETED at %d", changes, latest+1)
	}
	WantErr(t, "PurgeBundle(gone)", f.S.PurgeBundle(f.Ctx, b.ID, 2), store.ErrNotFound)
	_, err = f.S.DeleteBundle(f.Ctx, b.ID)
	WantErr(t, "DeleteBundle(gone)", err, store.ErrNotFound)
}

func testGenerationHighWaterMark(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name, WithID("same-id"))
	b2, err := f.S.UpdateBundle(f.Ctx, b, 0)
	NoErr(t, "UpdateBundle", err)
	del, err := f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle", err)
	if b2.Generation != 2 || del.Generation != 3 {
		t.Fatalf("generations %d, %d; want 2, 3", b2.Generation, del.Generation)
	}
	NoErr(t, "PurgeBundle", f.S.PurgeBundle(f.Ctx, b.ID, del.Generation))
	again := f.Bundle(c.Name, WithID("same-id"))
	if again.Generation != 4 {
		t.Fatalf("recreated id starts at generation %d; want 4 (above the purged 3)", again.Generation)
	}
	// Clients see versions counted within this life of the id.
	read, err := f.S.GetBundle(f.Ctx, again.ID)
	NoErr(t, "GetBundle", err)
	if again.Version() != 1 || read.Version() != 1 || read.FirstGeneration != 4 {
		t.Fatalf("recreated bundle: version %d (read %d, first generation %d); want 1 (4)", again.Version(), read.Version(), read.FirstGeneration)
	}
	upd, err := f.S.UpdateBundle(f.Ctx, read, read.GenerationOf(1))
	NoErr(t, "UpdateBundle(at version 1)", err)
	if upd.Version() != 2 || upd.Generation != 5 || upd.VersionOf(3) != 0 {
		t.Fatalf("after an update: version %d, generation %d, version of the old life's 3 = %d; want 2, 5, 0", upd.Version(), upd.Generation, upd.VersionOf(3))
	}
	_, err = f.S.UpdateBundle(f.Ctx, upd, upd.GenerationOf(1))
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "the current version is 2, not 1") {
		t.Fatalf("outdated update: %v; want a conflict naming versions 2 and 1", err)
	}
	again = upd
	// Purge through an agent report keeps the mark too.
	del, err = f.S.DeleteBundle(f.Ctx, again.ID)
	NoErr(t, "DeleteBundle", err)
	f.Apply(store.StatusUpdate{ConsumerName: c.Name, BundleID: again.ID, AgentEpoch: "e", AgentRevision: 1,
		ObservedGeneration: del.Generation, Deleted: true}, store.StatusPurged)
	third := f.Bundle(c.Name, WithID("same-id"))
	if third.Generation != 7 || third.Version() != 1 {
		t.Fatalf("id recreated after a purge by report starts at %d (version %d); want 7 (1)", third.Generation, third.Version())
	}
	if fresh := f.Bundle(c.Name, WithID("new-id")); fresh.Generation != 1 {
		t.Fatalf("brand-new id starts at generation %d; want 1", fresh.Generation)
	}
}

func testChangeLog(t *testing.T, f *F) {
	if f.Latest() != 0 {
		t.Fatalf("latest change of an empty store = %d; want 0", f.Latest())
	}
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name, WithSource("s1"))
	_, err := f.S.UpdateBundle(f.Ctx, b, 0)
	NoErr(t, "UpdateBundle", err)
	f.Apply(store.StatusUpdate{ConsumerName: c.Name, BundleID: b.ID, AgentEpoch: "e", AgentRevision: 1,
		ObservedGeneration: 2, Reported: SampleStatus("1"), Hash: "h1", SequenceID: "1"}, store.StatusAccepted)
	del, err := f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle", err)
	NoErr(t, "PurgeBundle", f.S.PurgeBundle(f.Ctx, b.ID, del.Generation))
	all, err := f.S.ChangesSince(f.Ctx, 0, 0)
	NoErr(t, "ChangesSince", err)
	wantTypes := []store.ChangeType{store.ChangeCreated, store.ChangeUpdated, store.ChangeUpdated, store.ChangeUpdated, store.ChangeDeleted}
	if len(all) != len(wantTypes) {
		t.Fatalf("changes = %+v; want %d", all, len(wantTypes))
	}
	for i, ch := range all {
		if ch.Seq != int64(i+1) || ch.Type != wantTypes[i] || ch.BundleID != b.ID || ch.Consumer != "c" || ch.Source != "s1" {
			t.Fatalf("change %d = %+v; want seq %d type %s", i, ch, i+1, wantTypes[i])
		}
	}
	if f.Latest() != 5 {
		t.Fatalf("latest change = %d; want 5", f.Latest())
	}
	page, err := f.S.ChangesSince(f.Ctx, 2, 2)
	NoErr(t, "ChangesSince(2, 2)", err)
	if len(page) != 2 || page[0].Seq != 3 || page[1].Seq != 4 {
		t.Fatalf("ChangesSince(2, limit 2) = %+v; want seqs 3, 4", page)
	}
	tail, err := f.S.ChangesSince(f.Ctx, 5, 10)
	NoErr(t, "ChangesSince(5)", err)
	if len(tail) != 0 {
		t.Fatalf("ChangesSince(latest) = %+v; want none", tail)
	}
}

func testConcurrentCreate(t *testing.T, f *F) {
	const workers, each = 8, 15
	for w := range workers {
		f.Consumer(fmt.Sprintf("c%d", w), nil)
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	seqs := make([][]int64, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				b, err := f.S.CreateBundle(f.Ctx, store.Bundle{ConsumerName: fmt.Sprintf("c%d", w),
					Name: fmt.Sprintf("b-%d-%d", w, i), Spec: SampleSpec("x")})
				if err != nil {
					errs[w] = err
					return
				}
				seqs[w] = append(seqs[w], b.ChangeSeq)
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		NoErr(t, fmt.Sprintf("worker %d", w), err)
	}
	seen := map[int64]bool{}
	for _, s := range seqs {
		for _, q := range s {
			if seen[q] {
				t.Fatalf("change seq %d given twice", q)
			}
			seen[q] = true
		}
	}
	if total := int64(workers * each); f.Latest() != total || len(seen) != int(total) {
		t.Fatalf("latest change %d, distinct seqs %d; want %d", f.Latest(), len(seen), total)
	}
	page, err := f.S.ListBundles(f.Ctx, store.ListOptions{})
	NoErr(t, "ListBundles", err)
	if page.Total != workers*each || len(page.Items) != workers*each {
		t.Fatalf("listed %d of total %d; want %d", len(page.Items), page.Total, workers*each)
	}
	pending, err := f.S.ConsumersWithPending(f.Ctx)
	NoErr(t, "ConsumersWithPending", err)
	if len(pending) != workers {
		t.Fatalf("consumers with pending = %v; want %d", pending, workers)
	}
}

func testConcurrentUpdate(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	const workers, each = 8, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	gens := map[int64]bool{}
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for range each {
				got, err := f.S.UpdateBundle(f.Ctx, b, 0)
				if err != nil {
					errs[w] = err
					return
				}
				mu.Lock()
				gens[got.Generation] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		NoErr(t, fmt.Sprintf("worker %d", w), err)
	}
	if len(gens) != workers*each {
		t.Fatalf("%d distinct generations from %d updates", len(gens), workers*each)
	}
	if got := f.Get(b.ID); got.Generation != 1+workers*each {
		t.Fatalf("final generation %d; want %d", got.Generation, 1+workers*each)
	}
	if ev := f.Pending(c.Name); len(ev) != 1 || ev[0].Generation != 1+workers*each {
		t.Fatalf("outbox = %+v; want one event at the final generation", ev)
	}
}

func testListBundlesByConsumer(t *testing.T, f *F) {
	a, other := f.Consumer("a", nil), f.Consumer("b", nil)
	b1 := f.Bundle(a.Name, WithName("1"))
	b2 := f.Bundle(a.Name, WithName("2"))
	f.Bundle(other.Name)
	_, err := f.S.DeleteBundle(f.Ctx, b2.ID)
	NoErr(t, "DeleteBundle", err)
	got, err := f.S.ListBundlesByConsumer(f.Ctx, a.Name)
	NoErr(t, "ListBundlesByConsumer", err)
	if !reflect.DeepEqual(ids(got), []string{b1.ID, b2.ID}) || got[1].DeletedAt == nil {
		t.Fatalf("bundles of a = %v; want [%s %s], the second deleting", ids(got), b1.ID, b2.ID)
	}
	none, err := f.S.ListBundlesByConsumer(f.Ctx, "nobody")
	NoErr(t, "ListBundlesByConsumer(nobody)", err)
	if len(none) != 0 {
		t.Fatalf("bundles of an unknown consumer = %v; want none", ids(none))
	}
}

func testBundleRoundTrip(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	spec := SampleSpec("full")
	spec.Manifests = append(spec.Manifests, json.RawMessage(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns"}}`))
	spec.DeleteOption = &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan}
	spec.ManifestConfigs = []workv1.ManifestConfigOption{{
		ResourceIdentifier: workv1.ResourceIdentifier{Resource: "configmaps", Name: "full", Namespace: "default"},
		FeedbackRules: []workv1.FeedbackRule{{Type: workv1.JSONPathsType,
			JsonPaths: []workv1.JsonPath{{Name: "k", Path: ".data.k"}}}},
	}}
	meta := api.ObjectMeta{Name: "meta-name", Namespace: "ns", ResourceVersion: "7",
		Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"x": "y"}}
	b := f.Bundle(c.Name, func(b *store.Bundle) { b.Name, b.Meta, b.Spec = "n", meta, spec })
	got := f.Get(b.ID)
	if !JSONEqual(t, got.Spec, spec) {
		t.Fatalf("spec round trip:\n got %+v\nwant %+v", got.Spec, spec)
	}
	meta.UID = b.ID
	if !reflect.DeepEqual(got.Meta, meta) {
		t.Fatalf("meta round trip = %+v; want %+v", got.Meta, meta)
	}
}

// testReturnedCopies checks that callers may modify what the store returns.
func testReturnedCopies(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name, WithLabels(map[string]string{"a": "b"}), func(b *store.Bundle) {
		b.Spec = RealisticBundle(c.Name, 1).Spec
	})
	f.Apply(store.StatusUpdate{ConsumerName: c.Name, BundleID: b.ID, AgentEpoch: "e", AgentRevision: 1,
		ObservedGeneration: 1, Reported: RealisticStatus(1), Hash: "h", SequenceID: "1"}, store.StatusAccepted)
	want := f.Get(b.ID)
	for range 2 {
		got := f.Get(b.ID)
		got.Meta.Labels["a"] = "changed"
		got.Spec.ManifestConfigs[0].FeedbackRules[0].JsonPaths[0].Path = "changed"
		got.Spec.Manifests[0] = nil
		got.Status.Reported.Conditions[0].Reason = "changed"
		got.Status.Reported.ResourceStatus[1].Conditions[0].Message = "changed"
		*got.Status.Reported.ResourceStatus[1].StatusFeedbacks.Values[0].Value.String = "changed"
		p, err := f.S.ListBundles(f.Ctx, store.ListOptions{})
		NoErr(t, "ListBundles", err)
		p.Items[0].Status.Reported.ResourceStatus[0].Observed.UID = "changed"
		p.Items[0].Meta.Labels["x"] = "y"
	}
	if got := f.Get(b.ID); !reflect.DeepEqual(got, want) {
		t.Fatalf("modifying returned bundles changed the store:\n got %+v\nwant %+v", got, want)
	}
}

// testConcurrentMixed runs whole bundle lifecycles from several goroutines
// while the agent state changes, and checks none fails (no deadlock, no busy
// database) and the change log stays gapless.
func testConcurrentMixed(t *testing.T, f *F) {
	const workers, rounds = 8, 4
	f.Consumer("c", nil)
	NoErr(t, "SetAgentState", f.S.SetAgentState(f.Ctx, "c", store.AgentState{Connected: true, Epoch: "e"}))
	var wg sync.WaitGroup
	errs := make([]error, workers+1)
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := f.S.SetAgentState(f.Ctx, "c", store.AgentState{Connected: true, Epoch: "e", LastHeartbeat: time.Now()}); err != nil {
				errs[workers] = err
				return
			}
		}
	})
	var lifecycles sync.WaitGroup
	for w := range workers {
		lifecycles.Go(func() { errs[w] = lifecycle(f, w, rounds) })
	}
	lifecycles.Wait()
	close(stop)
	wg.Wait()
	for i, err := range errs {
		NoErr(t, fmt.Sprintf("goroutine %d", i), err)
	}
	changes, err := f.S.ChangesSince(f.Ctx, 0, 0)
	NoErr(t, "ChangesSince", err)
	for i, ch := range changes {
		if ch.Seq != int64(i+1) {
			t.Fatalf("change %d has seq %d; want a gapless log", i, ch.Seq)
		}
	}
	// Per lifecycle: create, update, status, delete, purge.
	if len(changes) != workers*rounds*5 || f.Latest() != int64(len(changes)) {
		t.Fatalf("%d changes, latest %d; want %d", len(changes), f.Latest(), workers*rounds*5)
	}
	if left := f.names(nil); len(left) != 0 {
		t.Fatalf("bundles left: %v", left)
	}
}

func lifecycle(f *F, w, rounds int) error {
	for r := range rounds {
		b, err := f.S.CreateBundle(f.Ctx, store.Bundle{ConsumerName: "c", Spec: SampleSpec("x")})
		if err != nil {
			return err
		}
		if b, err = f.S.UpdateBundle(f.Ctx, b, b.Generation); err != nil {
			return err
		}
		res, _, err := f.S.ApplyStatus(f.Ctx, store.StatusUpdate{ConsumerName: "c", BundleID: b.ID, AgentEpoch: "e",
			AgentRevision: 1, ObservedGeneration: b.Generation, Reported: SampleStatus(b.ID), Hash: b.ID, SequenceID: "1"})
		if err != nil || res != store.StatusAccepted {
			return fmt.Errorf("worker %d round %d: status %s, %v", w, r, ResultName(res), err)
		}
		if _, err := f.S.ConfirmStatus(f.Ctx, "c", b.ID, b.ID, time.Now()); err != nil {
			return err
		}
		if err := f.S.AckOutbox(f.Ctx, "c", b.ID, b.Generation); err != nil {
			return err
		}
		del, err := f.S.DeleteBundle(f.Ctx, b.ID)
		if err != nil {
			return err
		}
		res, _, err = f.S.ApplyStatus(f.Ctx, store.StatusUpdate{ConsumerName: "c", BundleID: b.ID, AgentEpoch: "e",
			AgentRevision: 2, ObservedGeneration: del.Generation, Deleted: true})
		if err != nil || res != store.StatusPurged {
			return fmt.Errorf("worker %d round %d: deleted report %s, %v", w, r, ResultName(res), err)
		}
	}
	return nil
}
