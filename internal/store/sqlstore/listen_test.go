package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/sqlstore"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// TestListenSeesOtherReplicasWrites: two stores on one PostgreSQL database
// (two replicas); a bundle written through one is notified to the other's
// listener at once, for its consumer's outbox and for the change log.
func TestListenSeesOtherReplicasWrites(t *testing.T) {
	url := storetest.PostgresURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *sqlstore.Store {
		s, err := sqlstore.Open(ctx, sqlstore.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	var mu sync.Mutex
	outbox, changes := map[string]int{}, 0
	done := make(chan error, 1)
	go func() {
		done <- b.Listen(ctx, sqlstore.Listeners{
			Outbox:  func(c string) { mu.Lock(); outbox[c]++; mu.Unlock() },
			Changes: func() { mu.Lock(); changes++; mu.Unlock() },
		})
	}()
	// The listener reports Changes once when it is listening.
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return changes > 0 }, "listener up")
	mu.Lock()
	before := changes
	mu.Unlock()
	if _, err := a.CreateConsumer(ctx, store.Consumer{Name: "c1"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := a.CreateBundle(ctx, store.Bundle{ConsumerName: "c1", Spec: storetest.SampleSpec("cm")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return outbox["c1"] > 0 && changes > before
	}, "outbox and change notifications")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("notification took %s; want well under the poll fallback", d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Listen = %v after cancel; want nil", err)
	}
}
