package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/server/servertest"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// TestResync runs resync against a server whose agent link records the
// requests it gets.
func TestResync(t *testing.T) {
	var mu sync.Mutex
	var posts []string
	resync := func(_ context.Context, consumer string, bundleIDs []string) error {
		mu.Lock()
		defer mu.Unlock()
		posts = append(posts, consumer+":"+strings.Join(bundleIDs, ","))
		return nil
	}
	hs := struct{ URL string }{servertest.Start(t, server.Options{Store: storetest.NewSQLite(t), Resync: resync})}
	must(t, hs.URL, "apply", "-f", "../../examples/consumer-dev.yaml")
	must(t, hs.URL, "apply", "-f", "../../examples/shared-ingress.yaml")
	id := func(kind, name string) string {
		var obj struct{ ID string }
		if err := json.Unmarshal([]byte(must(t, hs.URL, "get", kind, name, "-o", "json")), &obj); err != nil || obj.ID == "" {
			t.Fatalf("get %s %s: %v", kind, name, err)
		}
		return obj.ID
	}
	bundleID := id("bundle", "shared-ingress")

	if out := must(t, hs.URL, "resync", "dev"); out != "consumer/dev resync requested\n" {
		t.Errorf("got %q", out)
	}
	if out := must(t, hs.URL, "resync", "bundle/shared-ingress", "--consumer", "dev"); out != "bundle/shared-ingress resync requested\n" {
		t.Errorf("got %q", out)
	}
	if out := must(t, hs.URL, "resync", "consumer/dev"); out != "consumer/dev resync requested\n" {
		t.Errorf("got %q", out)
	}
	want := []string{"dev:", "dev:" + bundleID, "dev:"}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(posts, " ") != strings.Join(want, " ") {
		t.Errorf("posts %v; want %v", posts, want)
	}
	fails(t, hs.URL, []string{`consumer "nope" not found`}, "resync", "nope")
	fails(t, hs.URL, []string{`bundle "nope" not found`}, "resync", "bundle/nope")
}
