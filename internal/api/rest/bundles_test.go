package rest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/baton-dev/baton/internal/api/rest"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

const bundles = api.BasePath + "/resource-bundles"

func TestBundleLifecycle(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		c.createConsumer("mgmt-1")
		body := bundleBody("mgmt-1", "shared-ingress")
		b := c.createBundle(body)
		wantID := rest.ResourceID(rest.DefaultSource, "mgmt-1", "shared-ingress")
		switch {
		case b.ID != wantID:
			t.Fatalf("id %s; want the sdk-go resource id %s", b.ID, wantID)
		case b.Kind != api.KindResourceBundle || b.Href != bundles+"/"+b.ID:
			t.Fatalf("kind/href %q %q", b.Kind, b.Href)
		case b.Name != b.ID || b.Metadata.Name != "shared-ingress" || b.Metadata.Namespace != "mgmt-1" || b.Metadata.UID != b.ID:
			t.Fatalf("names: name %q metadata %+v", b.Name, b.Metadata)
		case b.ConsumerName != "mgmt-1" || b.Source != rest.DefaultSource || b.Version < 1:
			t.Fatalf("consumer %q source %q version %d", b.ConsumerName, b.Source, b.Version)
		case len(b.Manifests) != 2 || len(b.ManifestConfigs) != 1 || b.DeleteOption == nil || b.DeleteOption.PropagationPolicy != "Foreground":
			t.Fatalf("spec %+v", b)
		case b.Status == nil || b.Status.Revision != 0 || b.DeletedAt != nil:
			t.Fatalf("status %+v deleted_at %v", b.Status, b.DeletedAt)
		}
		got := c.getBundle(b.ID)
		if got.Version != b.Version || string(got.Manifests[0]) != string(b.Manifests[0]) {
			t.Fatalf("GET differs from POST: %+v", got)
		}

		// Creating the same bundle again is a conflict that names PUT.
		before := snapshot(t, c.st)
		c.expectError(http.StatusConflict, "maestro-6", "POST", bundles, body, "already exists", "PUT")
		unchanged(t, c.st, before, "duplicate POST")

		// PUT with the version read: accepted, version moves.
		body["version"] = b.Version
		body["manifests"].([]any)[1].(map[string]any)["data"] = map[string]any{"a": "c"}
		var put api.ResourceBundle
		c.expect(http.StatusOK, "PUT", bundles+"/"+b.ID, body, &put)
		if put.Version <= b.Version || put.ID != b.ID {
			t.Fatalf("PUT: version %d after %d", put.Version, b.Version)
		}
		var cm map[string]any
		_ = json.Unmarshal(put.Manifests[1], &cm)
		if cm["data"].(map[string]any)["a"] != "c" {
			t.Fatalf("PUT did not replace the manifest: %s", put.Manifests[1])
		}

		// PUT with a stale version: 409, nothing changes.
		before = snapshot(t, c.st)
		c.expectError(http.StatusConflict, "maestro-6", "PUT", bundles+"/"+b.ID, body, "GET it and retry")
		unchanged(t, c.st, before, "PUT with a stale version")

		// Version 0 and absent mean "current".
		body["version"] = 0
		c.expect(http.StatusOK, "PUT", bundles+"/"+b.ID, body, &put)
		delete(body, "version")
		c.expect(http.StatusOK, "PUT", bundles+"/"+b.ID, body, &put)

		// A GET result sent back as is is a valid PUT.
		r := c.expect(http.StatusOK, "GET", bundles+"/"+b.ID, nil, nil)
		var again api.ResourceBundle
		c.expect(http.StatusOK, "PUT", bundles+"/"+b.ID, r.body, &again)
		if again.Version != put.Version+1 {
			t.Fatalf("round trip PUT: version %d; want %d", again.Version, put.Version+1)
		}

		// Identity cannot change.
		before = snapshot(t, c.st)
		c.expectError(http.StatusBadRequest, "maestro-8", "PUT", bundles+"/"+b.ID,
			map[string]any{"consumer_name": "other", "manifests": body["manifests"]}, "consumer_name", "cannot change")
		c.expectError(http.StatusBadRequest, "maestro-8", "PATCH", bundles+"/"+b.ID,
			map[string]any{"metadata": map[string]any{"name": "renamed"}}, "metadata.name", "cannot change")
		c.expectError(http.StatusNotFound, "maestro-7", "PUT", bundles+"/nope", body)
		c.expectError(http.StatusNotFound, "maestro-7", "PATCH", bundles+"/nope", map[string]any{})
		unchanged(t, c.st, before, "identity changes")

		// PATCH merges: labels merge, manifests stay.
		var patched api.ResourceBundle
		c.expect(http.StatusOK, "PATCH", bundles+"/"+b.ID,
			map[string]any{"metadata": map[string]any{"labels": map[string]string{"tier": "edge"}}}, &patched)
		if patched.Version != again.Version+1 || patched.Metadata.Labels["tier"] != "edge" ||
			patched.Metadata.Labels["app"] != "ingress" || len(patched.Manifests) != 2 {
			t.Fatalf("PATCH result: version %d labels %v manifests %d", patched.Version, patched.Metadata.Labels, len(patched.Manifests))
		}
		before = snapshot(t, c.st)
		c.expectError(http.StatusConflict, "maestro-6", "PATCH", bundles+"/"+b.ID, map[string]any{"version": b.Version}, "the current version is")
		c.expectError(http.StatusBadRequest, "maestro-8", "PATCH", bundles+"/"+b.ID,
			map[string]any{"delete_option": map[string]any{"propagationPolicy": "Sometimes"}}, "delete_option.propagationPolicy")
		unchanged(t, c.st, before, "bad PATCH")

		// DELETE marks deleting; the bundle stays until the agent confirms.
		c.expect(http.StatusNoContent, "DELETE", bundles+"/"+b.ID, nil, nil)
		deleting := c.getBundle(b.ID)
		if deleting.DeletedAt == nil || deleting.Version <= patched.Version {
			t.Fatalf("after DELETE: deleted_at %v version %d", deleting.DeletedAt, deleting.Version)
		}
		var list api.List[api.ResourceBundle]
		c.expect(http.StatusOK, "GET", bundles, nil, &list)
		if list.Total != 1 || list.Items[0].DeletedAt == nil {
			t.Fatalf("list while deleting: %+v", list)
		}
		c.expect(http.StatusNoContent, "DELETE", bundles+"/"+b.ID, nil, nil) // no-op
		before = snapshot(t, c.st)
		c.expectError(http.StatusConflict, "maestro-6", "PUT", bundles+"/"+b.ID, body, "being deleted")
		c.expectError(http.StatusConflict, "maestro-6", "PATCH", bundles+"/"+b.ID, map[string]any{}, "being deleted")
		c.expectError(http.StatusConflict, "maestro-6", "POST", bundles, bundleBody("mgmt-1", "shared-ingress"), "being deleted")
		unchanged(t, c.st, before, "writes to a deleting bundle")
		c.expectError(http.StatusNotFound, "maestro-7", "DELETE", bundles+"/nope", nil)

		// The agent confirms: the bundle is gone. Recreating it reuses the
		// id: clients see version 1, as in Maestro, the agent a generation
		// above the old ones (I4).
		if err := c.st.PurgeBundle(context.Background(), b.ID, deleting.Version); err != nil {
			t.Fatal(err)
		}
		c.expectError(http.StatusNotFound, "maestro-7", "GET", bundles+"/"+b.ID, nil, b.ID)
		re := c.createBundle(bundleBody("mgmt-1", "shared-ingress"))
		stored, err := c.st.GetBundle(context.Background(), re.ID)
		if re.ID != b.ID || re.Version != 1 || err != nil || stored.Generation <= deleting.Version {
			t.Fatalf("recreated: id %s version %d generation %d (%v); want id %s, version 1, a generation above %d",
				re.ID, re.Version, stored.Generation, err, b.ID, deleting.Version)
		}
		var patchedAgain api.ResourceBundle
		c.expect(http.StatusOK, "PATCH", bundles+"/"+b.ID, map[string]any{"version": 1, "metadata": map[string]any{"labels": map[string]string{"life": "two"}}}, &patchedAgain)
		if patchedAgain.Version != 2 {
			t.Fatalf("PATCH of the recreated bundle at version 1: version %d; want 2", patchedAgain.Version)
		}
	})
}

func TestBundleSourceAndNames(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		c.createConsumer("mgmt-1")
		body := bundleBody("mgmt-1", "w1")
		body["source"] = "cs"
		body["name"] = "friendly"
		b := c.createBundle(body)
		if b.ID != rest.ResourceID("cs", "mgmt-1", "w1") || b.Source != "cs" || b.Name != "friendly" {
			t.Fatalf("bundle %s source %s name %s", b.ID, b.Source, b.Name)
		}
		// name alone names the bundle when metadata.name is absent.
		body = bundleBody("mgmt-1", "")
		delete(body["metadata"].(map[string]any), "name")
		body["name"] = "w2"
		b = c.createBundle(body)
		if b.Metadata.Name != "w2" || b.Name != "w2" {
			t.Fatalf("metadata.name %q name %q; want w2", b.Metadata.Name, b.Name)
		}
		// Server-set fields are ignored.
		body = bundleBody("mgmt-1", "w3")
		body["id"], body["version"], body["kind"] = "my-id", 99, "Other"
		body["status"] = map[string]any{"revision": 7}
		b = c.createBundle(body)
		if b.ID == "my-id" || b.Kind != api.KindResourceBundle || b.Status.Revision != 0 {
			t.Fatalf("server-set fields taken from the body: %+v", b)
		}
	})
}

// fixedFreshness reports every bundle stale with a reason.
type fixedFreshness struct{}

func (fixedFreshness) Freshness(b *store.Bundle) *api.Freshness {
	return &api.Freshness{State: api.FreshnessStale, Reason: api.ReasonAgentDisconnected, AgeSeconds: float64(b.Generation)}
}

func TestFreshnessHook(t *testing.T) {
	s := storetest.NewSQLite(t)
	c := newClient(t, s, rest.Options{Freshness: fixedFreshness{}})
	c.createConsumer("mgmt-1")
	b := c.createBundle(bundleBody("mgmt-1", "w1"))
	if f := b.Status.Freshness; f == nil || f.State != api.FreshnessStale || f.Reason != api.ReasonAgentDisconnected {
		t.Fatalf("freshness on create: %+v", f)
	}
	var list api.List[api.ResourceBundle]
	c.expect(http.StatusOK, "GET", bundles, nil, &list)
	if f := list.Items[0].Status.Freshness; f == nil || f.AgeSeconds != float64(b.Version) {
		t.Fatalf("freshness in list: %+v", f)
	}
	// Without a hook the field is absent.
	plain := newClient(t, s, rest.Options{})
	r := plain.expect(http.StatusOK, "GET", bundles+"/"+b.ID, nil, nil)
	var m map[string]map[string]any
	_ = json.Unmarshal(r.body, &m)
	if _, ok := m["status"]["freshness"]; ok {
		t.Fatalf("freshness present without a hook: %s", r.body)
	}
}
