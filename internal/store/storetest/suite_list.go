package storetest

import (
	"fmt"
	"github.com/baton-dev/baton/internal/api/search"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
)

var listTests = map[string]func(*testing.T, *F){
	"ListFilters":         testListFilters,
	"ListFilterInjection": testListFilterInjection,
	"ListInvalid":         testListInvalid,
	"ListPagination":      testListPagination,
	"ListOrder":           testListOrder,
	"ListConsumers":       testListConsumers,
	"ListMany":            testListMany,
}

func cmp(field, op string, values ...string) store.Cmp {
	return store.Cmp{Field: field, Op: op, Values: values}
}

// names lists bundles matching filter and returns their names, sorted.
func (f *F) names(filter store.Filter) []string {
	f.T.Helper()
	p, err := f.S.ListBundles(f.Ctx, store.ListOptions{Filter: filter})
	if err != nil {
		f.T.Fatalf("ListBundles(%+v): %v", filter, err)
	}
	if p.Total != len(p.Items) {
		f.T.Fatalf("ListBundles(%+v): total %d, %d items", filter, p.Total, len(p.Items))
	}
	out := []string{}
	for _, b := range p.Items {
		out = append(out, b.Name)
	}
	slices.Sort(out)
	return out
}

func testListFilters(t *testing.T, f *F) {
	f.Consumer("east", nil)
	f.Consumer("west", nil)
	f.Bundle("east", WithName("web-1"), WithSource("ci"), WithLabels(map[string]string{"app": "web", "tier": "front"}))
	f.Bundle("east", WithName("web_2"), WithSource("ci"), WithLabels(map[string]string{"app": "web"}))
	f.Bundle("west", WithName("db-1"), WithSource("ops"), WithLabels(map[string]string{"app": "db", "app.kubernetes.io/name": "pg"}))
	f.Bundle("west", WithName("Web-3"), WithSource("ops"))

	cases := []struct {
		filter store.Filter
		want   []string
	}{
		{cmp("name", "=", "web-1"), []string{"web-1"}},
		{cmp("name", "!=", "web-1"), []string{"Web-3", "db-1", "web_2"}},
		{cmp("consumer_name", "=", "west"), []string{"Web-3", "db-1"}},
		{cmp("source", "in", "ops", "nothing"), []string{"Web-3", "db-1"}},
		{cmp("source", "not in", "ops"), []string{"web-1", "web_2"}},
		{cmp("name", "like", "web%"), []string{"web-1", "web_2"}}, // case-sensitive
		{cmp("name", "like", "%eb-_"), []string{"Web-3", "web-1"}},
		{cmp("name", "like", `web\_%`), []string{"web_2"}}, // escaped underscore
		{cmp("name", "not like", "%-%"), []string{"web_2"}},
		{cmp("name", "LIKE", "db%"), []string{"db-1"}},
		{cmp("labels.app", "=", "web"), []string{"web-1", "web_2"}},
		{cmp("labels.app", "!=", "web"), []string{"Web-3", "db-1"}}, // a missing label is ""
		{cmp("labels.app.kubernetes.io/name", "=", "pg"), []string{"db-1"}},
		{cmp("labels.tier", "in", "front", "back"), []string{"web-1"}},
		{store.And{cmp("labels.app", "=", "web"), cmp("name", "!=", "web-1")}, []string{"web_2"}},
		{store.Or{cmp("name", "=", "db-1"), cmp("labels.tier", "=", "front")}, []string{"db-1", "web-1"}},
		{store.Not{F: cmp("consumer_name", "=", "east")}, []string{"Web-3", "db-1"}},
		{store.Not{F: store.Or{cmp("name", "=", "db-1"), store.And{cmp("source", "=", "ci")}}}, []string{"Web-3"}},
		{store.And{}, []string{"Web-3", "db-1", "web-1", "web_2"}},
		{store.Or{}, []string{}},
		{cmp("created_at", ">", "2000-01-01T00:00:00Z"), []string{"Web-3", "db-1", "web-1", "web_2"}},
		{cmp("created_at", "<", "2000-01-01"), []string{}},
		{cmp("updated_at", "<=", time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)), []string{"Web-3", "db-1", "web-1", "web_2"}},
	}
	for _, tc := range cases {
		if got := f.names(tc.filter); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("filter %+v = %v; want %v", tc.filter, got, tc.want)
		}
	}
	// Maestro's JSONB label forms, parsed by the REST search language.
	for expr, want := range MaestroLabelSearches {
		filter, err := search.Parse(expr, search.BundleFields)
		if err != nil {
			t.Errorf("search %s: %v", expr, err)
			continue
		}
		if got := f.names(filter); !reflect.DeepEqual(got, want) {
			t.Errorf("search %s = %v; want %v", expr, got, want)
		}
	}
}

func testListFilterInjection(t *testing.T, f *F) {
	f.Consumer("c", nil)
	evil := `x' or 1=1 --`
	f.Bundle("c", WithName("plain"))
	f.Bundle("c", WithName(evil), WithLabels(map[string]string{"k": evil}))
	f.Bundle("c", WithName(`quote"d`))
	cases := []struct {
		filter store.Filter
		want   []string
	}{
		{cmp("name", "=", evil), []string{evil}},
		{cmp("name", "=", "x"), []string{}},
		{cmp("name", "=", `x" or 1=1 --`), []string{}},
		{cmp("name", "=", "plain'); DROP TABLE bundles; --"), []string{}},
		{cmp("name", "in", evil, "') or ('1'='1"), []string{evil}},
		{cmp("labels.k", "=", evil), []string{evil}},
		{cmp("name", "=", `quote"d`), []string{`quote"d`}},
		{cmp("name", "like", "%'%"), []string{evil}},
	}
	for _, tc := range cases {
		if got := f.names(tc.filter); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("filter %+v = %v; want %v", tc.filter, got, tc.want)
		}
	}
	for _, field := range []string{`labels.k') or 1=1 --`, `labels.k" or 1=1`, "name; DROP TABLE bundles", "labels."} {
		_, err := f.S.ListBundles(f.Ctx, store.ListOptions{Filter: cmp(field, "=", "x")})
		WantErr(t, "field "+field, err, store.ErrInvalid)
	}
	if got := f.names(nil); len(got) != 3 {
		t.Fatalf("bundles after injection attempts = %v; want all 3", got)
	}
}

func testListInvalid(t *testing.T, f *F) {
	f.Consumer("c", nil)
	f.Bundle("c")
	bad := []store.ListOptions{
		{Filter: cmp("nope", "=", "x")},
		{Filter: cmp("generation", "=", "1")},
		{Filter: cmp("name", "~", "x")},
		{Filter: cmp("name", "= 1 OR 1=1 --", "x")},
		{Filter: cmp("name", "=")},
		{Filter: cmp("name", "=", "a", "b")},
		{Filter: cmp("name", "in")},
		{Filter: cmp("created_at", "=", "yesterday")},
		{Filter: cmp("created_at", "like", "2026%")},
		{Filter: store.And{cmp("name", "=", "x"), cmp("bogus", "=", "y")}},
		{Filter: store.Not{}},
		{OrderBy: []store.Order{{Field: "bogus"}}},
		{OrderBy: []store.Order{{Field: "name; DROP TABLE bundles"}}},
		{OrderBy: []store.Order{{Field: "labels.app"}}},
		{Page: -1, Size: 10},
	}
	for _, o := range bad {
		_, err := f.S.ListBundles(f.Ctx, o)
		WantErr(t, fmt.Sprintf("ListBundles(%+v)", o), err, store.ErrInvalid)
	}
	_, err := f.S.ListConsumers(f.Ctx, store.ListOptions{Filter: cmp("consumer_name", "=", "c")})
	WantErr(t, "ListConsumers(consumer_name)", err, store.ErrInvalid)
	_, err = f.S.ListConsumers(f.Ctx, store.ListOptions{Filter: cmp("source", "=", "c")})
	WantErr(t, "ListConsumers(source)", err, store.ErrInvalid)
}

func testListPagination(t *testing.T, f *F) {
	f.Consumer("c", nil)
	var all []string
	for i := range 25 {
		all = append(all, f.Bundle("c", WithName(fmt.Sprintf("b%02d", i))).ID)
	}
	var seen []string
	for page := 1; page <= 4; page++ {
		p, err := f.S.ListBundles(f.Ctx, store.ListOptions{Page: page, Size: 10})
		NoErr(t, fmt.Sprintf("page %d", page), err)
		want := []int{10, 10, 5, 0}[page-1]
		if p.Total != 25 || len(p.Items) != want {
			t.Fatalf("page %d: %d items, total %d; want %d of 25", page, len(p.Items), p.Total, want)
		}
		seen = append(seen, ids(p.Items)...)
	}
	if !reflect.DeepEqual(seen, all) {
		t.Fatalf("pages in creation order = %v; want %v", seen, all)
	}
	p, err := f.S.ListBundles(f.Ctx, store.ListOptions{})
	NoErr(t, "unpaged", err)
	if p.Total != 25 || len(p.Items) != 25 {
		t.Fatalf("unpaged: %d items, total %d; want 25", len(p.Items), p.Total)
	}
	p, err = f.S.ListBundles(f.Ctx, store.ListOptions{Page: 0, Size: 7})
	NoErr(t, "page 0", err)
	if len(p.Items) != 7 || p.Items[0].ID != all[0] {
		t.Fatalf("page 0 is not page 1: %v", ids(p.Items))
	}
	p, err = f.S.ListBundles(f.Ctx, store.ListOptions{Page: 3, Size: 3,
		Filter: cmp("name", "like", "b1%")})
	NoErr(t, "filtered page", err)
	if p.Total != 10 || !reflect.DeepEqual(ids(p.Items), all[16:19]) {
		t.Fatalf("filtered page 3 = %v (total %d); want %v of 10", ids(p.Items), p.Total, all[16:19])
	}
	p, err = f.S.ListBundles(f.Ctx, store.ListOptions{Page: 1, Size: 5, Filter: cmp("name", "=", "none")})
	NoErr(t, "empty page", err)
	if p.Total != 0 || p.Items == nil || len(p.Items) != 0 {
		t.Fatalf("no matches = %+v; want total 0 and an empty, non-nil slice", p)
	}
}

func testListOrder(t *testing.T, f *F) {
	f.Consumer("a", nil)
	f.Consumer("b", nil)
	f.Bundle("b", WithName("m"), WithID("id-3"))
	f.Bundle("a", WithName("Z"), WithID("id-1"))
	f.Bundle("a", WithName("m"), WithID("id-2"))
	cases := []struct {
		order []store.Order
		want  []string
	}{
		{nil, []string{"id-3", "id-1", "id-2"}},
		{[]store.Order{{Field: "name"}}, []string{"id-1", "id-2", "id-3"}}, // byte order: Z < m; ties by id
		{[]store.Order{{Field: "name", Desc: true}}, []string{"id-2", "id-3", "id-1"}},
		{[]store.Order{{Field: "consumer_name"}, {Field: "name", Desc: true}}, []string{"id-2", "id-1", "id-3"}},
		{[]store.Order{{Field: "id", Desc: true}}, []string{"id-3", "id-2", "id-1"}},
		{[]store.Order{{Field: "created_at", Desc: true}}, []string{"id-2", "id-1", "id-3"}},
	}
	for _, tc := range cases {
		p, err := f.S.ListBundles(f.Ctx, store.ListOptions{OrderBy: tc.order})
		NoErr(t, fmt.Sprintf("order %+v", tc.order), err)
		if got := ids(p.Items); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("order %+v = %v; want %v", tc.order, got, tc.want)
		}
	}
}

func testListConsumers(t *testing.T, f *F) {
	f.Consumer("c-1", map[string]string{"region": "eu"})
	f.Consumer("c-2", map[string]string{"region": "us"})
	f.Consumer("x-3", nil)
	list := func(o store.ListOptions) ([]string, int) {
		t.Helper()
		p, err := f.S.ListConsumers(f.Ctx, o)
		NoErr(t, fmt.Sprintf("ListConsumers(%+v)", o), err)
		out := []string{}
		for _, c := range p.Items {
			out = append(out, c.Name)
		}
		return out, p.Total
	}
	cases := []struct {
		opts  store.ListOptions
		want  []string
		total int
	}{
		{store.ListOptions{}, []string{"c-1", "c-2", "x-3"}, 3},
		{store.ListOptions{Filter: cmp("labels.region", "=", "eu")}, []string{"c-1"}, 1},
		{store.ListOptions{Filter: cmp("name", "like", "c-%")}, []string{"c-1", "c-2"}, 2},
		{store.ListOptions{Filter: cmp("name", "=", `c-1' or '1'='1`)}, []string{}, 0},
		{store.ListOptions{OrderBy: []store.Order{{Field: "name", Desc: true}}, Page: 1, Size: 2}, []string{"x-3", "c-2"}, 3},
		{store.ListOptions{OrderBy: []store.Order{{Field: "name", Desc: true}}, Page: 2, Size: 2}, []string{"c-1"}, 3},
		{store.ListOptions{Page: 3, Size: 2}, []string{}, 3},
	}
	for _, tc := range cases {
		got, total := list(tc.opts)
		if !reflect.DeepEqual(got, tc.want) || total != tc.total {
			t.Errorf("ListConsumers(%+v) = %v total %d; want %v total %d", tc.opts, got, total, tc.want, tc.total)
		}
	}
	_, err := f.S.ListConsumers(f.Ctx, store.ListOptions{OrderBy: []store.Order{{Field: "labels"}}})
	WantErr(t, "ListConsumers(order by labels)", err, store.ErrInvalid)
}

// testListMany lists more bundles than one decoding batch and checks every
// one came back whole and in order.
func testListMany(t *testing.T, f *F) {
	const n = 300
	Populate(t, f.S, "c", n)
	p, err := f.S.ListBundles(f.Ctx, store.ListOptions{OrderBy: []store.Order{{Field: "name"}}})
	NoErr(t, "ListBundles", err)
	if p.Total != n || len(p.Items) != n {
		t.Fatalf("listed %d of %d; want %d", len(p.Items), p.Total, n)
	}
	for i, b := range p.Items {
		want := RealisticBundle("c", i)
		if b.Name != want.Name || !JSONEqual(t, b.Spec, want.Spec) || !JSONEqual(t, b.Status.Reported, RealisticStatus(i)) ||
			b.Meta.Labels["app"] != want.Name || b.Status.Revision != 1 {
			t.Fatalf("item %d = %s (revision %d); want %s with its spec and status", i, b.Name, b.Status.Revision, want.Name)
		}
	}
	byConsumer, err := f.S.ListBundlesByConsumer(f.Ctx, "c")
	NoErr(t, "ListBundlesByConsumer", err)
	if len(byConsumer) != n {
		t.Fatalf("ListBundlesByConsumer returned %d; want %d", len(byConsumer), n)
	}
}

// MaestroLabels are the labels of the bundles of testListFilters, by name.
var MaestroLabels = map[string]map[string]string{
	"web-1": {"app": "web", "tier": "front"},
	"web_2": {"app": "web"},
	"db-1":  {"app": "db", "app.kubernetes.io/name": "pg"},
	"Web-3": nil,
}

const maestroLabelPath = `payload->'metadata'->'labels'`

// MaestroLabelSearches are Maestro's JSONB label searches and the names
// of MaestroLabels they select, with SQL's NULL semantics (a missing label
// matches neither = nor <>). The in-memory matcher of watches is held to
// the same table.
var MaestroLabelSearches = map[string][]string{
	maestroLabelPath + `@>'{"app":"web"}'`:                                                           {"web-1", "web_2"},
	maestroLabelPath + `@>'{"app":"web","tier":"front"}'`:                                            {"web-1"},
	maestroLabelPath + `@>'{}'`:                                                                      {"Web-3", "db-1", "web-1", "web_2"},
	maestroLabelPath + `->>'app'='db'`:                                                               {"db-1"},
	maestroLabelPath + `->>'app'<>'web'`:                                                             {"db-1"},
	maestroLabelPath + `->>'app' in ('db','web')`:                                                    {"db-1", "web-1", "web_2"},
	maestroLabelPath + `->>'app' not in ('db')`:                                                      {"web-1", "web_2"},
	maestroLabelPath + `->>'tier'<>null`:                                                             {"web-1"},
	maestroLabelPath + `->>'tier'=null`:                                                              {"Web-3", "db-1", "web_2"},
	maestroLabelPath + `->>'tier' is not null`:                                                       {"web-1"},
	maestroLabelPath + `->>'app.kubernetes.io/name'='pg'`:                                            {"db-1"},
	`source='ci' and ` + maestroLabelPath + `->>'tier' is null`:                                      {"web_2"},
	`(consumer_name='east' or consumer_name='west') and ` + maestroLabelPath + `@>'{"app":"db"}'`:    {"db-1"},
	`not ` + maestroLabelPath + `@>'{"app":"web"}' and ` + maestroLabelPath + `->>'app' is not null`: {"db-1"},
}
