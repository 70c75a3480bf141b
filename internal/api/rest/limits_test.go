package rest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/baton-dev/baton/internal/api/rest"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// TestBundleOverTransportLimit: with agents served over MQTT, a bundle
// whose spec fits its own limit but whose spec message (spec plus the
// annotations in the `metadata` extension) does not fit 512 KiB is refused
// on create and update, naming the limit, and nothing changes; over gRPC
// the same bundle is accepted.
func TestBundleOverTransportLimit(t *testing.T) {
	big := func(name string) map[string]any {
		m := bundleBody("mgmt-1", name)
		manifest(m, 1)["data"] = map[string]any{"blob": strings.Repeat("x", limits.BundleSpecBytes-4000)}
		m["metadata"].(map[string]any)["annotations"] = map[string]any{"example.com/notes": strings.Repeat("n", 200<<10)}
		return m
	}
	storetest.Each(t, func(t *testing.T, s store.Store) {
		c := newClient(t, s, rest.Options{Transport: limits.MQTT})
		c.createConsumer("mgmt-1")
		existing := c.createBundle(bundleBody("mgmt-1", "small"))
		before := snapshot(t, c.st)
		mention := []string{"manifests", "mqtt transport carries at most 524288 bytes (512 KiB)"}
		c.expectError(http.StatusBadRequest, "maestro-8", "POST", bundles, big("big"), mention...)
		unchanged(t, c.st, before, "POST of an oversized bundle")
		put := big("small")
		put["version"] = existing.Version
		c.expectError(http.StatusBadRequest, "maestro-8", "PUT", bundles+"/"+existing.ID, put, mention...)
		unchanged(t, c.st, before, "PUT of an oversized bundle")

		g := newClient(t, s, rest.Options{})
		g.createBundle(big("fits-grpc"))
	})
}
