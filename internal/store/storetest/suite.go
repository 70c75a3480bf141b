package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// Run is the conformance suite: every store.Store implementation must pass
// it. newStore returns a fresh, empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	groups := []map[string]func(*testing.T, *F){
		consumerTests, bundleTests, statusTests, confirmTests, outboxTests, listTests, pageTests, concurrencyTests,
		leaseTests, orphanTests,
	}
	for _, g := range groups {
		for _, name := range slices.Sorted(maps.Keys(g)) {
			fn := g[name]
			t.Run(name, func(t *testing.T) {
				fn(t, &F{T: t, S: newStore(t), Ctx: context.Background()})
			})
		}
	}
}

// F is a fixture: a store and helpers that fail the test on error.
type F struct {
	T   *testing.T
	S   store.Store
	Ctx context.Context
}

// Consumer creates a consumer.
func (f *F) Consumer(name string, labels map[string]string) store.Consumer {
	f.T.Helper()
	c, err := f.S.CreateConsumer(f.Ctx, store.Consumer{Name: name, Labels: labels})
	if err != nil {
		f.T.Fatalf("CreateConsumer(%q): %v", name, err)
	}
	return c
}

// Bundle creates a bundle of consumer; mods adjust it before creation.
func (f *F) Bundle(consumer string, mods ...func(*store.Bundle)) store.Bundle {
	f.T.Helper()
	b := store.Bundle{ConsumerName: consumer, Spec: SampleSpec("cm")}
	for _, m := range mods {
		m(&b)
	}
	out, err := f.S.CreateBundle(f.Ctx, b)
	if err != nil {
		f.T.Fatalf("CreateBundle(%s/%s): %v", consumer, b.Name, err)
	}
	return out
}

// Get reads a bundle.
func (f *F) Get(id string) store.Bundle {
	f.T.Helper()
	b, err := f.S.GetBundle(f.Ctx, id)
	if err != nil {
		f.T.Fatalf("GetBundle(%s): %v", id, err)
	}
	return b
}

// Latest returns the latest change sequence value.
func (f *F) Latest() int64 {
	f.T.Helper()
	v, err := f.S.LatestChange(f.Ctx)
	if err != nil {
		f.T.Fatalf("LatestChange: %v", err)
	}
	return v
}

// Pending returns every pending outbox event of consumer.
func (f *F) Pending(consumer string) []store.OutboxEvent {
	f.T.Helper()
	ev, err := f.S.PendingOutbox(f.Ctx, consumer, 0)
	if err != nil {
		f.T.Fatalf("PendingOutbox(%q): %v", consumer, err)
	}
	return ev
}

// Apply applies a status update and checks the result.
func (f *F) Apply(u store.StatusUpdate, want store.StatusResult) store.Bundle {
	f.T.Helper()
	got, b, err := f.S.ApplyStatus(f.Ctx, u)
	if err != nil {
		f.T.Fatalf("ApplyStatus(%s epoch %s rev %d): %v", u.BundleID, u.AgentEpoch, u.AgentRevision, err)
	}
	if got != want {
		f.T.Fatalf("ApplyStatus(%s epoch %s rev %d) = %s; want %s", u.BundleID, u.AgentEpoch, u.AgentRevision, ResultName(got), ResultName(want))
	}
	return b
}

// WithName sets a bundle's name.
func WithName(name string) func(*store.Bundle) { return func(b *store.Bundle) { b.Name = name } }

// WithID sets a bundle's id.
func WithID(id string) func(*store.Bundle) { return func(b *store.Bundle) { b.ID = id } }

// WithLabels sets a bundle's metadata labels.
func WithLabels(l map[string]string) func(*store.Bundle) {
	return func(b *store.Bundle) { b.Meta.Labels = l }
}

// WithSource sets a bundle's source.
func WithSource(s string) func(*store.Bundle) { return func(b *store.Bundle) { b.Source = s } }

// SampleSpec returns a spec with one ConfigMap named name.
func SampleSpec(name string) api.BundleSpec {
	cm := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"default"},"data":{"k":"v"}}`, name)
	return api.BundleSpec{Manifests: []json.RawMessage{json.RawMessage(cm)}}
}

// SampleStatus returns a reported status whose content depends on value.
func SampleStatus(value string) api.ReportedStatus {
	return api.ReportedStatus{ResourceStatus: []api.ResourceStatus{{
		Observed: api.Observed{UID: "uid-" + value, ResourceVersion: value, Exists: true,
			ObservedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
	}}}
}

// ResultName names a StatusResult for messages.
func ResultName(r store.StatusResult) string {
	switch r {
	case store.StatusAccepted:
		return "Accepted"
	case store.StatusConfirmed:
		return "Confirmed"
	case store.StatusStale:
		return "Stale"
	case store.StatusPurged:
		return "Purged"
	case store.StatusUnknown:
		return "Unknown"
	}
	return fmt.Sprintf("StatusResult(%d)", int(r))
}

// WantErr fails unless err wraps want.
func WantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v; want %v", what, err, want)
	}
}

// NoErr fails on err.
func NoErr(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// JSONEqual reports whether a and b encode to equal JSON values.
func JSONEqual(t testing.TB, a, b any) bool {
	t.Helper()
	norm := func(v any) any {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var out any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// ids returns the ids of bundles.
func ids(bs []store.Bundle) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}
