package e2e

import (
	"net/http"
	"os"
	"slices"
	"testing"
	"time"
)

// TestServerDatabaseReset: the agent holds a bundle at version 3 when the
// server's database is reset (emptied while the server is down). The
// consumer and the bundle are created again; the bundle has the same id
// (derived from source, consumer and name) and restarts at version 1. The
// agent applies it and REST shows its status: the old version 3 does not
// shadow the new version 1 (DESIGN.md fact 2).
func TestServerDatabaseReset(t *testing.T) {
	c := newCluster(t, sqliteStore)
	c.createConsumer("c1")
	c.startAgent("c1")
	ns := c.namespace("dbreset")
	id := c.createBundle(configMapBundle("c1", "reset", ns, "cm", "one", "Update")).ID
	eventually(t, 10*time.Second, "first status", func() bool { return c.converged(id, "one") })
	for _, v := range []string{"two", "three"} {
		b, _, err := c.getBundle(id)
		if err != nil {
			t.Fatal(err)
		}
		body := configMapBundle("c1", "reset", ns, "cm", v, "Update")
		body["version"] = b.Version
		c.mustDo(http.MethodPut, "/resource-bundles/"+id, body, nil)
		eventually(t, 10*time.Second, "status of "+v, func() bool { return c.converged(id, v) })
	}
	if b, _, _ := c.getBundle(id); b.Version != 3 {
		t.Fatalf("bundle version %d before the reset; want 3", b.Version)
	}

	c.server.Stop()
	i := slices.Index(c.server.args, "--data-dir")
	if i < 0 {
		t.Fatal("server has no --data-dir")
	}
	dir := c.server.args[i+1]
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.server.Restart()
	c.waitReady(c.rest + "/readyz")

	c.createConsumer("c1")
	b := c.createBundle(configMapBundle("c1", "reset", ns, "cm", "fresh", "Update"))
	if b.ID != id || b.Version != 1 {
		t.Fatalf("recreated bundle: id %s version %d; want id %s version 1", b.ID, b.Version, id)
	}
	eventually(t, 20*time.Second, "the recreated bundle applied and reported", func() bool {
		v, _ := c.configMapValue(ns, "cm")
		return v == "fresh" && c.converged(id, "fresh")
	})
}
