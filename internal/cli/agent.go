package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/agent"
	"github.com/baton-dev/baton/internal/agent/apply"
)

func init() { register(newAgentCmd) }

type agentOptions struct {
	consumer    string
	agentID     string
	kubeconfig  string
	kubeContext string
	server      string
	qps         float32
	burst       int
	metricsAddr string
	pprof       bool
	recordsNS   string
	workers     int
	resync      time.Duration
	probe       time.Duration
	heartbeat   time.Duration
	logLevel    string
	propagation string
	hubHash     string
	appliedWork bool
	grpc        grpcAgentOptions
	mqtt        mqttAgentOptions
}

func newAgentCmd() *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent --consumer NAME",
		Short: "Run the agent of one cluster: apply bundles and report their live status",
		Long: `Run the agent of one consumer cluster. The agent connects to the baton
server, applies the bundles the server sends for the consumer, watches every
applied or observed object (one shared watch per resource type and namespace),
and reports the live status of each object back, within a second of a change.
Objects it applied that someone edits or deletes are applied again.

When the agent cannot list or watch an object's resource type (its API
server does not answer, or refuses the agent), it reports that object's
entry unconfirmed (StatusFeedbackSynced=Unknown, reason ClusterUnreachable,
Forbidden or Unauthorized) and the server marks the bundle
Stale/ObservationFailed; /readyz fails meanwhile. When the API server
answers again the agent relists and reports the live objects.

Inside a pod the agent uses the pod's service account; elsewhere it uses
--kubeconfig, then $KUBECONFIG, then ~/.kube/config. What it applied is
recorded in Secrets of --records-namespace, so a restarted agent knows what
it holds and re-reports it, and mirrored in one AppliedManifestWork per bundle
(named <hub hash>-<bundle id>, as Open Cluster Management's work agent names
them) for tools on the cluster that look for those.`,
		Example: `  # Run the agent of consumer mgmt-1 against a local server
  baton agent --consumer mgmt-1 --kubeconfig mgmt-1.kubeconfig --server localhost:8091`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.consumer, "consumer", "", "name of the consumer (cluster) this agent serves (required)")
	f.StringVar(&o.agentID, "agent-id", defaultAgentID(), "identity of this agent among the agents of the consumer: the server serves one and tells the others to stand down (default: the host name, the pod name in Kubernetes)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: in-cluster config, then $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&o.kubeContext, "context", "", "kubeconfig context to use")
	f.StringVar(&o.server, "server", "localhost:8091", "address of the server's agent endpoint (gRPC); several replicas separated by commas (a:8091,b:8091) are tried in turn")
	f.Float32Var(&o.qps, "kube-api-qps", 50, "queries per second to the Kubernetes API")
	f.IntVar(&o.burst, "kube-api-burst", 100, "burst of queries to the Kubernetes API")
	f.StringVar(&o.metricsAddr, "metrics-addr", ":8092", "address serving /healthz, /readyz and /metrics (empty: none)")
	f.BoolVar(&o.pprof, "enable-pprof", false, "serve Go runtime profiles under /debug/pprof/ on --metrics-addr, to loopback clients only")
	f.StringVar(&o.recordsNS, "records-namespace", "baton-agent", "namespace of the agent's bundle records")
	f.IntVar(&o.workers, "workers", 4, "bundles processed in parallel")
	f.DurationVar(&o.resync, "resync", 5*time.Minute, "safety-net re-evaluation period of every observed object")
	f.DurationVar(&o.probe, "observe-probe-interval", 5*time.Second,
		"how often the agent checks that it can still list each observed resource type; bounds how long a revoked permission or a silently dropped connection goes unnoticed (its objects are then reported unconfirmed)")
	f.DurationVar(&o.heartbeat, "heartbeat", 10*time.Second, "interval of heartbeats carrying the status digest")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.propagation, "delete-propagation", string(metav1.DeletePropagationBackground),
		"propagationPolicy of the agent's delete calls: Background (the object goes at once, the cluster's garbage collector removes its dependents) or Foreground (an object counts as gone once its dependents are; needs a garbage collector)")
	f.StringVar(&o.hubHash, "hub-hash", "", "hub identity in AppliedManifestWork names (<hub hash>-<bundle id>) (default: SHA-256 of the server address; set it when agents reach one server by several addresses)")
	f.BoolVar(&o.appliedWork, "applied-manifestworks", true, "keep an AppliedManifestWork (work.open-cluster-management.io/v1) per bundle, installing its CRD when missing")
	o.grpc.flags(f)
	o.mqtt.flags(f)
	_ = cmd.MarkFlagRequired("consumer")
	return cmd
}

func (o *agentOptions) run(ctx context.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return &ExitError{Code: 2, Msg: fmt.Sprintf("--log-level: %v", err)}
	}
	prop := metav1.DeletionPropagation(o.propagation)
	if prop != metav1.DeletePropagationForeground && prop != metav1.DeletePropagationBackground {
		return &ExitError{Code: 2, Msg: fmt.Sprintf("--delete-propagation: want Foreground or Background, got %q", o.propagation)}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = o.qps, o.burst
	cfg.UserAgent = "baton-agent/" + o.consumer
	hubHash := o.hubHash
	if hubHash == "" {
		hubHash = apply.HubHash(o.endpoint())
	}
	conn, err := o.dial(ctx, log)
	if err != nil {
		return fmt.Errorf("agent: connect to %s: %w", o.endpoint(), err)
	}
	faults, err := testFaultsFromEnv(log)
	if err != nil {
		return err
	}
	var clk clock.WithTicker = clock.RealClock{}
	if faults != nil {
		go faults.watch(ctx)
		conn, clk = newFaultConn(ctx, conn, faults), faultClock{f: faults}
	}
	a, err := agent.New(cfg, conn, agent.Options{
		Consumer: o.consumer, ID: o.agentID, Workers: o.workers, Resync: o.resync, ProbeInterval: o.probe, RecordsNamespace: o.recordsNS,
		HeartbeatInterval: o.heartbeat, MetricsAddr: o.metricsAddr, Pprof: o.pprof, Logger: log, DeletePropagation: prop,
		HubHash: hubHash, DisableAppliedWorks: !o.appliedWork, Clock: clk,
	})
	if err != nil {
		return err
	}
	log.Info("agent: starting", "consumer", o.consumer, "server", o.endpoint(), "host", cfg.Host, "epoch", a.Epoch())
	return a.Start(ctx)
}

// defaultAgentID is the host name (empty if unknown: the epoch is used).
func defaultAgentID() string {
	h, _ := os.Hostname()
	return h
}

// restConfig picks the cluster: --kubeconfig, else in-cluster, else the
// usual kubeconfig loading rules ($KUBECONFIG, ~/.kube/config).
func (o *agentOptions) restConfig() (*rest.Config, error) {
	if o.kubeconfig == "" && o.kubeContext == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.kubeconfig != "" {
		rules.ExplicitPath = o.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: o.kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("agent: kubeconfig: %w", err)
	}
	return cfg, nil
}
