package storetest

import (
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

// leaseTests prove the lease rules every "who does this" decision relies on.
var leaseTests = map[string]func(*testing.T, *F){
	"LeaseFirstHolderWins": func(t *testing.T, f *F) {
		ls := leases(f)
		req := store.LeaseRequest{Name: "consumer/c1", Holder: "agent-a", Session: "r1", TTL: time.Minute}
		l, ok, err := ls.AcquireLease(f.Ctx, req)
		if err != nil || !ok || l.Holder != "agent-a" || l.Session != "r1" {
			t.Fatalf("first acquire = %+v, %v, %v; want held by agent-a/r1", l, ok, err)
		}
		l, ok, err = ls.AcquireLease(f.Ctx, store.LeaseRequest{Name: "consumer/c1", Holder: "agent-b", Session: "r2", TTL: time.Minute})
		if err != nil || ok {
			t.Fatalf("second holder acquire = %v, %v; want refused", ok, err)
		}
		if l.Holder != "agent-a" || l.Contender != "agent-b" || l.ContendedAt.IsZero() {
			t.Fatalf("refused acquire returned %+v; want holder agent-a, contender agent-b", l)
		}
		// The same holder moves to another session (an agent reconnecting
		// through another replica); the old session cannot renew.
		l, ok, err = ls.AcquireLease(f.Ctx, store.LeaseRequest{Name: "consumer/c1", Holder: "agent-a", Session: "r3", TTL: time.Minute})
		if err != nil || !ok || l.Session != "r3" || l.Contender != "agent-b" {
			t.Fatalf("same holder, new session = %+v, %v, %v; want held in r3, contender kept", l, ok, err)
		}
		if _, ok, err := ls.AcquireLease(f.Ctx, store.LeaseRequest{Name: "consumer/c1", Holder: "agent-a", Session: "r1", TTL: time.Minute, Renew: true}); err != nil || ok {
			t.Fatalf("renew of the old session = %v, %v; want refused", ok, err)
		}
		if _, ok, err := ls.AcquireLease(f.Ctx, store.LeaseRequest{Name: "consumer/c1", Holder: "agent-a", Session: "r3", TTL: time.Minute, Renew: true}); err != nil || !ok {
			t.Fatalf("renew of the current session = %v, %v; want held", ok, err)
		}
	},
	"LeaseExpiresAndReleases": func(t *testing.T, f *F) {
		ls := leases(f)
		if _, ok, err := ls.AcquireLease(f.Ctx, store.LeaseRequest{Name: "duty/prune", Holder: "r1", Session: "r1", TTL: 50 * time.Millisecond}); err != nil || !ok {
			t.Fatalf("acquire = %v, %v", ok, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			l, ok, err := ls.AcquireLease(f.Ctx, store.LeaseRequest{Name: "duty/prune", Holder: "r2", Session: "r2", TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				if l.Contender != "" {
					t.Fatalf("lease taken by its contender still names it: %+v", l)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("expired lease never taken over: %+v", l)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := ls.ReleaseLease(f.Ctx, "duty/prune", "r1", "r1"); err != nil {
			t.Fatal(err)
		}
		if got, err := ls.ListLeases(f.Ctx, "duty/"); err != nil || len(got) != 1 || got[0].Holder != "r2" {
			t.Fatalf("release by a former holder changed the lease: %+v, %v", got, err)
		}
		if err := ls.ReleaseLease(f.Ctx, "duty/prune", "r2", "r2"); err != nil {
			t.Fatal(err)
		}
		if got, err := ls.ListLeases(f.Ctx, "duty/"); err != nil || len(got) != 0 {
			t.Fatalf("after release: %+v, %v; want none", got, err)
		}
	},
	"LeaseList": func(t *testing.T, f *F) {
		ls := leases(f)
		for _, n := range []string{"replica/b", "replica/a", "replicas", "consumer/x"} {
			if _, ok, err := ls.AcquireLease(f.Ctx, store.LeaseRequest{Name: n, Holder: n, Session: "s", TTL: time.Minute}); err != nil || !ok {
				t.Fatalf("acquire %s = %v, %v", n, ok, err)
			}
		}
		got, err := ls.ListLeases(f.Ctx, "replica/")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Name != "replica/a" || got[1].Name != "replica/b" {
			t.Fatalf("ListLeases(replica/) = %+v; want replica/a, replica/b", got)
		}
		if _, _, err := ls.AcquireLease(f.Ctx, store.LeaseRequest{Name: "x", TTL: time.Minute}); err == nil {
			t.Fatal("a lease without holder was accepted")
		}
	},
}

func leases(f *F) store.Leases {
	f.T.Helper()
	ls, ok := f.S.(store.Leases)
	if !ok {
		f.T.Skip("store has no leases")
	}
	return ls
}
