package cli

import (
	"strings"
	"testing"
)

// Finalizing without the agent asks first; --yes skips the question; the
// aliases of Maestro's CLI pass the flags on.
func TestDeleteOrphanAndDecommission(t *testing.T) {
	srv := startServer(t)
	must(t, srv, "apply", "-f", "../../examples/")
	must(t, srv, "delete", "bundle", "shared-ingress", "--consumer", "dev")

	fails(t, srv, []string{"--orphan applies to bundles"}, "delete", "consumer", "dev", "--orphan")
	fails(t, srv, []string{"--cascade=foreground: unsupported"}, "delete", "consumer", "dev", "--cascade=foreground")
	fails(t, srv, []string{"--cascade applies to consumers"}, "delete", "bundle", "widgets", "--cascade=orphan")

	_, errOut, err := baton(t, "n\n", "delete", "bundle", "shared-ingress", "--consumer", "dev", "--orphan", "--server", srv)
	if err == nil || !strings.Contains(err.Error(), "not confirmed; nothing changed") || !strings.Contains(errOut, "objects stay") {
		t.Fatalf("declined orphan: %v (asked %q)", err, errOut)
	}
	must(t, srv, "get", "bundle", "shared-ingress")
	out, _, err := baton(t, "y\n", "delete", "bundle", "shared-ingress", "--consumer", "dev", "--orphan", "--server", srv)
	if err != nil || !strings.Contains(out, "bundle/shared-ingress finalized without its agent") {
		t.Fatalf("confirmed orphan: %q, %v", out, err)
	}
	fails(t, srv, []string{"shared-ingress"}, "get", "bundle", "shared-ingress")

	fails(t, srv, []string{"still has resource bundles", "cascade=orphan"}, "delete", "consumer", "dev")
	out = must(t, srv, "consumer", "delete", "dev", "--cascade=orphan", "--yes")
	if !strings.Contains(out, "consumer/dev decommissioned") {
		t.Fatalf("decommission: %q", out)
	}
	if out := must(t, srv, "get", "bundles"); strings.Contains(out, "dev") {
		t.Fatalf("bundles left after decommission:\n%s", out)
	}
}
