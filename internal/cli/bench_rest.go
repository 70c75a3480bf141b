package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/bench/fleet"
	"github.com/baton-dev/baton/internal/bench/restbench"
)

func init() { benchCommands = append(benchCommands, newBenchRESTCmd) }

type benchRESTOptions struct {
	cfg        restbench.Config
	server     string
	tokenFile  string
	dbURL      string
	serverBin  string
	serverArgs []string
	profileDir string
	profileFor time.Duration
	output     string
}

func newBenchRESTCmd() *cobra.Command {
	o := &benchRESTOptions{}
	cmd := &cobra.Command{
		Use:   "rest",
		Short: "Create and list bundles over REST from concurrent clients and print the rates",
		Long: `Drive a baton server's REST API from this process, as an external client does:
--clients concurrent HTTP clients create --creates bundles of about 3 KB (a
Service and a ConfigMap, a feedback rule) for one consumer, then the bundles of
the run are listed as one page and in pages of --page-size.

Printed: creates per second, the p50 and p99 latency of a create, the time of
both lists, and the server process's CPU time per create (read from its
process_cpu_seconds_total metric, so it is the server's, not this process's).

Without --server, a server is started as a separate process (this binary,
"baton server") on loopback ports with SQLite in a temporary directory, or on
--db-url; it is stopped at the end. With --server, the bundles of the run stay
on that server (consumer bench-<time>, no agent).

With --profile-dir, CPU, block and mutex profiles and an execution trace of
the server are taken during the creates (the server needs --enable-pprof,
which a started server has) and written there for 'go tool pprof' and 'go
tool trace'.`,
		Example: `  # Start a server on SQLite and measure it with 8 clients
  baton bench rest

  # The same on PostgreSQL (use an empty database)
  baton bench rest --db-url 'postgres://postgres@127.0.0.1:5432/bench?sslmode=disable'

  # A running server, 32 clients, profiles into ./prof
  baton bench rest --server http://127.0.0.1:8000 --clients 32 --profile-dir prof`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "URL of a running server (empty: start one)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding a bearer token sent with every request")
	f.IntVar(&o.cfg.Clients, "clients", 8, "concurrent HTTP clients")
	f.IntVar(&o.cfg.Creates, "creates", 6000, "bundles to create (and then list)")
	f.IntVar(&o.cfg.PageSize, "page-size", 100, "page size of the paged list")
	f.StringVar(&o.cfg.Consumer, "consumer", "", "consumer of the bundles, created if missing (default: bench-<time>)")
	f.StringVar(&o.dbURL, "db-url", "", "PostgreSQL URL of the started server (empty: SQLite in a temporary directory)")
	f.StringVar(&o.serverBin, "server-bin", "", "baton binary of the started server (default: this one)")
	f.StringArrayVar(&o.serverArgs, "server-arg", nil, "extra flag of the started server (repeatable), e.g. --server-arg=--log-level=debug")
	f.StringVar(&o.profileDir, "profile-dir", "", "write cpu.pprof, block.pprof, mutex.pprof and trace.out of the server here")
	f.DurationVar(&o.profileFor, "profile-duration", 3*time.Second, "length of the profiles (whole seconds)")
	f.StringVarP(&o.output, "output", "o", "", "output format: json or yaml")
	return cmd
}

func (o *benchRESTOptions) run(cmd *cobra.Command) error {
	if err := checkOutput(o.output, outTable, outJSON, outYAML); err != nil {
		return err
	}
	if o.server != "" && (o.dbURL != "" || o.serverBin != "" || len(o.serverArgs) > 0) {
		return &ExitError{Code: 2, Msg: "--db-url, --server-bin and --server-arg configure a started server; they do not go with --server"}
	}
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		o.cfg.Token = strings.TrimSpace(string(b))
	}
	ctx := cmd.Context()
	o.cfg.Server = o.server
	started := ""
	if o.server == "" {
		url, st, stop, err := startBenchServer(ctx, o.serverBin, o.dbURL, o.serverArgs, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer stop()
		o.cfg.Server, started = url, st
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
		o.cfg.Profile = func(ctx context.Context) {
			if err := fetchProfiles(ctx, o.cfg.Server, o.profileDir, o.profileFor); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: profiles: %v\n", err)
			}
		}
	}
	load0 := loadAverage()
	res, err := restbench.Run(ctx, o.cfg)
	if err != nil {
		return err
	}
	out := benchRESTOutput{Result: res, Started: started, LoadBefore: load0, LoadAfter: loadAverage()}
	if o.output != outTable {
		return newPrinter(cmd.OutOrStdout(), o.output).encode(out)
	}
	return out.print(cmd.OutOrStdout())
}

// benchRESTOutput is what `baton bench rest` prints.
type benchRESTOutput struct {
	restbench.Result
	// Started is the store of the server the command started ("sqlite",
	// "postgres"), empty for --server.
	Started    string `json:"started,omitempty"`
	LoadBefore string `json:"loadAverageBefore,omitempty"`
	LoadAfter  string `json:"loadAverageAfter,omitempty"`
}

func (r benchRESTOutput) print(w io.Writer) error {
	srv := r.Server
	if r.Started != "" {
		srv += " (started, " + r.Started + ")"
	}
	cpu := "unknown (no process_cpu_seconds_total in /metrics)"
	if r.ServerCPUMsPer >= 0 {
		cpu = fmt.Sprintf("%.3f ms per create (%.2f cores while creating)", r.ServerCPUMsPer, r.ServerCPUShare)
	}
	t := &table{w: w}
	kv := func(k, v string) { t.row(k + "\t" + v) }
	kv("server", srv)
	kv("clients", fmt.Sprint(r.Clients))
	kv("creates", fmt.Sprintf("%d × %d B in %.2f s", r.Creates, r.BundleBytes, r.CreateSeconds))
	kv("creates/s", fmt.Sprintf("%.0f", r.CreatesPerSec))
	kv("create latency", fmt.Sprintf("p50 %.2f ms, p99 %.2f ms", r.CreateP50Ms, r.CreateP99Ms))
	kv(fmt.Sprintf("list %d, one page", r.Creates), fmt.Sprintf("%.3f s (%.1f MB)", r.ListOnePageSec, float64(r.ListBytes)/1e6))
	kv(fmt.Sprintf("list %d, %d pages", r.Creates, r.Pages), fmt.Sprintf("%.3f s", r.ListPagesSec))
	kv("server CPU", cpu)
	if r.LoadBefore != "" {
		kv("load average", r.LoadBefore+" before, "+r.LoadAfter+" after")
	}
	return t.Flush()
}

// loadAverage is the first three fields of /proc/loadavg, or "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// benchProfiles are the files --profile-dir receives, by /debug/pprof/ name.
var benchProfiles = map[string]string{"profile": "cpu.pprof", "block": "block.pprof", "mutex": "mutex.pprof", "trace": "trace.out"}

// fetchProfiles takes the CPU, block and mutex profiles and an execution
// trace of the server at once, each over d, into dir. The trace shows time
// blocked in system calls (go tool trace -pprof=syscall), which no profile
// does.
func fetchProfiles(ctx context.Context, server, dir string, d time.Duration) error {
	secs := max(1, int(d.Seconds()))
	errs := make(chan error, len(benchProfiles))
	for p, file := range benchProfiles {
		go func() {
			errs <- fetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", server, p, secs), filepath.Join(dir, file))
		}()
	}
	var all []error
	for range benchProfiles {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("GET %s: status %d: %s (is the server running with --enable-pprof?)", url, resp.StatusCode, body)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startBenchServer starts `bin server` (fleet.Launch: loopback ports, SQLite
// in a temporary directory unless dbURL is set) with profiles enabled.
func startBenchServer(ctx context.Context, bin, dbURL string, extra []string, stderr io.Writer) (url, store string, stop func(), err error) {
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return "", "", nil, fmt.Errorf("finding this binary: %w (pass --server-bin)", err)
		}
	}
	dir, err := os.MkdirTemp("", "baton-bench-")
	if err != nil {
		return "", "", nil, err
	}
	args := []string{"--log-level", "warn", "--enable-pprof"}
	store = "sqlite"
	if dbURL != "" {
		args, store = append(args, "--db-url", dbURL), "postgres"
	}
	srv, err := fleet.Launch(ctx, bin, dir, append(args, extra...), stderr)
	if err != nil {
		os.RemoveAll(dir)
		return "", "", nil, err
	}
	return srv.REST, store, func() { srv.Stop(); os.RemoveAll(dir) }, nil
}
