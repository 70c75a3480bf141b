package replica_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/replica"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// TestOwnershipOneReplicaPerKey: with three live replicas every free key is
// served by exactly one of them; a key whose lease a replica's session
// holds is served by that replica; when the holder stops, its keys move to
// exactly one of the others and no other key moves.
func TestOwnershipOneReplicaPerKey(t *testing.T) {
	st := storetest.NewSQLite(t).(store.Leases)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const ttl = 300 * time.Millisecond
	ids := []string{"a", "b", "c"}
	reps := map[string]*replica.Replica{}
	stops := map[string]func(){}
	for _, id := range ids {
		r := replica.New(st, id, replica.WithTTL(ttl))
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Start(rctx) }()
		reps[id], stops[id] = r, func() { stop(); <-done }
	}
	for _, id := range ids {
		waitFor(t, id+" ready", func() bool { return reps[id].Ready() == nil })
	}
	keys := make([]string, 60)
	for i := range keys {
		keys[i] = fmt.Sprintf("c%d", i)
	}
	owners := func(from []string) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, id := range from {
			got, err := reps[id].Ownership("consumer/").Serves(ctx, keys)
			if err != nil {
				t.Fatal(err)
			}
			for i, ok := range got {
				if !ok {
					continue
				}
				if prev, dup := out[keys[i]]; dup {
					t.Fatalf("key %s served by %s and %s", keys[i], prev, id)
				}
				out[keys[i]] = id
			}
		}
		for _, k := range keys {
			if out[k] == "" {
				t.Fatalf("key %s served by nobody (of %v)", k, from)
			}
		}
		return out
	}
	before := owners(ids)
	per := map[string]int{}
	for _, o := range before {
		per[o]++
	}
	if len(per) != 3 {
		t.Errorf("60 keys spread over %v; want all three replicas", per)
	}

	// c0's lease held by a session on a replica the hash did not choose.
	holder := "a"
	if before["c0"] == "a" {
		holder = "b"
	}
	if _, ok, err := st.AcquireLease(ctx, store.LeaseRequest{Name: "consumer/c0", Holder: "agent-c0",
		Session: holder + "/s1", TTL: time.Minute}); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	if got := owners(ids)["c0"]; got != holder {
		t.Fatalf("c0 served by %s; want the lease holder %s", got, holder)
	}
	one, err := reps[holder].Ownership("consumer/").Serves(ctx, []string{"c0"})
	if err != nil || !one[0] {
		t.Fatalf("single-key Serves on the holder = %v, %v; want true", one, err)
	}

	stops[holder]()
	rest := []string{}
	for _, id := range ids {
		if id != holder {
			rest = append(rest, id)
		}
	}
	waitFor(t, holder+" gone", func() bool { l, _ := reps[rest[0]].Live(ctx); return !l[holder] })
	after := owners(rest)
	if after["c0"] == holder {
		t.Fatal("c0 still served by the stopped replica")
	}
	for _, k := range keys {
		if k != "c0" && before[k] != holder && after[k] != before[k] {
			t.Errorf("key %s moved from live %s to %s", k, before[k], after[k])
		}
	}
	if got, _ := reps[holder].Ownership("consumer/").Serves(ctx, keys); got[0] || got[1] {
		t.Error("a stopped replica still serves keys")
	}
	for _, id := range rest {
		stops[id]()
	}
}
