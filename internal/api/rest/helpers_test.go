package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/baton-dev/baton/internal/api/rest"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// client talks to a real HTTP server serving the REST handler.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
	st   store.Store
	// strict leaves out api.ExtensionsHeader, as Maestro's clients do;
	// otherwise every request asks for baton's additions, as baton's own
	// client does.
	strict bool
}

func newClient(t testing.TB, s store.Store, opts rest.Options) *client {
	t.Helper()
	opts.Store = s
	srv := httptest.NewServer(rest.New(opts))
	t.Cleanup(srv.Close)
	return &client{t: t, base: srv.URL, hc: srv.Client(), st: s}
}

// each runs fn against a REST server on a fresh SQLite and a fresh
// PostgreSQL store.
func each(t *testing.T, fn func(t *testing.T, c *client)) {
	storetest.Each(t, func(t *testing.T, s store.Store) { fn(t, newClient(t, s, rest.Options{})) })
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends body (a string is sent as is, anything else as JSON).
func (c *client) do(method, path string, body any) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !c.strict {
		req.Header.Set(api.ExtensionsHeader, "true")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// expect sends a request and fails unless the status is want; it decodes
// the body into out when out is not nil.
func (c *client) expect(want int, method, path string, body, out any) response {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != want {
		c.t.Fatalf("%s %s: got %s; want status %d", method, path, r, want)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
		}
	}
	return r
}

// expectError checks a Maestro error body with the status, code and a
// reason mentioning every string of mention.
func (c *client) expectError(status int, code string, method, path string, body any, mention ...string) api.Error {
	c.t.Helper()
	var e api.Error
	r := c.expect(status, method, path, body, &e)
	if e.Kind != "Error" || e.Code != code || e.ID == "" || e.Href != api.BasePath+"/errors/"+e.ID || e.OperationID == "" {
		c.t.Fatalf("%s %s: error body %s; want kind Error, code %s, id, href and operation_id", method, path, r.body, code)
	}
	for _, m := range mention {
		if !strings.Contains(e.Reason, m) {
			c.t.Fatalf("%s %s: reason %q does not mention %q", method, path, e.Reason, m)
		}
	}
	return e
}

func (c *client) createConsumer(name string) api.Consumer {
	c.t.Helper()
	var out api.Consumer
	c.expect(http.StatusCreated, "POST", api.BasePath+"/consumers", map[string]any{"name": name}, &out)
	return out
}

// bundleBody returns a valid bundle body for consumer with metadata.name
// name, as a generic map tests can change.
func bundleBody(consumer, name string) map[string]any {
	var m map[string]any
	raw := fmt.Sprintf(`{
	  "consumer_name": %q,
	  "metadata": {"name": %q, "labels": {"app": "ingress"}},
	  "manifests": [
	    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "router", "namespace": "ingress"},
	     "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}},
	    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "router-config", "namespace": "ingress"},
	     "data": {"a": "b"}}
	  ],
	  "manifest_configs": [{
	    "resourceIdentifier": {"group": "", "resource": "services", "name": "router", "namespace": "ingress"},
	    "updateStrategy": {"type": "ServerSideApply", "serverSideApply": {"force": true}},
	    "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "ip", "path": ".status.loadBalancer.ingress[0].ip"}]}]
	  }],
	  "delete_option": {"propagationPolicy": "Foreground"}
	}`, consumer, name)
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		panic(err)
	}
	return m
}

func (c *client) createBundle(body map[string]any) api.ResourceBundle {
	c.t.Helper()
	var out api.ResourceBundle
	c.expect(http.StatusCreated, "POST", api.BasePath+"/resource-bundles", body, &out)
	return out
}

func (c *client) getBundle(id string) api.ResourceBundle {
	c.t.Helper()
	var out api.ResourceBundle
	c.expect(http.StatusOK, "GET", api.BasePath+"/resource-bundles/"+id, nil, &out)
	return out
}

// snapshot is the whole observable state through the store, for checking
// that a rejected request changed nothing.
func snapshot(t testing.TB, s store.Store) string {
	t.Helper()
	ctx := context.Background()
	cs, err := s.ListConsumers(ctx, store.ListOptions{Page: 1, Size: 1000})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := s.ListBundles(ctx, store.ListOptions{Page: 1, Size: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := s.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(map[string]any{"consumers": cs, "bundles": bs, "seq": seq})
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// unchanged fails if the state differs from before.
func unchanged(t testing.TB, s store.Store, before, what string) {
	t.Helper()
	if after := snapshot(t, s); after != before {
		t.Fatalf("%s changed the stored state:\nbefore %s\nafter  %s", what, before, after)
	}
}
