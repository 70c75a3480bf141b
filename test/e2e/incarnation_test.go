package e2e

import (
	"net/http"
	"os"
	"path/filepath"
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
		c.updateConfigMapBundle(t, id, "reset", ns, "cm", v)
	}
	if b, _, _ := c.getBundle(id); b.Version != 3 {
		t.Fatalf("bundle version %d before the reset; want 3", b.Version)
	}

	c.server.Stop()
	dir := c.dataDir()
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

// TestServerDatabaseRestored: the server's database is restored from a
// backup taken at version 1 while the agent holds version 3 of the bundle.
// The consumer record is the same, so the generations compare; the server
// notices the agent is ahead of the store and sends the store's version so
// that the agent takes it: the object and REST show version 1 again, and a
// later update is delivered too.
func TestServerDatabaseRestored(t *testing.T) {
	c := newCluster(t, sqliteStore)
	c.createConsumer("c1")
	c.startAgent("c1")
	ns := c.namespace("dbrestore")
	id := c.createBundle(configMapBundle("c1", "restore", ns, "cm", "one", "Update")).ID
	eventually(t, 10*time.Second, "first status", func() bool { return c.converged(id, "one") })

	c.server.Stop()
	dir := c.dataDir()
	backup := t.TempDir()
	if err := os.CopyFS(backup, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	c.server.Restart()
	c.waitReady(c.rest + "/readyz")
	for _, v := range []string{"two", "three"} {
		c.updateConfigMapBundle(t, id, "restore", ns, "cm", v)
	}

	c.server.Stop()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	c.server.Restart()
	c.waitReady(c.rest + "/readyz")
	if b, _, err := c.getBundle(id); err != nil || b.Version != 1 {
		t.Fatalf("restored bundle: version %d (err %v); want 1", b.Version, err)
	}
	eventually(t, 20*time.Second, "the restored version applied and reported", func() bool {
		v, _ := c.configMapValue(ns, "cm")
		return v == "one" && c.converged(id, "one")
	})
	c.updateConfigMapBundle(t, id, "restore", ns, "cm", "after")
	if v, _ := c.configMapValue(ns, "cm"); v != "after" {
		t.Fatalf("ConfigMap after the update: %q; want after", v)
	}
}

// dataDir is the SQLite server's --data-dir.
func (c *cluster) dataDir() string {
	c.t.Helper()
	args := c.server.Args()
	i := slices.Index(args, "--data-dir")
	if i < 0 {
		c.t.Fatal("server has no --data-dir")
	}
	return filepath.Clean(args[i+1])
}

// updateConfigMapBundle sets a configMapBundle's value and waits until REST
// reports it.
func (c *cluster) updateConfigMapBundle(t *testing.T, id, bundleName, ns, name, value string) {
	t.Helper()
	b, _, err := c.getBundle(id)
	if err != nil {
		t.Fatal(err)
	}
	body := configMapBundle("c1", bundleName, ns, name, value, "Update")
	body["version"] = b.Version
	c.mustDo(http.MethodPut, "/resource-bundles/"+id, body, nil)
	eventually(t, 10*time.Second, "status of "+value, func() bool { return c.converged(id, value) })
}
