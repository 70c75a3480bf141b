package sqlstore_test

import (
	"context"
	"testing"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

func TestSmoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		c, err := s.CreateConsumer(ctx, store.Consumer{Name: "c1", Labels: map[string]string{"a": "b"}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.CreateBundle(ctx, store.Bundle{ConsumerName: c.Name, Name: "x"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetBundle(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", got)
		p, err := s.ListBundles(ctx, store.ListOptions{Filter: store.Cmp{Field: "labels.a", Op: "=", Values: []string{"x"}}})
		t.Logf("%+v %v", p, err)
		cs, err := s.ListConsumers(ctx, store.ListOptions{Filter: store.Cmp{Field: "labels.a", Op: "=", Values: []string{"b"}}})
		t.Logf("%+v %v", cs, err)
	})
}
