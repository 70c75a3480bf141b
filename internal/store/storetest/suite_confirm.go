package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

// confirmTests cover ConfirmStatuses, the digest-wide ConfirmStatus.
var confirmTests = map[string]func(*testing.T, *F){
	"ConfirmStatusesDigest": testConfirmStatusesDigest,
	"ConfirmStatusesMixed":  testConfirmStatusesMixed,
	"ConfirmStatusesLarge":  testConfirmStatusesLarge,
	"ConfirmStatusesEmpty":  testConfirmStatusesEmpty,
}

// confirmAll calls ConfirmStatuses and returns the sorted mismatched ids.
func (f *F) confirmAll(consumer string, digest map[string]string, at time.Time) []string {
	f.T.Helper()
	mis, err := f.S.ConfirmStatuses(f.Ctx, consumer, digest, at)
	if err != nil {
		f.T.Fatalf("ConfirmStatuses(%s, %d entries): %v", consumer, len(digest), err)
	}
	slices.Sort(mis)
	return mis
}

// testConfirmStatusesDigest is testConfirmStatusDigest through ConfirmStatuses.
func testConfirmStatusesDigest(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	acc := f.Apply(report(b, "e1", 1, "a"), store.StatusAccepted)
	latest := f.Latest()

	at := t0.Add(time.Hour)
	mis := f.confirmAll(c.Name, map[string]string{b.ID: "hash-a"}, at)
	got := f.Get(b.ID)
	if len(mis) != 0 || !got.Status.ConfirmedAt.Equal(at) || got.Status.DigestMismatch || f.Latest() != latest || got.ChangeSeq != acc.ChangeSeq {
		t.Fatalf("after matching digest: mismatched %v status %+v latest %d->%d", mis, got.Status, latest, f.Latest())
	}
	// An older confirmation does not move ConfirmedAt back.
	f.confirmAll(c.Name, map[string]string{b.ID: "hash-a"}, at.Add(-time.Minute))
	if got := f.Get(b.ID); !got.Status.ConfirmedAt.Equal(at) {
		t.Fatalf("ConfirmedAt moved back to %v", got.Status.ConfirmedAt)
	}

	mis = f.confirmAll(c.Name, map[string]string{b.ID: "hash-other"}, at.Add(time.Minute))
	got = f.Get(b.ID)
	if !slices.Equal(mis, []string{b.ID}) || !got.Status.DigestMismatch || !got.Status.ConfirmedAt.Equal(at) || got.ChangeSeq <= acc.ChangeSeq {
		t.Fatalf("after mismatching digest: mismatched %v status %+v seq %d", mis, got.Status, got.ChangeSeq)
	}
	if got.Status.Revision != 1 || got.Status.Hash != "hash-a" {
		t.Fatalf("mismatch changed the stored status: %+v", got.Status)
	}
	// A second mismatch is no new change.
	latest = f.Latest()
	f.confirmAll(c.Name, map[string]string{b.ID: "hash-other"}, at.Add(90*time.Second))
	if again := f.Get(b.ID); f.Latest() != latest || again.ChangeSeq != got.ChangeSeq {
		t.Fatalf("repeated mismatch logged a change: latest %d->%d", latest, f.Latest())
	}
	// The next accepted report clears the mismatch.
	cleared := f.Apply(report(b, "e1", 2, "b"), store.StatusAccepted)
	if cleared.Status.DigestMismatch || f.Get(b.ID).Status.DigestMismatch {
		t.Fatal("accepted report left DigestMismatch set")
	}
	// Another consumer's digest and unknown ids touch nothing.
	latest = f.Latest()
	if mis := f.confirmAll("ghost", map[string]string{b.ID: "nope"}, at.Add(100*time.Minute)); len(mis) != 0 {
		t.Fatalf("other consumer's digest: mismatched %v; want none", mis)
	}
	if mis := f.confirmAll(c.Name, map[string]string{"missing": "hash-b"}, at); len(mis) != 0 {
		t.Fatalf("unknown bundle: mismatched %v; want none", mis)
	}
	if got := f.Get(b.ID); !got.Status.ConfirmedAt.Equal(cleared.Status.ConfirmedAt) || got.Status.DigestMismatch || f.Latest() != latest {
		t.Fatalf("foreign digests changed the bundle: %+v latest %d->%d", got.Status, latest, f.Latest())
	}

	// A matching digest also clears a mismatch, as a change.
	f.confirmAll(c.Name, map[string]string{b.ID: "nope"}, at.Add(2*time.Minute))
	latest = f.Latest()
	mis = f.confirmAll(c.Name, map[string]string{b.ID: "hash-b"}, at.Add(3*time.Minute))
	got = f.Get(b.ID)
	if len(mis) != 0 || got.Status.DigestMismatch || !got.Status.ConfirmedAt.Equal(at.Add(3*time.Minute)) || f.Latest() <= latest || got.ChangeSeq != f.Latest() {
		t.Fatalf("after matching again: mismatched %v status %+v seq %d latest %d", mis, got.Status, got.ChangeSeq, f.Latest())
	}
}

// testConfirmStatusesMixed confirms, marks and ignores in one digest, and
// checks that only DigestMismatch flips are changes.
func testConfirmStatusesMixed(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	f.Consumer("other", nil)
	bs := make([]store.Bundle, 6)
	for i := range bs {
		bs[i] = f.Bundle(c.Name)
		f.Apply(report(bs[i], "e1", int64(i+1), fmt.Sprint(i)), store.StatusAccepted)
	}
	fresh := f.Bundle(c.Name) // no status yet: any digest hash differs
	foreign := f.Bundle("other")
	f.Apply(report(foreign, "e9", 1, "f"), store.StatusAccepted)
	foreignBefore := f.Get(foreign.ID)
	// bs[4] is already mismatched, bs[5] is mismatched and now matches.
	f.confirmAll(c.Name, map[string]string{bs[4].ID: "x", bs[5].ID: "x"}, t0.Add(time.Hour))

	at := t0.Add(2 * time.Hour)
	digest := map[string]string{
		bs[0].ID: "hash-0", bs[1].ID: "hash-1", // match
		bs[2].ID: "wrong", bs[3].ID: "hash-0", // newly mismatched
		bs[4].ID:   "still-wrong",                 // stays mismatched
		bs[5].ID:   "hash-5",                      // mismatch cleared
		fresh.ID:   "hash-fresh",                  // mismatched
		foreign.ID: "hash-f", "unknown": "hash-u", // ignored
	}
	latest := f.Latest()
	mis := f.confirmAll(c.Name, digest, at)
	want := []string{bs[2].ID, bs[3].ID, bs[4].ID, fresh.ID}
	slices.Sort(want)
	if !slices.Equal(mis, want) {
		t.Fatalf("mismatched = %v; want %v", mis, want)
	}
	for i, b := range bs {
		got := f.Get(b.ID)
		match := i < 2 || i == 5
		if got.Status.DigestMismatch == match {
			t.Errorf("bundle %d: DigestMismatch = %v; want %v", i, got.Status.DigestMismatch, !match)
		}
		if match && !got.Status.ConfirmedAt.Equal(at) {
			t.Errorf("bundle %d: ConfirmedAt = %v; want %v", i, got.Status.ConfirmedAt, at)
		}
		if !match && got.Status.ConfirmedAt.Equal(at) {
			t.Errorf("bundle %d: mismatched but confirmed at %v", i, at)
		}
	}
	if got := f.Get(fresh.ID); !got.Status.DigestMismatch || !got.Status.ConfirmedAt.IsZero() {
		t.Errorf("bundle without status: %+v; want DigestMismatch and no confirmation", got.Status)
	}
	if got := f.Get(foreign.ID); !got.Status.ConfirmedAt.Equal(foreignBefore.Status.ConfirmedAt) || got.Status.DigestMismatch || got.ChangeSeq != foreignBefore.ChangeSeq {
		t.Errorf("other consumer's bundle changed: %+v", got.Status)
	}
	changes, err := f.S.ChangesSince(f.Ctx, latest, 0)
	NoErr(t, "ChangesSince", err)
	var changed []string
	for _, ch := range changes {
		changed = append(changed, ch.BundleID)
	}
	slices.Sort(changed)
	wantChanged := []string{bs[2].ID, bs[3].ID, bs[5].ID, fresh.ID} // the flips
	slices.Sort(wantChanged)
	if !slices.Equal(changed, wantChanged) {
		t.Fatalf("changes = %v; want the DigestMismatch flips %v", changed, wantChanged)
	}
}

// testConfirmStatusesLarge confirms a 5,000-entry digest (half of it
// unknown ids) spread over several transactions.
func testConfirmStatusesLarge(t *testing.T, f *F) {
	const n, entries = 2500, 5000
	c := f.Consumer("c", nil)
	ids := make([]string, n)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				b, err := f.S.CreateBundle(f.Ctx, store.Bundle{ConsumerName: c.Name, Spec: SampleSpec("cm")})
				if err == nil {
					_, _, err = f.S.ApplyStatus(f.Ctx, store.StatusUpdate{ConsumerName: c.Name, BundleID: b.ID, AgentEpoch: "e1",
						AgentRevision: int64(i + 1), ObservedGeneration: b.Generation, Reported: SampleStatus("v"),
						Hash: fmt.Sprint("hash-", i), SequenceID: "1", At: t0})
				}
				if err != nil {
					errs[w] = err
					return
				}
				ids[i] = b.ID
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		NoErr(t, "populate", err)
	}
	digest := make(map[string]string, entries)
	var want []string
	for i, id := range ids {
		digest[id] = fmt.Sprint("hash-", i)
		if i%7 == 3 {
			digest[id] = "stale"
			want = append(want, id)
		}
	}
	for i := len(digest); i < entries; i++ {
		digest[fmt.Sprintf("unknown-%05d", i)] = "hash-u"
	}
	slices.Sort(want)
	latest := f.Latest()
	at := t0.Add(time.Hour)
	if mis := f.confirmAll(c.Name, digest, at); !slices.Equal(mis, want) {
		t.Fatalf("mismatched %d ids; want %d", len(mis), len(want))
	}
	if got := f.Latest() - latest; got != int64(len(want)) {
		t.Fatalf("%d changes logged; want %d (one per new mismatch)", got, len(want))
	}
	bundles, err := f.S.ListBundlesByConsumer(f.Ctx, c.Name)
	NoErr(t, "ListBundlesByConsumer", err)
	if len(bundles) != n {
		t.Fatalf("%d bundles; want %d", len(bundles), n)
	}
	bad := 0
	for _, b := range bundles {
		stale := digest[b.ID] == "stale"
		if b.Status.DigestMismatch != stale || b.Status.ConfirmedAt.Equal(at) == stale {
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d bundles not confirmed/marked as their digest entry says", bad, n)
	}
	// Confirming the same digest again changes nothing visible.
	latest = f.Latest()
	if mis := f.confirmAll(c.Name, digest, at.Add(time.Minute)); len(mis) != len(want) || f.Latest() != latest {
		t.Fatalf("second digest: %d mismatched, latest %d->%d", len(mis), latest, f.Latest())
	}
}

// testConfirmStatusesEmpty: an empty digest is no error and no change.
func testConfirmStatusesEmpty(t *testing.T, f *F) {
	f.Consumer("c", nil)
	latest := f.Latest()
	if mis := f.confirmAll("c", nil, t0); len(mis) != 0 || f.Latest() != latest {
		t.Fatalf("empty digest: mismatched %v latest %d->%d", mis, latest, f.Latest())
	}
}
