package cli

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store/storetest"
)

func runServerCLI(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// startServerCLI runs `baton server` with args in the background on a free
// HTTP address, waits until it is ready, and returns its base URL, a
// channel with the command's result and the func that stops it.
func startServerCLI(t *testing.T, args ...string) (base string, done <-chan error, stop context.CancelFunc) {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	result := make(chan error, 1)
	go func() {
		// Every listener on an ephemeral port: a baton running on this
		// machine holds the defaults.
		args := append([]string{"server", "--data-dir", t.TempDir(), "--http-addr", addr,
			"--grpc-addr", "127.0.0.1:0", "--agent-addr", "127.0.0.1:0", "--log-level", "warn"}, args...)
		_, err := runServerCLI(t, ctx, args...)
		result <- err
	}()
	base = "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, result, cancel
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v", err)
		}
		select {
		case err := <-result:
			t.Fatalf("server exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	for name, flag := range map[string]func(t *testing.T) []string{
		"sqlite":   func(t *testing.T) []string { return []string{"--data-dir", filepath.Join(t.TempDir(), "data")} },
		"postgres": func(t *testing.T) []string { return []string{"--db-url", storetest.PostgresURL(t)} },
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"migrate"}, flag(t)...)
			out, err := runServerCLI(t, context.Background(), args...)
			if err != nil || !strings.Contains(out, "applied 00001_") || !strings.Contains(out, "database is at schema version") {
				t.Fatalf("first migrate: %v\n%s", err, out)
			}
			out, err = runServerCLI(t, context.Background(), args...)
			if err != nil || strings.Contains(out, "applied") || !strings.Contains(out, "up to date") {
				t.Fatalf("second migrate: %v\n%s", err, out)
			}
		})
	}
}

func TestServerCommand(t *testing.T) {
	base, done, cancel := startServerCLI(t)
	resp, err := http.Post(base+"/api/maestro/v1/consumers", "application/json", strings.NewReader(`{"name":"mgmt-1"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create consumer through the command's server: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server command returned %v after cancel", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server command did not stop")
	}
}

func TestServerHelp(t *testing.T) {
	out, err := runServerCLI(t, context.Background(), "server", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--data-dir", "--db-url", "--http-addr", "BATON_DATA_DIR", "Examples:", "/readyz"} {
		if !strings.Contains(out, want) {
			t.Errorf("baton server --help lacks %q", want)
		}
	}
}
