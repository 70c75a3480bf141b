package watch

import (
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/api/search"
	"github.com/baton-dev/baton/internal/store"
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
		"labels.team != 'a'":                       false,
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
