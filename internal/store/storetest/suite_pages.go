package storetest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/baton-dev/baton/internal/store"
)

var pageTests = map[string]func(*testing.T, *F){
	"PagesMatchFullList": testPagesMatchFullList,
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
