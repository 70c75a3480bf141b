package replica_test

import (
	"context"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/replica"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

func TestDefaultIDsDiffer(t *testing.T) {
	a, b := replica.DefaultID(), replica.DefaultID()
	if a == b {
		t.Fatalf("two default ids are equal: %q", a)
	}
	for _, id := range []string{a, b} {
		if err := replica.ValidateID(id); err != nil {
			t.Fatal(err)
		}
	}
	if replica.ValidateID("a/b") == nil || replica.ValidateID("") == nil {
		t.Fatal("invalid ids accepted")
	}
}

// TestOneLeaderAtATime runs two replicas on one database: both are live
// and ready, exactly one leads the cluster duties, and when it stops the
// other takes over within the lease TTL.
func TestOneLeaderAtATime(t *testing.T) {
	st := storetest.NewSQLite(t).(store.Leases)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const ttl = 300 * time.Millisecond
	a := replica.New(st, "a", replica.WithTTL(ttl))
	b := replica.New(st, "b", replica.WithTTL(ttl))
	actx, stopA := context.WithCancel(ctx)
	doneA := make(chan struct{})
	go func() { defer close(doneA); _ = a.Start(actx) }()
	waitFor(t, "a ready and leading", func() bool { return a.Ready() == nil && a.Leading() })
	go func() { _ = b.Start(ctx) }()
	waitFor(t, "b ready", func() bool { return b.Ready() == nil })
	if b.Leading() {
		t.Fatal("b leads while a holds the duties")
	}
	live, err := b.Live(ctx)
	if err != nil || !live["a"] || !live["b"] {
		t.Fatalf("Live = %v, %v; want a and b", live, err)
	}
	stopA()
	<-doneA
	start := time.Now()
	waitFor(t, "b leading after a stopped", b.Leading)
	if d := time.Since(start); d > 5*ttl {
		t.Fatalf("takeover took %s, want within a few TTLs", d)
	}
	if live, _ := b.Live(ctx); live["a"] {
		t.Fatalf("a stopped but is still live: %v", live)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
