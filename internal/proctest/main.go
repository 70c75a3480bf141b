package proctest

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

// World is what a package of process-level tests shares: the baton binary
// under test and one real kube-apiserver.
type World struct {
	Bin        string       // $BATON_BIN, or a binary built for the run
	Config     *rest.Config // the test apiserver, for the test's own clients
	Kubeconfig string       // a kubeconfig file of it, for agent processes
}

// Main is the body of such a package's TestMain: under -short it runs
// nothing; otherwise it builds baton unless $BATON_BIN names one, starts
// the apiserver, calls setup with the World, runs the tests and returns
// their exit code. name prefixes its error messages.
func Main(m *testing.M, name string, setup func(World)) int {
	flag.Parse()
	if testing.Short() {
		return 0
	}
	tmp, err := os.MkdirTemp("", "baton-"+name+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	w := World{Bin: os.Getenv("BATON_BIN")}
	if w.Bin == "" {
		w.Bin = filepath.Join(tmp, "baton")
		build := exec.Command("go", "build", "-o", w.Bin, "github.com/baton-dev/baton/cmd/baton")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: building baton: %v\n", name, err)
			return 1
		}
	}
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	defer env.Stop()
	w.Config = env.Config
	if w.Kubeconfig, err = env.KubeconfigFile(tmp); err != nil {
		fmt.Fprintf(os.Stderr, "%s: kubeconfig: %v\n", name, err)
		return 1
	}
	setup(w)
	return m.Run()
}
