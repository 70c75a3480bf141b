package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerSafeDefaults: without --auth-config, `baton server` refuses a
// non-loopback listener unless told it may; with one, it authenticates.
func TestServerSafeDefaults(t *testing.T) {
	_, err := runServerCLI(t, context.Background(), "server", "--data-dir", t.TempDir(), "--http-addr", "0.0.0.0:0",
		"--grpc-addr", "127.0.0.1:0", "--agent-addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "--insecure-allow-unauthenticated") {
		t.Fatalf("unauthenticated server on 0.0.0.0: %v; want a refusal naming --insecure-allow-unauthenticated", err)
	}
	_, err = runServerCLI(t, context.Background(), "server", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0",
		"--grpc-addr", "0.0.0.0:0", "--agent-addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "--grpc-addr") {
		t.Fatalf("unauthenticated gRPC on 0.0.0.0: %v; want a refusal naming --grpc-addr", err)
	}
	cfg := filepath.Join(t.TempDir(), "auth.yaml")
	os.WriteFile(cfg, []byte("tokens:\n- {token: t0ken, subject: ops, role: admin}\n"), 0o600)
	base, _, _ := startServerCLI(t, "--auth-config", cfg)
	resp, err := http.Get(base + "/api/maestro/v1/consumers")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d; want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", base+"/api/maestro/v1/consumers", nil)
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin token: %d", resp.StatusCode)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("tokens:\n- {token: x, role: agent}\n"), 0o600)
	_, err = runServerCLI(t, context.Background(), "server", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--auth-config", bad)
	if err == nil || !strings.Contains(err.Error(), "subject") || !strings.Contains(err.Error(), "consumer") {
		t.Fatalf("bad auth config: %v; want each problem named", err)
	}
}
