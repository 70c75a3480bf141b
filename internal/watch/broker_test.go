package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

func setup(t *testing.T, st store.Store, consumers ...string) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, c := range consumers {
		if _, err := st.CreateConsumer(ctx, store.Consumer{Name: c}); err != nil {
			t.Fatal(err)
		}
	}
	return ctx
}

func start(t *testing.T, ctx context.Context, b *Broker) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
}

func create(t *testing.T, ctx context.Context, st store.Store, consumer, id string) store.Bundle {
	t.Helper()
	b, err := st.CreateBundle(ctx, store.Bundle{ID: id, ConsumerName: consumer, Meta: api.ObjectMeta{Labels: map[string]string{"app": id}},
		Spec: api.BundleSpec{Manifests: []json.RawMessage{json.RawMessage(`{"kind":"ConfigMap"}`)}}})
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	return b
}

func recv(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a change")
		panic("unreachable")
	}
}

func TestLiveChangesWithFilter(t *testing.T) {
	st := storetest.NewSQLite(t)
	ctx := setup(t, st, "c1", "c2")
	create(t, ctx, st, "c1", "before") // history: not replayed from now
	b := New(st, WithPollInterval(time.Hour))
	start(t, ctx, b)
	for b.Last() == 0 {
		time.Sleep(time.Millisecond)
	}
	ch, cancel := b.Subscribe(func(c store.Change) bool { return c.Consumer == "c2" }, FromNow)
	defer cancel()
	create(t, ctx, st, "c1", "other")
	want := create(t, ctx, st, "c2", "mine")
	b.Kick()
	c := recv(t, ch)
	if c.BundleID != "mine" || c.Type != store.ChangeCreated || c.Seq != want.ChangeSeq {
		t.Fatalf("got %+v; want ADDED of mine at seq %d", c, want.ChangeSeq)
	}
}

// TestResumeWithoutGaps subscribes from the middle of a stream of writes and
// checks it sees every change after since exactly once, in order.
func TestResumeWithoutGaps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := setup(t, st, "c1")
		for i := range 20 {
			create(t, ctx, st, "c1", fmt.Sprintf("old-%d", i))
		}
		b := New(st, WithPollInterval(5*time.Millisecond))
		start(t, ctx, b)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // keep writing while the subscriber catches up
			defer wg.Done()
			for i := range 40 {
				create(t, ctx, st, "c1", fmt.Sprintf("new-%d", i))
			}
		}()
		const since = 7
		ch, cancel := b.Subscribe(nil, since)
		defer cancel()
		wg.Wait()
		latest, err := st.LatestChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, err := st.ChangesSince(ctx, since, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range all {
			got := recv(t, ch)
			if got != want {
				t.Fatalf("change %d: got %+v; want %+v", i, got, want)
			}
		}
		if all[len(all)-1].Seq != latest {
			t.Fatalf("store: last change %d; latest %d", all[len(all)-1].Seq, latest)
		}
		select {
		case c := <-ch:
			t.Fatalf("extra change %+v", c)
		case <-time.After(100 * time.Millisecond):
		}
	})
}

func TestSlowSubscriberDropped(t *testing.T) {
	b := New(nil, WithQueueSize(2))
	ch, cancel := b.Subscribe(nil, FromNow)
	defer cancel()
	for i := int64(1); i <= 10; i++ {
		b.Publish(store.Change{Seq: i}) // must not block
	}
	n := 0
	for range ch {
		n++
	}
	if n == 0 || n > 3 {
		t.Errorf("received %d changes before the close; want 1..3 (queue 2 plus one in hand)", n)
	}
	// Others are unaffected.
	ch2, cancel2 := b.Subscribe(nil, FromNow)
	defer cancel2()
	b.Publish(store.Change{Seq: 11})
	if c := recv(t, ch2); c.Seq != 11 {
		t.Errorf("got %d; want 11", c.Seq)
	}
}

func TestPublishIgnoresOldSequences(t *testing.T) {
	b := New(nil)
	ch, cancel := b.Subscribe(nil, FromNow)
	defer cancel()
	for _, s := range []int64{3, 2, 3, 4} {
		b.Publish(store.Change{Seq: s})
	}
	if a, c := recv(t, ch), recv(t, ch); a.Seq != 3 || c.Seq != 4 {
		t.Errorf("got %d, %d; want 3, 4", a.Seq, c.Seq)
	}
}

func TestCancelClosesChannel(t *testing.T) {
	b := New(nil)
	ch, cancel := b.Subscribe(nil, FromNow)
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	b.Publish(store.Change{Seq: 1}) // no subscriber left; must not panic
}

// gatedStore holds the first ChangesSince call made after hold is set until
// release is closed.
type gatedStore struct {
	store.Store
	calls   atomic.Int64
	hold    atomic.Bool
	release chan struct{}
}

func (g *gatedStore) ChangesSince(ctx context.Context, seq int64, limit int) ([]store.Change, error) {
	g.calls.Add(1)
	if g.hold.CompareAndSwap(true, false) {
		<-g.release
	}
	return g.Store.ChangesSince(ctx, seq, limit)
}

// TestResumeOverlapNoDuplicates forces the overlap of backlog and live
// queue: changes are published live while the subscriber's backlog read is
// held, so the read returns them too. Each must arrive once.
func TestResumeOverlapNoDuplicates(t *testing.T) {
	st := &gatedStore{Store: storetest.NewSQLite(t), release: make(chan struct{})}
	ctx := setup(t, st, "c1")
	for i := range 10 {
		create(t, ctx, st, "c1", fmt.Sprintf("old-%d", i))
	}
	b := New(st, WithPollInterval(time.Hour))
	start(t, ctx, b)
	for st.calls.Load() == 0 { // the poller's first read
		time.Sleep(time.Millisecond)
	}
	st.hold.Store(true)
	ch, cancel := b.Subscribe(nil, 3)
	defer cancel()
	for st.hold.Load() { // the subscriber's backlog read is now held
		time.Sleep(time.Millisecond)
	}
	for i := range 5 {
		create(t, ctx, st, "c1", fmt.Sprintf("new-%d", i))
	}
	latest, _ := st.LatestChange(ctx)
	b.Kick()
	for b.Last() < latest {
		time.Sleep(time.Millisecond)
	}
	close(st.release)
	for want := int64(4); want <= latest; want++ {
		if c := recv(t, ch); c.Seq != want {
			t.Fatalf("got seq %d; want %d", c.Seq, want)
		}
	}
	select {
	case c := <-ch:
		t.Fatalf("extra change %+v", c)
	case <-time.After(100 * time.Millisecond):
	}
}
