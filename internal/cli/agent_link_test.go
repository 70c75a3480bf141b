package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-dev/baton/internal/protocol"
)

func TestGRPCAgentOptionsRefuseBadInput(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent.pem")
	for name, tc := range map[string]struct {
		o    grpcAgentOptions
		want string
	}{
		"cert without key": {grpcAgentOptions{certFile: "c.pem"}, "--client-cert and --client-key go together"},
		"unreadable CA":    {grpcAgentOptions{caFile: missing}, "absent.pem"},
		"unreadable token": {grpcAgentOptions{tokenFile: missing}, "--token-file"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.o.dial(context.Background(), "127.0.0.1:1", "c1", nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("dial: %v; want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestDropHookFromEnv(t *testing.T) {
	t.Setenv(dropStatusEnv, "2")
	drop, err := dropHookFromEnv()
	if err != nil || drop == nil {
		t.Fatalf("hook: %v", err)
	}
	status, beat := protocol.Message{Type: protocol.TypeStatus}, protocol.Message{Type: protocol.TypeHeartbeat}
	if !drop(status) || drop(beat) || !drop(status) || drop(status) {
		t.Fatal("want the first two status messages dropped, nothing else")
	}
	t.Setenv(dropStatusEnv, "many")
	if _, err := dropHookFromEnv(); err == nil || !strings.Contains(err.Error(), dropStatusEnv) {
		t.Fatalf("bad value: %v; want an error naming %s", err, dropStatusEnv)
	}
}
