package fleet

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFleetCorrectness runs a small fleet against the built binary: every
// change must be seen, none lost, every bundle Fresh with its object's
// value at the end, also across a server kill -9 and restart. It asserts no
// timing; the full-size runs are benchmarks (docs/benchmarks.md).
func TestFleetCorrectness(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built binary")
	}
	bin := os.Getenv("BATON_BIN")
	if bin == "" {
		t.Skip("BATON_BIN is not set (make test sets it)")
	}
	agents := envInt("BATON_FLEET_AGENTS", 200)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := Launch(ctx, bin, t.TempDir(), []string{"--heartbeat-timeout", "10s", "--resend-after", "1s"}, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	res, err := Run(ctx, Options{Server: srv.REST, AgentServer: srv.Agent, Agents: agents, BundlesPerAgent: 5,
		Duration: 20 * time.Second, ChangesPerSecond: 50, Heartbeat: 2 * time.Second, Settle: 90 * time.Second,
		Restart: srv.Restart, Progress: testWriter{t}}, NewProbe(ctx, srv.PID))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.Changes == 0 || res.Lost != 0 || res.Wrong != 0 || res.StaleAtEnd != 0 {
		t.Fatalf("changes %d, lost %d, wrong at end %d, stale at end %d: want changes > 0 and nothing lost, wrong or stale",
			res.Changes, res.Lost, res.Wrong, res.StaleAtEnd)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testLog keeps the server's output for a failed test only.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	if os.Getenv("BATON_FLEET_SERVER_LOG") != "" {
		w.t.Log(string(p))
	}
	return len(p), nil
}
