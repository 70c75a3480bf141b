package rest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// A bundle stuck deleting refuses a recreate with the way out; orphan=true
// finalizes it at once, after which the name is free.
func TestOrphanBundle(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		c.createConsumer("c1")
		b := c.createBundle(bundleBody("c1", "stuck"))
		path := api.BasePath + "/resource-bundles/" + b.ID
		c.expect(http.StatusNoContent, "DELETE", path, nil, nil)

		c.expectError(http.StatusConflict, "maestro-6", "POST", api.BasePath+"/resource-bundles", bundleBody("c1", "stuck"),
			"is still being deleted since", "NotConfirmed", "DELETE "+path+"?orphan=true")
		c.expectError(http.StatusConflict, "maestro-6", "PUT", path, bundleBody("c1", "stuck"),
			"cannot be changed", "?orphan=true")

		before := snapshot(t, c.st)
		c.expectError(http.StatusBadRequest, "maestro-8", "DELETE", path+"?orphan=yes", nil, `orphan: "yes" is not true or false`)
		unchanged(t, c.st, before, "DELETE with a bad orphan value")

		c.expect(http.StatusNoContent, "DELETE", path+"?orphan=true", nil, nil)
		c.expectError(http.StatusNotFound, "maestro-7", "GET", path, nil)
		c.expectError(http.StatusNotFound, "maestro-7", "DELETE", path+"?orphan=true", nil)
		orphans, err := c.st.Orphans(context.Background(), "c1")
		if err != nil || len(orphans) != 1 || orphans[0].BundleID != b.ID {
			t.Fatalf("Orphans = %+v, %v; want %s", orphans, err, b.ID)
		}
		again := c.createBundle(bundleBody("c1", "stuck"))
		// Clients see the new life from version 1; the agent sees a
		// generation above every earlier one of the id (DESIGN I4).
		stored, err := c.st.GetBundle(context.Background(), again.ID)
		if again.ID != b.ID || again.Version != 1 || err != nil || stored.Generation <= int64(b.Version) {
			t.Fatalf("recreated %s at version %d, generation %d (%v); want %s at version 1 and a generation above %d",
				again.ID, again.Version, stored.Generation, err, b.ID, b.Version)
		}

		// orphan=true also finalizes a bundle that was never deleted.
		live := c.createBundle(bundleBody("c1", "live"))
		c.expect(http.StatusNoContent, "DELETE", api.BasePath+"/resource-bundles/"+live.ID+"?orphan=true", nil, nil)
		c.expectError(http.StatusNotFound, "maestro-7", "GET", api.BasePath+"/resource-bundles/"+live.ID, nil)
	})
}

// cascade=orphan decommissions a consumer with bundles in every state.
func TestDecommissionConsumer(t *testing.T) {
	each(t, func(t *testing.T, c *client) {
		ctx := context.Background()
		c.createConsumer("gone")
		c.createConsumer("kept")
		pending := c.createBundle(bundleBody("gone", "pending"))
		applied := c.createBundle(bundleBody("gone", "applied"))
		if err := c.st.AckOutbox(ctx, "gone", applied.ID, applied.Version); err != nil {
			t.Fatal(err)
		}
		deleting := c.createBundle(bundleBody("gone", "deleting"))
		c.expect(http.StatusNoContent, "DELETE", api.BasePath+"/resource-bundles/"+deleting.ID, nil, nil)
		other := c.createBundle(bundleBody("kept", "other"))

		path := api.BasePath + "/consumers/gone"
		c.expectError(http.StatusConflict, "maestro-6", "DELETE", path, nil, "still has resource bundles", path+"?cascade=orphan")
		before := snapshot(t, c.st)
		c.expectError(http.StatusBadRequest, "maestro-8", "DELETE", path+"?cascade=foreground", nil,
			`cascade: "foreground" is not supported`)
		unchanged(t, c.st, before, "DELETE with an unsupported cascade")

		c.expect(http.StatusNoContent, "DELETE", path+"?cascade=orphan", nil, nil)
		c.expectError(http.StatusNotFound, "maestro-7", "GET", path, nil)
		for _, id := range []string{pending.ID, applied.ID, deleting.ID} {
			c.expectError(http.StatusNotFound, "maestro-7", "GET", api.BasePath+"/resource-bundles/"+id, nil)
		}
		c.getBundle(other.ID)
		if _, err := c.st.Decommissioned(ctx, "gone"); err != nil {
			t.Fatalf("Decommissioned: %v", err)
		}
		c.expectError(http.StatusNotFound, "maestro-7", "DELETE", path+"?cascade=orphan", nil)

		// Registered again: a plain consumer.
		c.createConsumer("gone")
		if _, err := c.st.Decommissioned(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Decommissioned after the consumer was created again: %v", err)
		}
	})
}
