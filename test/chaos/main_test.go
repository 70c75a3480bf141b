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
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/baton-dev/baton/internal/testenv"
)

var (
	kubeCfg    *rest.Config
	kubeconfig string // path, for agent processes
	batonBin   string
	// summary is the last line of the run, printed after the tests.
	summary string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(0)
	}
	code := func() int {
		tmp, err := os.MkdirTemp("", "baton-chaos-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		batonBin = os.Getenv("BATON_BIN")
		if batonBin == "" {
			batonBin = filepath.Join(tmp, "baton")
			build := exec.Command("go", "build", "-o", batonBin, "github.com/baton-dev/baton/cmd/baton")
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "chaos: building baton:", err)
				return 1
			}
		}
		env, err := testenv.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
		defer env.Stop()
		kubeCfg = env.Config
		if kubeconfig, err = env.KubeconfigFile(tmp); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: kubeconfig:", err)
			return 1
		}
		return m.Run()
	}()
	if summary != "" {
		fmt.Println(summary)
	}
	os.Exit(code)
}
