package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/bench/fleet"
	"github.com/baton-dev/baton/internal/transport/mqtt"
)

func init() { benchCommands = append(benchCommands, newBenchFleetCmd) }

type benchFleetOptions struct {
	o          fleet.Options
	serverBin  string
	dbURL      string
	serverArgs []string
	restart    bool
	output     string
}

func newBenchFleetCmd() *cobra.Command {
	b := &benchFleetOptions{}
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Simulate a fleet of agents against a server and measure freshness and cost",
		Long: `Run --agents simulated agents in this process, each a real protocol client of
the server's agent port (its own consumer, session, epoch, Hello, spec acks,
status revisions and digest heartbeats, through the same transport client and
reporter as 'baton agent'), with the cluster replaced by one in-memory object
per bundle. The consumers and --bundles-per-agent bundles each are created
over REST; then, for --duration, objects change at --changes-per-second
across the fleet, and every change is timed until the REST watch stream shows
it. At the end every bundle must show its object's last value and be Fresh.

Without --server, a server is started as a separate process (this binary,
"baton server", on loopback ports, SQLite in a temporary directory or
--db-url), so its CPU (in cores, over the steady phase and over one idle
heartbeat interval) and peak RSS are measured apart from the simulator's.
--restart then kills it with SIGKILL after the steady phase, starts it again,
and measures the time until every agent is back and every bundle Fresh.

Printed: agents, bundles, changes, lost (never shown), wrong and stale at the
end, p50/p99/max change → REST, set-up and connect times, and the server's
cost. -o json prints one object with the same figures.`,
		Example: `  # 1,000 agents × 10 bundles, 200 changes/s for a minute, on a started server
  baton bench fleet --agents 1000 --bundles-per-agent 10 --changes-per-second 200 --duration 1m

  # The same on PostgreSQL, with a server kill -9 and restart at the end
  baton bench fleet --agents 1000 --db-url 'postgres://postgres@127.0.0.1:5432/fleet?sslmode=disable' --restart

  # Against a running server (its REST URL and agent port), as JSON
  baton bench fleet --server http://127.0.0.1:8000 --agent-server 127.0.0.1:8091 --agents 100 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return b.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&b.o.Server, "server", "", "REST URL of a running server (empty: start one)")
	f.StringVar(&b.o.AgentServer, "agent-server", "", "host:port of the running server's agent port (with --server)")
	f.StringVar(&b.o.Transport, "transport", "grpc", "agent transport: grpc or mqtt")
	f.StringVar(&b.o.MQTTBroker, "mqtt-broker", "", "MQTT broker URL for --transport mqtt, e.g. tcp://127.0.0.1:1883")
	f.StringVar(&b.o.MQTTSource, "mqtt-source", mqtt.DefaultSource, "the server's source name in the MQTT topics (its --mqtt-source)")
	f.IntVar(&b.o.Agents, "agents", 100, "simulated agents, one consumer each")
	f.IntVar(&b.o.BundlesPerAgent, "bundles-per-agent", 10, "bundles of each consumer")
	f.DurationVar(&b.o.Duration, "duration", 30*time.Second, "length of the steady phase")
	f.Float64Var(&b.o.ChangesPerSecond, "changes-per-second", 200, "object changes per second across the fleet")
	f.DurationVar(&b.o.Heartbeat, "heartbeat", 10*time.Second, "heartbeat interval of every simulated agent")
	f.DurationVar(&b.o.Settle, "settle", 0, "longest wait for convergence before and after the steady phase (default 3 heartbeats + 30s)")
	f.StringVar(&b.o.Prefix, "prefix", "sim", "prefix of the run's consumer names")
	f.Uint64Var(&b.o.Seed, "seed", 1, "seed of the change schedule")
	f.BoolVar(&b.restart, "restart", false, "kill -9 and restart the started server after the steady phase")
	f.StringVar(&b.dbURL, "db-url", "", "PostgreSQL URL of the started server (empty: SQLite in a temporary directory)")
	f.StringVar(&b.serverBin, "server-bin", "", "baton binary of the started server (default: this one)")
	f.StringArrayVar(&b.serverArgs, "server-arg", nil, "extra flag of the started server (repeatable)")
	f.StringVarP(&b.output, "output", "o", "", "output format: json or yaml")
	return cmd
}

func (b *benchFleetOptions) run(cmd *cobra.Command) error {
	if err := checkOutput(b.output, outTable, outJSON, outYAML); err != nil {
		return err
	}
	started := b.o.Server == ""
	if !started && (b.dbURL != "" || b.serverBin != "" || len(b.serverArgs) > 0 || b.restart) {
		return &ExitError{Code: 2, Msg: "--db-url, --server-bin, --server-arg and --restart configure a started server; they do not go with --server"}
	}
	ctx := cmd.Context()
	b.o.Progress = cmd.ErrOrStderr()
	var probe *fleet.Probe
	if started {
		bin := b.serverBin
		if bin == "" {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			bin = exe
		}
		dir, err := os.MkdirTemp("", "baton-fleet-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		extra := b.serverArgs
		if b.dbURL != "" {
			extra = append([]string{"--db-url", b.dbURL}, extra...)
		}
		if b.o.Transport == "mqtt" {
			if !cmd.Flags().Changed("mqtt-source") {
				// A broker is often shared: topics of its own for this run.
				b.o.MQTTSource = fmt.Sprintf("baton-fleet-%d", os.Getpid())
			}
			extra = append([]string{"--mqtt-broker", b.o.MQTTBroker, "--mqtt-source", b.o.MQTTSource}, extra...)
		}
		srv, err := fleet.Launch(ctx, bin, dir, extra, io.Discard)
		if err != nil {
			return err
		}
		defer srv.Stop()
		b.o.Server, b.o.AgentServer = srv.REST, srv.Agent
		if b.restart {
			b.o.Restart = srv.Restart
		}
		probe = fleet.NewProbe(ctx, srv.PID)
	}
	res, err := fleet.Run(ctx, b.o, probe)
	if err != nil {
		return err
	}
	if b.output != outTable {
		return newPrinter(cmd.OutOrStdout(), b.output).encode(res)
	}
	return printFleet(cmd.OutOrStdout(), res)
}

func printFleet(w io.Writer, r *fleet.Result) error {
	t := &table{w: w}
	kv := func(k, v string) { t.row(k + "\t" + v) }
	kv("agents × bundles", fmt.Sprintf("%d × %d = %d (%s)", r.Agents, r.Bundles/max(r.Agents, 1), r.Bundles, r.Transport))
	kv("changes", fmt.Sprintf("%d in %.1f s, %d seen, %d lost", r.Changes, r.DurationS, r.Seen, r.Lost))
	kv("at the end", fmt.Sprintf("%d wrong, %d not Fresh", r.Wrong, r.StaleAtEnd))
	kv("change → REST", fmt.Sprintf("p50 %.3f s, p99 %.3f s, max %.3f s", r.P50ChangeToRES, r.P99ChangeToRES, r.MaxChangeToRES))
	kv("set-up, connect all", fmt.Sprintf("%.1f s, %.1f s", r.SetupS, r.ConnectAllS))
	if r.ReconnectAllS > 0 {
		kv("restart → all Fresh", fmt.Sprintf("%.1f s", r.ReconnectAllS))
	}
	if r.ServerRSSBytes > 0 {
		kv("server CPU", fmt.Sprintf("%.3f cores idle, %.3f cores during changes", r.ServerIdleCPU, r.ServerCPUCores))
		kv("server peak RSS", fmt.Sprintf("%.0f MB", float64(r.ServerRSSBytes)/1e6))
	}
	return t.Flush()
}
