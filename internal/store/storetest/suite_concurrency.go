package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/baton-dev/baton/internal/store"
)

// concurrencyTests check what concurrent writers must not break: writes
// that fail next to ones that succeed leave no trace, a cancelled write
// writes nothing, and a reader tailing the change log never skips a value
// that commits later.
var concurrencyTests = map[string]func(*testing.T, *F){
	"ConcurrentCreateWithFailures": testConcurrentCreateWithFailures,
	"CancelledWriteWritesNothing":  testCancelledWrite,
	"ChangeTailNeverSkips":         testChangeTailNeverSkips,
	"FailedCreateLeavesNoTrace":    testFailedCreateLeavesNoTrace,
}

// testConcurrentCreateWithFailures interleaves creates that fail (taken id,
// unknown consumer) with creates that succeed from several goroutines, so
// that failing and succeeding writes share transactions where the store
// groups them.
func testConcurrentCreateWithFailures(t *testing.T, f *F) {
	const workers, each = 8, 15
	f.Consumer("c", nil)
	f.Bundle("c", WithID("taken"))
	var wg sync.WaitGroup
	errs := make([]error, workers)
	var mu sync.Mutex
	seqs := map[int64]string{}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				b, err := f.S.CreateBundle(f.Ctx, store.Bundle{ID: fmt.Sprintf("w%d-%d", w, i), ConsumerName: "c", Spec: SampleSpec("x")})
				if err != nil {
					errs[w] = err
					return
				}
				if b.Generation != 1 {
					errs[w] = fmt.Errorf("bundle %s: generation %d; want 1", b.ID, b.Generation)
					return
				}
				mu.Lock()
				seqs[b.ChangeSeq] = b.ID
				mu.Unlock()
				if _, err := f.S.CreateBundle(f.Ctx, store.Bundle{ID: "taken", ConsumerName: "c"}); !errors.Is(err, store.ErrConflict) {
					errs[w] = fmt.Errorf("create of a taken id: %v; want ErrConflict", err)
					return
				}
				if _, err := f.S.CreateBundle(f.Ctx, store.Bundle{ConsumerName: "ghost"}); !errors.Is(err, store.ErrNotFound) {
					errs[w] = fmt.Errorf("create for an unknown consumer: %v; want ErrNotFound", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		NoErr(t, fmt.Sprintf("worker %d", w), err)
	}
	total := workers*each + 1
	if len(seqs) != workers*each || f.Latest() != int64(total) {
		t.Fatalf("%d distinct change seqs, latest %d; want %d and %d", len(seqs), f.Latest(), workers*each, total)
	}
	changes, err := f.S.ChangesSince(f.Ctx, 0, 0)
	NoErr(t, "ChangesSince", err)
	if len(changes) != total {
		t.Fatalf("%d changes; want %d", len(changes), total)
	}
	for i, ch := range changes {
		if ch.Seq != int64(i+1) || ch.Type != store.ChangeCreated {
			t.Fatalf("change %d = %+v; want a gapless log of creates", i, ch)
		}
		if id, ok := seqs[ch.Seq]; ok && id != ch.BundleID {
			t.Fatalf("change %d is of %s; the create returned it for %s", ch.Seq, ch.BundleID, id)
		}
	}
	if n := len(f.Pending("c")); n != total {
		t.Fatalf("%d outbox events; want %d", n, total)
	}
	if got := f.Get("taken"); got.Generation != 1 {
		t.Fatalf("taken id at generation %d after failed creates; want 1", got.Generation)
	}
}

// testCancelledWrite checks a write whose context is already cancelled
// fails with the context's error and changes nothing, also while other
// writers keep the store busy.
func testCancelledWrite(t *testing.T, f *F) {
	f.Consumer("c", nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var busyErr atomic.Value
	var created atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := f.S.CreateBundle(f.Ctx, store.Bundle{ConsumerName: "c"}); err != nil {
					busyErr.Store(err)
					return
				}
				created.Add(1)
			}
		})
	}
	cancelled, cancel := context.WithCancel(f.Ctx)
	cancel()
	for i := range 20 {
		_, err := f.S.CreateBundle(cancelled, store.Bundle{ID: fmt.Sprintf("cancelled-%d", i), ConsumerName: "c"})
		WantErr(t, "CreateBundle(cancelled)", err, context.Canceled)
	}
	close(stop)
	wg.Wait()
	if err, _ := busyErr.Load().(error); err != nil {
		t.Fatalf("concurrent create: %v", err)
	}
	for i := range 20 {
		if _, err := f.S.GetBundle(f.Ctx, fmt.Sprintf("cancelled-%d", i)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("bundle of a cancelled create: %v; want ErrNotFound", err)
		}
	}
	if n := created.Load(); f.Latest() != n {
		t.Fatalf("latest change %d after %d successful creates", f.Latest(), n)
	}
}

// testChangeTailNeverSkips tails the change log like a watcher while
// writers create, update and report status: every poll must continue
// exactly where the previous one ended (the log is gapless), so a value
// that commits after a higher one became visible would be caught.
func testChangeTailNeverSkips(t *testing.T, f *F) {
	const workers, each = 6, 12
	f.Consumer("c", nil)
	NoErr(t, "SetAgentState", f.S.SetAgentState(f.Ctx, "c", store.AgentState{Connected: true, Epoch: "e"}))
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				b, err := f.S.CreateBundle(f.Ctx, store.Bundle{ConsumerName: "c", Spec: SampleSpec("x")})
				if err == nil {
					_, _, err = f.S.ApplyStatus(f.Ctx, store.StatusUpdate{ConsumerName: "c", BundleID: b.ID,
						AgentEpoch: "e", AgentRevision: int64(i + 1), ObservedGeneration: 1,
						Reported: SampleStatus(b.ID), Hash: b.ID, SequenceID: "1"})
				}
				if err == nil {
					_, err = f.S.UpdateBundle(f.Ctx, b, 0)
				}
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	want := int64(workers * each * 3)
	var last int64
	for finished := false; !finished || last < want; {
		select {
		case <-done:
			finished = true
		default:
		}
		changes, err := f.S.ChangesSince(f.Ctx, last, 7)
		NoErr(t, "ChangesSince", err)
		for _, ch := range changes {
			if ch.Seq != last+1 {
				t.Fatalf("tail at %d read change %d: a change was skipped", last, ch.Seq)
			}
			last = ch.Seq
		}
		if finished && len(changes) == 0 && last < want {
			t.Fatalf("tail ended at %d; want %d", last, want)
		}
	}
	for w, err := range errs {
		NoErr(t, fmt.Sprintf("worker %d", w), err)
	}
	if f.Latest() != want {
		t.Fatalf("latest change %d; want %d", f.Latest(), want)
	}
}

// testFailedCreateLeavesNoTrace checks a refused create takes no
// generation, change or outbox event.
func testFailedCreateLeavesNoTrace(t *testing.T, f *F) {
	f.Consumer("c", nil)
	b := f.Bundle("c", WithID("b"))
	latest, pending := f.Latest(), f.Pending("c")
	for range 3 {
		_, err := f.S.CreateBundle(f.Ctx, store.Bundle{ID: "b", ConsumerName: "c"})
		WantErr(t, "CreateBundle(taken id)", err, store.ErrConflict)
		_, err = f.S.CreateBundle(f.Ctx, store.Bundle{ID: "fresh", ConsumerName: "ghost"})
		WantErr(t, "CreateBundle(unknown consumer)", err, store.ErrNotFound)
	}
	if f.Latest() != latest || !reflect.DeepEqual(f.Pending("c"), pending) {
		t.Fatalf("failed creates moved the change log (%d -> %d) or the outbox", latest, f.Latest())
	}
	if got := f.Get(b.ID); !reflect.DeepEqual(got, b) {
		t.Fatalf("bundle after failed creates = %+v; want %+v", got, b)
	}
	if fresh := f.Bundle("c", WithID("fresh")); fresh.Generation != 1 {
		t.Fatalf("id first refused then created starts at generation %d; want 1", fresh.Generation)
	}
	del, err := f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle", err)
	NoErr(t, "PurgeBundle", f.S.PurgeBundle(f.Ctx, b.ID, del.Generation))
	if again := f.Bundle("c", WithID("b")); again.Generation != del.Generation+1 {
		t.Fatalf("recreated id at generation %d; want %d", again.Generation, del.Generation+1)
	}
}
