package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/baton-dev/baton/internal/store/storetest"
)

// `baton bench rest` with a handful of creates, on both stores: it starts
// its own server process (or drives one with --server), creates, lists and
// reads the server's CPU from /metrics and its profiles from /debug/pprof.
// A correctness check of the tool; its figures are not asserted.
func TestBenchREST(t *testing.T) {
	eachStore(t, func(t *testing.T, kind storeKind) {
		prof := t.TempDir()
		args := []string{"bench", "rest", "--creates", "30", "--clients", "4", "--page-size", "7", "-o", "json"}
		if kind == postgresStore {
			args = append(args, "--db-url", storetest.PostgresURL(t))
		} else {
			args = append(args, "--profile-dir", prof, "--profile-duration", "1s")
		}
		out, err := exec.Command(batonBin, args...).Output()
		if err != nil {
			t.Fatalf("baton %v: %v\n%s", args, err, stderrOf(err))
		}
		var r struct {
			Creates, Clients, Pages  int
			Started                  string
			CreatesPerSecond         float64
			CreateP50Ms, CreateP99Ms float64
			ListBytes                int64
			ServerCPUMsPerCreate     float64
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("output: %v\n%s", err, out)
		}
		if r.Creates != 30 || r.Clients != 4 || r.Pages != 5 || r.Started != string(kind) || r.CreatesPerSecond <= 0 ||
			r.CreateP50Ms <= 0 || r.CreateP99Ms < r.CreateP50Ms || r.ListBytes < 30*2000 || r.ServerCPUMsPerCreate < 0 {
			t.Errorf("implausible result: %s", out)
		}
		if kind == sqliteStore {
			for _, f := range []string{"cpu.pprof", "block.pprof", "mutex.pprof", "trace.out"} {
				if fi, err := os.Stat(filepath.Join(prof, f)); err != nil || fi.Size() == 0 {
					t.Errorf("profile %s: %v", f, err)
				}
			}
		}
	})
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
