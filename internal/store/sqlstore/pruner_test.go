package sqlstore_test

import (
	"context"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/sqlstore"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// eachWithClock runs fn on a fresh SQLite and PostgreSQL store stamping
// times with clk.
func eachWithClock(t *testing.T, clk *clocktesting.FakeClock, fn func(t *testing.T, s *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, storetest.NewSQLiteWith(t, storetest.Options{Clock: clk}).(*sqlstore.Store))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, storetest.NewPostgresWith(t, storetest.Options{Clock: clk}).(*sqlstore.Store))
	})
}

func seqs(t *testing.T, s store.Store) []int64 {
	t.Helper()
	changes, err := s.ChangesSince(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := []int64{}
	for _, c := range changes {
		out = append(out, c.Seq)
	}
	return out
}

func createN(t *testing.T, s store.Store, n int) {
	t.Helper()
	for range n {
		if _, err := s.CreateBundle(context.Background(), store.Bundle{ConsumerName: "c"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPrunerKeepsRecentAndNewest checks a change is deleted only when it is
// both older than KeepFor and not among the newest KeepChanges.
func TestPrunerKeepsRecentAndNewest(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	eachWithClock(t, clocktesting.NewFakeClock(t0), func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clk := clocktesting.NewFakeClock(t0)
		if _, err := s.CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
			t.Fatal(err)
		}
		p := sqlstore.NewPruner(s, sqlstore.PrunerOptions{KeepChanges: 4, KeepFor: time.Hour, Clock: clk})
		createN(t, s, 10) // seqs 1-10, written at t0
		if n, err := p.Prune(ctx); err != nil || n != 0 {
			t.Fatalf("Prune at t0 = %d, %v; want 0 (all younger than KeepFor)", n, err)
		}
		clk.Step(2 * time.Hour)
		if n, err := p.Prune(ctx); err != nil || n != 6 {
			t.Fatalf("Prune two hours later = %d, %v; want 6 (all but the newest 4)", n, err)
		}
		if got := seqs(t, s); len(got) != 4 || got[0] != 7 {
			t.Fatalf("changes left %v; want 7-10", got)
		}
		if latest, err := s.LatestChange(ctx); err != nil || latest != 10 {
			t.Fatalf("LatestChange after prune = %d, %v; want 10", latest, err)
		}
	})
}

// TestPrunerKeepsYoungChanges checks changes younger than KeepFor stay even
// beyond KeepChanges.
func TestPrunerKeepsYoungChanges(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	storeClock := clocktesting.NewFakeClock(t0)
	eachWithClock(t, storeClock, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		storeClock.SetTime(t0)
		if _, err := s.CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
			t.Fatal(err)
		}
		createN(t, s, 5) // seqs 1-5 at t0
		storeClock.Step(50 * time.Minute)
		createN(t, s, 5) // seqs 6-10 at t0+50m
		clk := clocktesting.NewFakeClock(t0.Add(90 * time.Minute))
		p := sqlstore.NewPruner(s, sqlstore.PrunerOptions{KeepChanges: 2, KeepFor: time.Hour, Clock: clk})
		if n, err := p.Prune(ctx); err != nil || n != 5 {
			t.Fatalf("Prune = %d, %v; want 5 (only the ones older than an hour)", n, err)
		}
		if got := seqs(t, s); len(got) != 5 || got[0] != 6 {
			t.Fatalf("changes left %v; want 6-10", got)
		}
	})
}

// TestPrunerStart checks Start prunes at once and on every tick, and
// returns nil when its context ends.
func TestPrunerStart(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	eachWithClock(t, clocktesting.NewFakeClock(t0), func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		if _, err := s.CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
			t.Fatal(err)
		}
		createN(t, s, 6)
		clk := clocktesting.NewFakeClock(t0.Add(2 * time.Hour))
		p := sqlstore.NewPruner(s, sqlstore.PrunerOptions{Interval: time.Minute, KeepChanges: 3, KeepFor: time.Hour, Clock: clk})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Start(runCtx) }()
		waitFor(t, func() bool { return len(seqs(t, s)) == 3 }, "first pass to keep 3 changes")
		createN(t, s, 3) // 7-9, at t0: old, so 4-6 go at the next tick
		waitFor(t, clk.HasWaiters, "the pruner to wait for its ticker")
		clk.Step(time.Minute)
		waitFor(t, func() bool { got := seqs(t, s); return len(got) == 3 && got[0] == 7 }, "a tick to prune to 7-9")
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Start returned %v; want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Start did not return after its context ended")
		}
	})
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
