package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/baton-dev/baton/internal/store"
)

var pageTests = map[string]func(*testing.T, *F){
	"PagesMatchFullList": testPagesMatchFullList,
	"StreamMatchesList":  testStreamMatchesList,
}

// testStreamMatchesList streams pages larger than one decoding batch and
// checks they are ListBundles's pages, the count first; an error from the
// callee stops the stream and comes back unchanged.
func testStreamMatchesList(t *testing.T, f *F) {
	f.Consumer("c", nil)
	for i := range 700 {
		f.Bundle("c", WithName(fmt.Sprintf("b-%03d", (i*37)%700)), WithSource(fmt.Sprint("s", i%2)))
	}
	stream := func(o store.ListOptions) (int, int, []store.Bundle) {
		t.Helper()
		var total, n int
		var got []store.Bundle
		err := f.S.StreamBundles(f.Ctx, o, func(tt, nn int) error {
			if got != nil {
				t.Fatalf("start called after items")
			}
			total, n = tt, nn
			return nil
		}, func(b *store.Bundle) error {
			got = append(got, *b)
			return nil
		})
		NoErr(t, "StreamBundles", err)
		return total, n, got
	}
	for _, o := range []store.ListOptions{
		{},
		{Page: 1, Size: 500, OrderBy: []store.Order{{Field: "name", Desc: true}}},
		{Page: 2, Size: 500},
		{Page: 3, Size: 500},
		{Page: 1, Size: 300, Filter: cmp("source", "=", "s1")},
	} {
		want, err := f.S.ListBundles(f.Ctx, o)
		NoErr(t, "ListBundles", err)
		total, n, got := stream(o)
		if total != want.Total || n != len(want.Items) || !reflect.DeepEqual(got, want.Items) && len(got)+len(want.Items) > 0 {
			t.Fatalf("%+v: stream total %d, n %d, %d items; list total %d, %d items", o, total, n, len(got), want.Total, len(want.Items))
		}
	}
	stop := errors.New("client went away")
	seen := 0
	err := f.S.StreamBundles(f.Ctx, store.ListOptions{}, func(int, int) error { return nil }, func(*store.Bundle) error {
		if seen++; seen == 200 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != 200 {
		t.Fatalf("stopped stream: %v after %d items; want the callee's error after 200", err, seen)
	}
	// The store is usable after a stopped stream (its read was released).
	if _, err := f.S.ListBundles(f.Ctx, store.ListOptions{Page: 1, Size: 1}); err != nil {
		t.Fatalf("list after a stopped stream: %v", err)
	}
}

// testPagesMatchFullList reads lists page by page under several filters and
// orders and checks the pages, joined, are the unpaged list, item for item.
func testPagesMatchFullList(t *testing.T, f *F) {
	for c := range 3 {
		f.Consumer(fmt.Sprintf("c%d", c), nil)
	}
	for i := range 60 {
		f.Bundle(fmt.Sprintf("c%d", i%3), WithName(fmt.Sprintf("b-%02d", (i*37)%60)), WithSource(fmt.Sprint("s", i%2)),
			WithLabels(map[string]string{"shard": fmt.Sprint(i % 4)}))
	}
	// Equal created_at values make the id the deciding order term.
	orders := [][]store.Order{
		nil,
		{{Field: "name", Desc: true}},
		{{Field: "consumer_name"}, {Field: "created_at", Desc: true}},
		{{Field: "source"}, {Field: "id", Desc: true}},
	}
	filters := []store.Filter{
		nil,
		cmp("labels.shard", "in", "1", "3"),
		store.And{cmp("consumer_name", "!=", "c1"), cmp("name", "like", "b-%")},
	}
	for _, order := range orders {
		for _, filter := range filters {
			full, err := f.S.ListBundles(f.Ctx, store.ListOptions{Filter: filter, OrderBy: order})
			NoErr(t, "ListBundles", err)
			var paged []store.Bundle
			for page := 1; ; page++ {
				p, err := f.S.ListBundles(f.Ctx, store.ListOptions{Filter: filter, OrderBy: order, Page: page, Size: 7})
				NoErr(t, "ListBundles(page)", err)
				if p.Total != full.Total {
					t.Fatalf("order %v filter %+v page %d: total %d; want %d", order, filter, page, p.Total, full.Total)
				}
				paged = append(paged, p.Items...)
				if len(p.Items) < 7 {
					break
				}
			}
			if !reflect.DeepEqual(paged, full.Items) {
				t.Fatalf("order %v filter %+v: pages give %v\nwant %v", order, filter, ids(paged), ids(full.Items))
			}
		}
	}
}
