package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/kubeassets"
	"github.com/baton-dev/baton/internal/testenv"
	"github.com/baton-dev/baton/pkg/api"
)

func init() { register(newDevCmd) }

type devOptions struct {
	dataDir   string
	httpAddr  string
	grpcAddr  string
	agentAddr string
	metrics   string
	consumer  string
	logLevel  string
}

func newDevCmd() *cobra.Command {
	o := &devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole baton on this machine: server, local kube-apiserver + etcd, and an agent",
		Long: `Run a complete baton on one machine for trying it out: a baton server on
SQLite, a local kube-apiserver and etcd (built from the Go module proxy the
first time, which takes several minutes, then cached), and an agent for
consumer "dev" that applies bundles to that local cluster.

The local cluster runs no controllers: Deployments create no Pods and
LoadBalancer Services get no IP unless you set .status yourself (kubectl
patch --subresource=status), which is how the demo plays the cloud provider.

Ctrl-C stops everything. Data (the SQLite database and the kubeconfig) stays
in --data-dir; the cluster starts empty each time.`,
		Example: `  # Start everything, then in another terminal:
  baton dev
  baton apply -f examples/shared-ingress.yaml
  baton get bundles -o wide
  export KUBECONFIG=.baton/dev/kubeconfig   # talk to the local cluster
  baton doctor --kubeconfig .baton/dev/kubeconfig`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", ".baton/dev", "directory for the SQLite database and the kubeconfig")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8000", "address of the REST API")
	f.StringVar(&o.grpcAddr, "grpc-addr", "127.0.0.1:8090", "address of the gRPC endpoint for source clients")
	f.StringVar(&o.agentAddr, "agent-addr", "127.0.0.1:8091", "address of the gRPC endpoint for agents")
	f.StringVar(&o.metrics, "agent-metrics-addr", "127.0.0.1:8092", "address of the agent's /healthz and /metrics")
	f.StringVar(&o.consumer, "consumer", "dev", "name of the consumer the local agent serves")
	f.StringVar(&o.logLevel, "log-level", "warn", "log level of the server and the agent")
	return cmd
}

func (o *devOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	for _, addr := range []string{o.httpAddr, o.grpcAddr, o.agentAddr, o.metrics} {
		if err := portFree(addr); err != nil {
			return &ExitError{Code: 1, Msg: fmt.Sprintf("%s is in use (%v); stop what listens there or pass another address", addr, err)}
		}
	}
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "baton dev: preparing kube-apiserver and etcd (the first time this builds them: several minutes)…")
	assets, err := kubeassets.Ensure(ctx, stderr)
	if err != nil {
		return err
	}
	os.Setenv("KUBEBUILDER_ASSETS", assets)
	fmt.Fprintln(stderr, "baton dev: starting the local cluster…")
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "baton dev: stopping the local cluster…")
		_ = env.Stop()
	}()
	absData, _ := filepath.Abs(o.dataDir)
	kubeconfig, err := env.KubeconfigFile(absData)
	if err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return runSub(gctx, newServerCmd(), "server", "--data-dir", filepath.Join(absData, "server"),
			"--http-addr", o.httpAddr, "--grpc-addr", o.grpcAddr, "--agent-addr", o.agentAddr, "--log-level", o.logLevel)
	})
	base := "http://" + o.httpAddr
	if err := waitHTTP(gctx, base+"/readyz"); err != nil {
		return errors.Join(err, g.Wait())
	}
	if err := ensureConsumer(gctx, base, o.consumer); err != nil {
		return err
	}
	g.Go(func() error {
		return runSub(gctx, newAgentCmd(), "agent", "--consumer", o.consumer, "--server", o.agentAddr,
			"--kubeconfig", kubeconfig, "--metrics-addr", o.metrics, "--log-level", o.logLevel)
	})
	if err := waitHTTP(gctx, "http://"+o.metrics+"/readyz"); err != nil {
		return errors.Join(err, g.Wait())
	}
	fmt.Fprintf(stdout, `baton dev is running.

  REST API     %[1]s/api/maestro/v1
  gRPC         sources %[2]s   agents %[3]s
  metrics      %[1]s/metrics   agent http://%[4]s/metrics
  kubeconfig   %[5]s
  kubectl      %[6]s
  consumer     %[7]s (its agent is connected)

Try, in another terminal:
  %[8]s apply -f examples/shared-ingress.yaml
  %[8]s get bundles -o wide
  export KUBECONFIG=%[5]s
  %[8]s doctor --kubeconfig %[5]s
  make demo        # the runbook's incident on this baton dev

Press Ctrl-C to stop.
`, base, o.grpcAddr, o.agentAddr, o.metrics, kubeconfig, filepath.Join(assets, "kubectl"), o.consumer, selfName())
	err = g.Wait()
	if ctx.Err() != nil {
		return nil // Ctrl-C: a clean stop
	}
	return err
}

// selfName is how the user ran this binary ("bin/baton", "baton"), for
// hints they can paste.
func selfName() string {
	if len(os.Args) > 0 && strings.ContainsRune(os.Args[0], filepath.Separator) {
		if rel, err := filepath.Rel(".", os.Args[0]); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
		return os.Args[0]
	}
	return "baton"
}

// runSub runs one of baton's own commands in this process.
func runSub(ctx context.Context, cmd *cobra.Command, name string, args ...string) error {
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// waitHTTP polls url until it answers 200, ctx ends, or a minute passes.
func waitHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not become ready: %w", url, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ensureConsumer(ctx context.Context, base, name string) error {
	c, err := client.New(base)
	if err != nil {
		return err
	}
	if _, err := c.ConsumerByName(ctx, name); err == nil {
		return nil
	} else if !client.IsNotFound(err) {
		return err
	}
	_, err = c.CreateConsumer(ctx, api.Consumer{Name: name})
	if client.IsConflict(err) {
		return nil
	}
	return err
}
