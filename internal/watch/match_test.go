package watch

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/api/search"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

func TestMatch(t *testing.T) {
	created := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	b := store.Bundle{ID: "id-1", Name: "web-1", ConsumerName: "c1", Source: "cs", CreatedAt: created, UpdatedAt: created,
		Meta: api.ObjectMeta{Labels: map[string]string{"env": "prod"}}}
	tests := map[string]bool{
		"":                                         true,
		"consumer_name='c1' and source='cs'":       true,
		"consumer_name='c2' or source='cs'":        true,
		"consumer_name='c2'":                       false,
		"name in ('a', 'web-1')":                   true,
		"name not in ('a', 'web-1')":               false,
		"name like 'web-%'":                        true,
		"name like 'web_1'":                        true,
		"name like 'web'":                          false,
		"name not like 'x%'":                       true,
		"labels.env = 'prod'":                      true,
		"labels.env != 'prod'":                     false,
		"labels.team = 'a'":                        false,
		"labels.team != 'a'":                       true,
		"labels.team = ''":                         true,
		"not (labels.team = 'a')":                  true,
		"not (labels.env = 'dev')":                 true,
		"created_at = '2026-05-01T10:00:00Z'":      true,
		"created_at = '2026-05-01T12:00:00+02:00'": true,
		"updated_at != '2026-05-01T10:00:00Z'":     false,
		"id = 'id-1' and not name = 'web-1'":       false,
	}
	for expr, want := range tests {
		f, err := search.Parse(expr, search.BundleFields)
		if err != nil {
			t.Fatalf("parse %q: %v", expr, err)
		}
		got, err := Match(f, b)
		if err != nil || got != want {
			t.Errorf("Match(%q): got %v, %v; want %v", expr, got, err, want)
		}
	}
}

func TestMatchOrdering(t *testing.T) {
	b := store.Bundle{Name: "m", CreatedAt: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	tests := []struct {
		c    store.Cmp
		want bool
	}{
		{store.Cmp{Field: "name", Op: "<", Values: []string{"n"}}, true},
		{store.Cmp{Field: "name", Op: ">=", Values: []string{"n"}}, false},
		{store.Cmp{Field: "name", Op: "<=", Values: []string{"m"}}, true},
		{store.Cmp{Field: "created_at", Op: ">", Values: []string{"2026-05-01T09:59:59Z"}}, true},
	}
	for _, tc := range tests {
		if got, err := Match(tc.c, b); err != nil || got != tc.want {
			t.Errorf("%+v: got %v, %v; want %v", tc.c, got, err, tc.want)
		}
	}
	for _, bad := range []store.Cmp{
		{Field: "nope", Op: "=", Values: []string{"a"}},
		{Field: "name", Op: "~", Values: []string{"a"}},
		{Field: "created_at", Op: "like", Values: []string{"2026%"}},
		{Field: "created_at", Op: "=", Values: []string{"yesterday"}},
		{Field: "name", Op: "=", Values: []string{"a", "b"}},
	} {
		if _, err := Match(bad, b); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%+v: got %v; want ErrInvalid", bad, err)
		}
	}
}

func TestLike(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"", "", true}, {"", "%", true}, {"a", "", false}, {"abc", "a%c", true}, {"abc", "a_c", true},
		{"ac", "a_c", false}, {"a%c", `a\%c`, true}, {"abc", `a\%c`, false}, {"abc", "%b%", true}, {"abc", "%d%", false},
	}
	for _, tc := range tests {
		if got := like(tc.s, tc.p); got != tc.want {
			t.Errorf("like(%q, %q) = %v; want %v", tc.s, tc.p, got, tc.want)
		}
	}
}

// TestMatchAgreesWithStore runs the same filters through the store's SQL and
// through Match.
func TestMatchAgreesWithStore(t *testing.T) {
	st := storetest.NewSQLite(t)
	ctx := setup(t, st, "c1", "c2")
	for _, b := range []struct{ id, consumer, app string }{{"a1", "c1", "web"}, {"a2", "c1", ""}, {"a3", "c2", "db"}} {
		in := store.Bundle{ID: b.id, ConsumerName: b.consumer, Source: "cs"}
		if b.app != "" {
			in.Meta.Labels = map[string]string{"app": b.app}
		}
		if _, err := st.CreateBundle(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	all, err := st.ListBundles(ctx, store.ListOptions{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, expr := range []string{
		"labels.app = 'web'", "labels.app != 'web'", "not (labels.app = 'web')", "labels.app like 'w%'",
		"labels.app not like 'w%'", "consumer_name = 'c1' or labels.app = 'db'", "not (consumer_name = 'c1' and labels.app = 'x')",
		"id in ('a1', 'a3')", "id not in ('a1')", "name like 'a_'",
	} {
		f, err := search.Parse(expr, search.BundleFields)
		if err != nil {
			t.Fatal(err)
		}
		page, err := st.ListBundles(ctx, store.ListOptions{Size: 100, Filter: f})
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		want := map[string]bool{}
		for _, b := range page.Items {
			want[b.ID] = true
		}
		for _, b := range all.Items {
			got, err := Match(f, b)
			if err != nil || got != want[b.ID] {
				t.Errorf("%s on %s: Match %v, %v; store %v", expr, b.ID, got, err, want[b.ID])
			}
		}
	}
}

// TestMatchMaestroLabelSearches holds the watch matcher to the table the
// databases pass (storetest.MaestroLabelSearches).
func TestMatchMaestroLabelSearches(t *testing.T) {
	sources := map[string]string{"web-1": "ci", "web_2": "ci", "db-1": "ops", "Web-3": "ops"}
	consumers := map[string]string{"web-1": "east", "web_2": "east", "db-1": "west", "Web-3": "west"}
	for expr, want := range storetest.MaestroLabelSearches {
		f, err := search.Parse(expr, search.BundleFields)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		got := []string{}
		for _, name := range []string{"Web-3", "db-1", "web-1", "web_2"} {
			b := store.Bundle{Name: name, Source: sources[name], ConsumerName: consumers[name],
				Meta: api.ObjectMeta{Labels: storetest.MaestroLabels[name]}}
			ok, err := Match(f, b)
			if err != nil {
				t.Fatalf("%s: %v", expr, err)
			}
			if ok {
				got = append(got, name)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("Match(%s) = %v; want %v (as the databases)", expr, got, want)
		}
	}
}
