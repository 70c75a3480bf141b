package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// TestResync runs resync against the REST API, answering the resync POSTs
// (202 Accepted, as the contract says) in front of it and recording them.
func TestResync(t *testing.T) {
	srv, err := server.New(server.Options{Store: storetest.NewSQLite(t)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var posts []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/resync") {
			mu.Lock()
			posts = append(posts, strings.TrimPrefix(r.URL.Path, api.BasePath))
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
			return
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	defer hs.Close()
	must(t, hs.URL, "apply", "-f", "../../examples/consumer-dev.yaml")
	must(t, hs.URL, "apply", "-f", "../../examples/shared-ingress.yaml")
	id := func(kind, name string) string {
		var obj struct{ ID string }
		if err := json.Unmarshal([]byte(must(t, hs.URL, "get", kind, name, "-o", "json")), &obj); err != nil || obj.ID == "" {
			t.Fatalf("get %s %s: %v", kind, name, err)
		}
		return obj.ID
	}
	consumerID, bundleID := id("consumer", "dev"), id("bundle", "shared-ingress")

	if out := must(t, hs.URL, "resync", "dev"); out != "consumer/dev resync requested\n" {
		t.Errorf("got %q", out)
	}
	if out := must(t, hs.URL, "resync", "bundle/shared-ingress", "--consumer", "dev"); out != "bundle/shared-ingress resync requested\n" {
		t.Errorf("got %q", out)
	}
	if out := must(t, hs.URL, "resync", "consumer/dev"); out != "consumer/dev resync requested\n" {
		t.Errorf("got %q", out)
	}
	want := []string{"/consumers/" + consumerID + "/resync", "/resource-bundles/" + bundleID + "/resync", "/consumers/" + consumerID + "/resync"}
	if strings.Join(posts, " ") != strings.Join(want, " ") {
		t.Errorf("posts %v; want %v", posts, want)
	}
	fails(t, hs.URL, []string{`consumer "nope" not found`}, "resync", "nope")
	fails(t, hs.URL, []string{`bundle "nope" not found`}, "resync", "bundle/nope")
}
