// Package fleet simulates a fleet of agents against a running baton server
// and measures what its users see: how long a live change takes to show in
// REST, whether any change is lost, whether every bundle ends Fresh, and
// what the server costs while it holds the fleet.
//
// Every simulated agent is a real protocol client over the server's agent
// port (gRPC, or MQTT through a broker): its own consumer, session, epoch,
// Hello, SpecAcks, status revisions and digest heartbeats, through the same
// transport client and reporter a real agent uses. Only the Kubernetes side
// is replaced: each bundle observes one in-memory object whose feedback
// value changes at the rate asked for.
//
// Changes are seen through the server's REST watch stream: an event is
// emitted once the status is committed, so a GET at that moment returns the
// same value. The run ends with a check against REST: every bundle's value
// equals the simulated object's last value, and its verdict is Fresh.
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/transport/grpc"
	"github.com/baton-dev/baton/internal/transport/mqtt"
	"github.com/baton-dev/baton/pkg/api"
)

// Names used for the simulated objects and their feedback.
const (
	Namespace    = "fleet-sim"
	FeedbackName = "value"
)

// Options configure a run.
type Options struct {
	// Server is the REST URL of the server; AgentServer its agent port
	// (gRPC host:port). Both are filled in when the run starts its own
	// server (see Launch).
	Server      string
	AgentServer string
	// Transport is "grpc" (default) or "mqtt"; MQTTBroker is the broker URL
	// for "mqtt".
	Transport  string
	MQTTBroker string
	MQTTSource string

	Agents          int
	BundlesPerAgent int
	// Duration of the measured steady phase; ChangesPerSecond across the
	// whole fleet during it.
	Duration         time.Duration
	ChangesPerSecond float64
	// Heartbeat of every simulated agent (default 10 s, as real agents).
	Heartbeat time.Duration
	// Settle bounds the wait, after the steady phase (and after a restart),
	// for every change to show and every bundle to be Fresh (default three
	// heartbeats plus 30 s).
	Settle time.Duration
	// Prefix names the run's consumers (default "sim"), so runs against a
	// shared server do not collide.
	Prefix string
	// Concurrency of the REST set-up calls (default 16).
	Concurrency int
	// Seed of the change schedule (default 1).
	Seed uint64
	// Restart, when set, is called after the steady phase to restart the
	// server (kill -9 and start again); the run then measures until every
	// agent is back and every bundle Fresh. Launch provides one.
	Restart func(context.Context) error
	// Progress receives one line at a time while the run goes (nil: none).
	Progress io.Writer
	Logger   *slog.Logger
}

// Result is the summary of a run; the JSON names are a contract of
// `baton bench fleet -o json`.
type Result struct {
	Agents         int     `json:"agents"`
	Bundles        int     `json:"bundles"`
	Transport      string  `json:"transport"`
	DurationS      float64 `json:"duration_s"`
	Changes        int64   `json:"changes"`
	Seen           int64   `json:"seen"`
	Lost           int64   `json:"lost"`
	Wrong          int64   `json:"wrong_at_end"`
	StaleAtEnd     int     `json:"stale_at_end"`
	P50ChangeToRES float64 `json:"p50_change_to_rest_s"`
	P99ChangeToRES float64 `json:"p99_change_to_rest_s"`
	MaxChangeToRES float64 `json:"max_change_to_rest_s"`
	SetupS         float64 `json:"setup_s"`
	ConnectAllS    float64 `json:"connect_all_s"`
	ReconnectAllS  float64 `json:"reconnect_all_s,omitempty"`
	ServerCPUCores float64 `json:"server_cpu_cores,omitempty"`
	ServerIdleCPU  float64 `json:"server_idle_cpu_cores,omitempty"`
	ServerRSSBytes int64   `json:"server_rss_bytes,omitempty"`
}

func (o Options) withDefaults() Options {
	if o.Transport == "" {
		o.Transport = "grpc"
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 10 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 3*o.Heartbeat + 30*time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "sim"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.Server == "":
		return errors.New("fleet: the server's REST URL is required")
	case o.Transport != "grpc" && o.Transport != "mqtt":
		return fmt.Errorf("fleet: transport %q: want grpc or mqtt", o.Transport)
	case o.Transport == "grpc" && o.AgentServer == "":
		return errors.New("fleet: the server's agent address is required for the gRPC transport")
	case o.Transport == "mqtt" && o.MQTTBroker == "":
		return errors.New("fleet: an MQTT broker URL is required for the MQTT transport")
	case o.Agents < 1 || o.BundlesPerAgent < 1:
		return fmt.Errorf("fleet: agents (%d) and bundles per agent (%d) must be at least 1", o.Agents, o.BundlesPerAgent)
	case o.ChangesPerSecond < 0:
		return fmt.Errorf("fleet: changes per second %v must not be negative", o.ChangesPerSecond)
	}
	return nil
}

// run holds the state of one simulation.
type run struct {
	o      Options
	c      *client.Client
	agents []*simAgent
	byID   map[string]*simAgent // bundle id → its agent
	ids    []string             // every bundle id, in creation order
	track  *tracker
	// staleWhy counts the bundles of the last snapshot that were not
	// Fresh, by reason.
	staleWhy map[string]int
}

// Run sets the fleet up, runs the steady phase, optionally restarts the
// server, and checks the end state. probe, when not nil, samples the
// server process (CPU, RSS) around the steady phase.
func Run(ctx context.Context, o Options, probe *Probe) (*Result, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	c, err := client.New(o.Server, client.WithTimeout(60*time.Second))
	if err != nil {
		return nil, err
	}
	r := &run{o: o, c: c, byID: map[string]*simAgent{}, track: newTracker()}
	res := &Result{Agents: o.Agents, Bundles: o.Agents * o.BundlesPerAgent, Transport: o.Transport}

	start := time.Now()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	res.SetupS = time.Since(start).Seconds()

	agentCtx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	connStart := time.Now()
	if err := r.startAgents(agentCtx); err != nil {
		return nil, err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := r.watch(watchCtx); err != nil {
		return nil, err
	}
	r.progress("waiting for %d agents to connect and %d bundles to report", o.Agents, res.Bundles)
	if err := r.waitConverged(ctx, o.Settle+time.Duration(len(r.ids))*5*time.Millisecond); err != nil {
		return nil, fmt.Errorf("fleet: before the steady phase: %w", err)
	}
	res.ConnectAllS = time.Since(connStart).Seconds()

	if probe != nil {
		// Idle cost: one heartbeat interval with no changes.
		idle, err := probe.Measure(ctx, o.Heartbeat)
		if err != nil {
			return nil, err
		}
		res.ServerIdleCPU = idle
		probe.Mark()
	}
	r.progress("steady phase: %s at %.0f changes/s", o.Duration, o.ChangesPerSecond)
	steadyStart := time.Now()
	r.churn(ctx, o.Duration)
	res.DurationS = time.Since(steadyStart).Seconds()
	if probe != nil {
		res.ServerCPUCores = probe.CoresSinceMark()
	}

	if o.Restart != nil {
		r.progress("restarting the server")
		before := r.sessions()
		t0 := time.Now()
		if err := o.Restart(ctx); err != nil {
			return nil, fmt.Errorf("fleet: restart: %w", err)
		}
		if err := r.waitReconnected(ctx, before, o.Settle+time.Duration(o.Agents)*2*time.Millisecond); err != nil {
			return nil, fmt.Errorf("fleet: after the restart: %w", err)
		}
		if err := r.waitConverged(ctx, o.Settle+time.Duration(o.Agents)*2*time.Millisecond); err != nil {
			return nil, fmt.Errorf("fleet: after the restart: %w", err)
		}
		res.ReconnectAllS = time.Since(t0).Seconds()
	}

	// Every change must show; then REST must agree with every object.
	deadline := time.Now().Add(o.Settle)
	for r.track.pending() > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	wrong, stale, err := r.check(ctx)
	if err != nil {
		return nil, err
	}
	res.Wrong, res.StaleAtEnd = wrong, stale
	res.Changes, res.Seen, res.Lost = r.track.counts()
	res.P50ChangeToRES, res.P99ChangeToRES, res.MaxChangeToRES = r.track.quantiles()
	if probe != nil {
		res.ServerRSSBytes = probe.PeakRSS()
	}
	return res, nil
}

func (r *run) progress(format string, args ...any) {
	if r.o.Progress != nil {
		fmt.Fprintf(r.o.Progress, "fleet: "+format+"\n", args...)
	}
}

func (r *run) consumerName(i int) string { return fmt.Sprintf("%s-%05d", r.o.Prefix, i) }

// setup creates the consumers and their bundles through REST.
func (r *run) setup(ctx context.Context) error {
	n := r.o.Agents
	r.progress("creating %d consumers and %d bundles over REST", n, n*r.o.BundlesPerAgent)
	if err := parallel(ctx, n, r.o.Concurrency, func(ctx context.Context, i int) error {
		_, err := r.c.CreateConsumer(ctx, api.Consumer{Name: r.consumerName(i)})
		if client.IsConflict(err) {
			return nil
		}
		return err
	}); err != nil {
		return fmt.Errorf("fleet: create consumers: %w", err)
	}
	total := n * r.o.BundlesPerAgent
	ids := make([]string, total)
	var done atomic.Int64
	err := parallel(ctx, total, r.o.Concurrency, func(ctx context.Context, k int) error {
		i, j := k/r.o.BundlesPerAgent, k%r.o.BundlesPerAgent
		b, err := r.c.CreateBundle(ctx, simBundle(r.consumerName(i), j))
		if err != nil {
			return err
		}
		ids[k] = b.ID
		if d := done.Add(1); d%5000 == 0 {
			r.progress("%d/%d bundles created", d, total)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fleet: create bundles: %w", err)
	}
	r.ids = ids
	return nil
}

func simBundle(consumer string, j int) *api.ResourceBundle {
	name := fmt.Sprintf("obj-%03d", j)
	manifest := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":%q}}`, name, Namespace)
	return &api.ResourceBundle{Name: name, ConsumerName: consumer,
		Manifests: []json.RawMessage{json.RawMessage(manifest)},
		ManifestConfigs: []workv1.ManifestConfigOption{{
			ResourceIdentifier: workv1.ResourceIdentifier{Resource: "configmaps", Name: name, Namespace: Namespace},
			UpdateStrategy:     &workv1.UpdateStrategy{Type: workv1.UpdateStrategyTypeReadOnly},
			FeedbackRules: []workv1.FeedbackRule{{Type: workv1.JSONPathsType,
				JsonPaths: []workv1.JsonPath{{Name: FeedbackName, Path: ".data.value"}}}},
		}}}
}

// startAgents dials one link per consumer.
func (r *run) startAgents(ctx context.Context) error {
	r.agents = make([]*simAgent, r.o.Agents)
	for i := range r.o.Agents {
		name := r.consumerName(i)
		conn, err := r.dial(ctx, name)
		if err != nil {
			return fmt.Errorf("fleet: agent %s: %w", name, err)
		}
		a := newSimAgent(name, conn, r.o.Heartbeat, r.o.Logger)
		r.agents[i] = a
		go a.run(ctx)
	}
	for k, id := range r.ids {
		r.byID[id] = r.agents[k/r.o.BundlesPerAgent]
	}
	return nil
}

func (r *run) dial(ctx context.Context, consumer string) (protocol.Conn, error) {
	if r.o.Transport == "mqtt" {
		return mqtt.Dial(ctx, r.o.MQTTBroker, r.o.MQTTSource, consumer, mqtt.Options{Logger: r.o.Logger})
	}
	return grpc.Dial(ctx, r.o.AgentServer, consumer, grpc.DialOptions{Logger: r.o.Logger})
}

// sessions returns each agent's count of sessions started so far.
func (r *run) sessions() []int {
	out := make([]int, len(r.agents))
	for i, a := range r.agents {
		a.mu.Lock()
		out[i] = a.stats.sessions
		a.mu.Unlock()
	}
	return out
}

// waitReconnected waits until every agent has started a session after
// before (a snapshot of sessions()).
func (r *run) waitReconnected(ctx context.Context, before []int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		now, waiting := r.sessions(), 0
		for i := range now {
			if now[i] <= before[i] {
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d agents not reconnected after %s", waiting, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// churn changes random objects at the configured rate for d.
func (r *run) churn(ctx context.Context, d time.Duration) {
	if r.o.ChangesPerSecond == 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		return
	}
	rng := rand.New(rand.NewPCG(r.o.Seed, r.o.Seed^0x9e3779b97f4a7c15))
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	end := time.Now().Add(d)
	nextReport := time.Now().Add(5 * time.Second)
	start, owed := time.Now(), 0.0
	var made int64
	for now := range t.C {
		if ctx.Err() != nil || now.After(end) {
			return
		}
		owed = r.o.ChangesPerSecond*now.Sub(start).Seconds() - float64(made)
		for ; owed >= 1; owed-- {
			id := r.ids[rng.IntN(len(r.ids))]
			a := r.byID[id]
			at := time.Now()
			if v, ok := a.change(id); ok {
				r.track.changed(id, v, at)
			}
			made++
		}
		if now.After(nextReport) {
			nextReport = now.Add(5 * time.Second)
			ch, seen, _ := r.track.counts()
			p50, p99, _ := r.track.quantiles()
			r.progress("%d changes, %d seen, p50 %.3fs p99 %.3fs, %s left", ch, seen, p50, p99, time.Until(end).Round(time.Second))
		}
	}
}

// parallel runs fn for 0..n-1 with at most conc at once; the first error
// stops the rest.
func parallel(ctx context.Context, n, conc int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := atomic.Int64{}
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(conc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
