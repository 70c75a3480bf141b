package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

var consumerTests = map[string]func(*testing.T, *F){
	"ConsumerCreateGet":        testConsumerCreateGet,
	"ConsumerConflicts":        testConsumerConflicts,
	"ConsumerUpdateLabels":     testConsumerUpdateLabels,
	"ConsumerDeleteWithBundle": testConsumerDeleteWithBundle,
	"AgentState":               testAgentState,
}

func testConsumerCreateGet(t *testing.T, f *F) {
	c := f.Consumer("cluster1", map[string]string{"env": "prod"})
	if c.ID == "" || c.Name != "cluster1" {
		t.Fatalf("created consumer = %+v; want a generated id and name cluster1", c)
	}
	if c.CreatedAt.IsZero() || !c.CreatedAt.Equal(c.UpdatedAt) {
		t.Fatalf("timestamps created %v updated %v; want set and equal", c.CreatedAt, c.UpdatedAt)
	}
	for _, key := range []string{c.ID, c.Name} {
		got, err := f.S.GetConsumer(f.Ctx, key)
		NoErr(t, "GetConsumer("+key+")", err)
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("GetConsumer(%s) = %+v; want %+v", key, got, c)
		}
	}
	_, err := f.S.GetConsumer(f.Ctx, "nope")
	WantErr(t, "GetConsumer(nope)", err, store.ErrNotFound)

	explicit, err := f.S.CreateConsumer(f.Ctx, store.Consumer{ID: "fixed-id", Name: "cluster2"})
	NoErr(t, "CreateConsumer with id", err)
	if explicit.ID != "fixed-id" || explicit.Labels == nil {
		t.Fatalf("CreateConsumer kept id %q labels %v; want fixed-id and an empty map", explicit.ID, explicit.Labels)
	}
}

func testConsumerConflicts(t *testing.T, f *F) {
	c := f.Consumer("dup", nil)
	_, err := f.S.CreateConsumer(f.Ctx, store.Consumer{Name: "dup"})
	WantErr(t, "CreateConsumer(duplicate name)", err, store.ErrConflict)
	_, err = f.S.CreateConsumer(f.Ctx, store.Consumer{ID: c.ID, Name: "other"})
	WantErr(t, "CreateConsumer(duplicate id)", err, store.ErrConflict)
	p, err := f.S.ListConsumers(f.Ctx, store.ListOptions{})
	NoErr(t, "ListConsumers", err)
	if p.Total != 1 {
		t.Fatalf("consumers after conflicts = %d; want 1", p.Total)
	}
}

func testConsumerUpdateLabels(t *testing.T, f *F) {
	c := f.Consumer("c", map[string]string{"a": "1", "b": "2"})
	got, err := f.S.UpdateConsumerLabels(f.Ctx, c.ID, map[string]string{"c": "3"})
	NoErr(t, "UpdateConsumerLabels", err)
	want := map[string]string{"c": "3"}
	if !reflect.DeepEqual(got.Labels, want) {
		t.Fatalf("labels after update = %v; want %v (replaced, not merged)", got.Labels, want)
	}
	if got.UpdatedAt.Before(c.UpdatedAt) {
		t.Fatalf("UpdatedAt went back: %v < %v", got.UpdatedAt, c.UpdatedAt)
	}
	read, err := f.S.GetConsumer(f.Ctx, c.ID)
	NoErr(t, "GetConsumer", err)
	if !reflect.DeepEqual(read.Labels, want) || !read.UpdatedAt.Equal(got.UpdatedAt) {
		t.Fatalf("stored consumer = %+v; want labels %v updated %v", read, want, got.UpdatedAt)
	}
	cleared, err := f.S.UpdateConsumerLabels(f.Ctx, c.ID, nil)
	NoErr(t, "UpdateConsumerLabels(nil)", err)
	if len(cleared.Labels) != 0 {
		t.Fatalf("labels after clearing = %v; want none", cleared.Labels)
	}
	_, err = f.S.UpdateConsumerLabels(f.Ctx, "missing", nil)
	WantErr(t, "UpdateConsumerLabels(missing)", err, store.ErrNotFound)
}

func testConsumerDeleteWithBundle(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	b := f.Bundle(c.Name)
	WantErr(t, "DeleteConsumer with a bundle", f.S.DeleteConsumer(f.Ctx, c.ID), store.ErrConflict)
	del, err := f.S.DeleteBundle(f.Ctx, b.ID)
	NoErr(t, "DeleteBundle", err)
	WantErr(t, "DeleteConsumer with a deleting bundle", f.S.DeleteConsumer(f.Ctx, c.ID), store.ErrConflict)
	NoErr(t, "PurgeBundle", f.S.PurgeBundle(f.Ctx, b.ID, del.Generation))
	NoErr(t, "DeleteConsumer", f.S.DeleteConsumer(f.Ctx, c.ID))
	_, err = f.S.GetConsumer(f.Ctx, c.ID)
	WantErr(t, "GetConsumer after delete", err, store.ErrNotFound)
	WantErr(t, "DeleteConsumer again", f.S.DeleteConsumer(f.Ctx, c.ID), store.ErrNotFound)
	// The name is free again.
	f.Consumer("c", nil)
}

func testAgentState(t *testing.T, f *F) {
	c := f.Consumer("c", nil)
	f.Consumer("other", nil)
	hb := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
	state := store.AgentState{Connected: true, Epoch: "e1", LastHeartbeat: hb, ServerID: "replica-a"}
	NoErr(t, "SetAgentState", f.S.SetAgentState(f.Ctx, c.Name, state))
	got, err := f.S.GetConsumer(f.Ctx, c.ID)
	NoErr(t, "GetConsumer", err)
	if !reflect.DeepEqual(got.Agent, state) {
		t.Fatalf("agent state = %+v; want %+v", got.Agent, state)
	}
	p, err := f.S.ListConsumers(f.Ctx, store.ListOptions{Filter: store.Cmp{Field: "name", Op: "=", Values: []string{"c"}}})
	NoErr(t, "ListConsumers", err)
	if len(p.Items) != 1 || !reflect.DeepEqual(p.Items[0].Agent, state) {
		t.Fatalf("listed agent state = %+v; want %+v", p.Items, state)
	}
	other, err := f.S.GetConsumer(f.Ctx, "other")
	NoErr(t, "GetConsumer(other)", err)
	if other.Agent != (store.AgentState{}) {
		t.Fatalf("other consumer's agent = %+v; want zero", other.Agent)
	}

	// A disconnect without epoch or heartbeat keeps both.
	NoErr(t, "SetAgentState(disconnect)", f.S.SetAgentState(f.Ctx, c.Name, store.AgentState{}))
	got, err = f.S.GetConsumer(f.Ctx, c.ID)
	NoErr(t, "GetConsumer", err)
	want := store.AgentState{Connected: false, Epoch: "e1", LastHeartbeat: hb}
	if !reflect.DeepEqual(got.Agent, want) {
		t.Fatalf("agent state after disconnect = %+v; want %+v", got.Agent, want)
	}
	WantErr(t, "SetAgentState(missing)", f.S.SetAgentState(f.Ctx, "missing", state), store.ErrNotFound)
}
