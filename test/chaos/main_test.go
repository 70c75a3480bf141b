// Package chaos runs baton's real processes — the built server, several
// agents for different consumers, a real kube-apiserver — under a seeded
// random workload and seeded random faults (kill -9 of the server or of an
// agent, cuts of the agent's link through a TCP proxy the runner controls,
// dropped status messages), keeps a history of every operation that was
// acknowledged, and checks with an independent checker that nothing
// acknowledged was lost and nothing is stale once the faults stop; during
// the run a sampler checks that REST never showed a Fresh value for an
// object that was gone longer than the detection bound.
//
// `make chaos DURATION=2m SEED=42` runs it; the last line printed is
//
//	chaos: <ops> ops, <faults> faults, <lost> lost, <stale> stale, <violations> violations
package chaos

import (
	"fmt"
	"os"
	"testing"

	"github.com/baton-dev/baton/internal/proctest"
	"k8s.io/client-go/rest"
)

var (
	kubeCfg    *rest.Config
	kubeconfig string // path, for agent processes
	batonBin   string
	// summary is the last line of the run, printed after the tests.
	summary string
)

func TestMain(m *testing.M) {
	code := proctest.Main(m, "chaos", func(w proctest.World) {
		batonBin, kubeCfg, kubeconfig = w.Bin, w.Config, w.Kubeconfig
	})
	if summary != "" {
		fmt.Println(summary)
	}
	os.Exit(code)
}
