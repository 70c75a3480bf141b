package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// Prefixes of the objects of ServerSideApply and ReadOnly bundles.
const (
	ssaPrefix = "ssa-"
	roPrefix  = "ro-"
)

// config of one run; `make chaos` sets the flags from its variables.
type config struct {
	duration   time.Duration
	seed       int64
	store      string
	transport  string
	replicas   int
	agents     int
	slots      int
	opEvery    time.Duration
	faultEvery time.Duration
	mix        string
	bound      time.Duration
	settle     time.Duration
	keepLogs   string
}

var flags config

func init() {
	flag.DurationVar(&flags.duration, "chaos.duration", 2*time.Minute, "how long the workload and the faults run")
	flag.Int64Var(&flags.seed, "chaos.seed", 1, "seed of the workload and of the fault schedule")
	flag.StringVar(&flags.store, "chaos.store", "sqlite", "server store: sqlite or postgres")
	flag.StringVar(&flags.transport, "chaos.transport", "grpc", "agent transport: grpc or mqtt (a Mosquitto of the run's own)")
	flag.IntVar(&flags.replicas, "chaos.replicas", 1, "server replicas (more than one needs -chaos.store postgres)")
	flag.IntVar(&flags.agents, "chaos.agents", 3, "agents, one consumer each")
	flag.IntVar(&flags.slots, "chaos.slots", 8, "bundle names per consumer (half ReadOnly, half ServerSideApply)")
	flag.DurationVar(&flags.opEvery, "chaos.op-every", 50*time.Millisecond, "pause between one worker's operations")
	flag.DurationVar(&flags.faultEvery, "chaos.fault-every", 6*time.Second, "mean time between faults")
	flag.StringVar(&flags.mix, "chaos.faults", "", "fault weights, kind=weight,...: "+strings.Join(faultKinds, ", ")+" (empty: every kind the run allows)")
	// A Fresh verdict is kept only while heartbeats arrive within the
	// heartbeat timeout; a change reaches REST within a heartbeat after
	// that. Two seconds more for this loaded machine.
	flag.DurationVar(&flags.bound, "chaos.bound", heartbeatTimeout+2*heartbeat+2*time.Second, "detection bound of a live change in REST")
	flag.StringVar(&flags.keepLogs, "chaos.keep-logs", "", "directory the process logs are copied to when the run fails")
	flag.DurationVar(&flags.settle, "chaos.settle", 90*time.Second, "how long the checker waits for convergence after the faults stop")
}

// TestChaos runs the workload and the faults for -chaos.duration, then the
// checker; it asserts 0 lost, 0 stale and 0 violations. With the defaults
// (seed 1, 2 minutes, ~20 faults of the eight kinds a SQLite/gRPC run
// allows) it is part of `make test`; `make chaos` runs
// it longer, with other seeds and mixes.
func TestChaos(t *testing.T) {
	cfg := flags
	ownPG := cfg.store == "postgres" && postgresBin() != ""
	if cfg.mix == "" {
		cfg.mix = defaultMix(cfg.store, cfg.transport, ownPG)
	}
	mix, err := parseMix(cfg.mix, cfg.store, cfg.transport, ownPG)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chaos: seed %d, %v, store %s, transport %s, %d replicas, %d agents, %d slots each, faults %s every ~%v",
		cfg.seed, cfg.duration, cfg.store, cfg.transport, max(cfg.replicas, 1), cfg.agents, cfg.slots, cfg.mix, cfg.faultEvery)
	w := newWorld(t, cfg)
	h := &history{slots: map[string][]*slot{}, live: map[string]*liveObject{}}
	var workers []*worker
	for i, a := range w.agents {
		k := &worker{w: w, a: a, h: h, rng: rand.New(rand.NewSource(cfg.seed*1000 + int64(i))), liveUID: map[string]string{}}
		for j := range cfg.slots {
			s := &slot{name: fmt.Sprintf("b%02d", j), readOnly: j%2 == 0, grpc: j%4 >= 2,
				deleted: map[string]bool{}, ids: map[string]bool{}}
			s.object = ssaPrefix + s.name
			if s.readOnly {
				s.object = roPrefix + s.name
			}
			k.slots = append(k.slots, s)
		}
		h.slots[a.consumer] = k.slots
		workers = append(workers, k)
	}
	in := &injector{w: w, rng: rand.New(rand.NewSource(cfg.seed)), mix: mix, every: cfg.faultEvery, busy: map[string]bool{}}
	smp := &sampler{w: w, h: h, bound: cfg.bound}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration)
	defer cancel()
	sctx, stopSampler := context.WithCancel(context.Background())
	samplerDone := make(chan struct{})
	go func() { smp.run(sctx, 200*time.Millisecond); close(samplerDone) }()
	done := make(chan struct{}, len(workers)+1)
	for _, k := range workers {
		go func() { k.run(ctx, cfg.opEvery); done <- struct{}{} }()
	}
	go func() { in.run(ctx); done <- struct{}{} }()
	for range len(workers) + 1 {
		<-done
	}
	faultsEnd := time.Now()
	t.Logf("workload and faults stopped after %v; checking", faultsEnd.Sub(start).Round(time.Millisecond))

	// The checker: every fault has been repaired; wait for convergence.
	var v verdict
	deadline := time.Now().Add(cfg.settle)
	for {
		v = check(context.Background(), w, h, workers)
		if v.ok() || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	settled := time.Since(faultsEnd)
	stopSampler()
	<-samplerDone

	nFaults, byKind := in.counts()
	worst, worstKind := time.Duration(0), ""
	for _, f := range in.faults {
		d, ok := smp.convergedAfter(f.repaired)
		if !ok {
			d = time.Since(f.repaired)
		}
		if d > worst {
			worst, worstKind = d, f.kind
		}
	}
	t.Logf("ops: %d acknowledged, %d refused, %d unanswered; %d REST samples", h.ops.Load(), h.rejected.Load(), h.indeterminate.Load(), smp.samples)
	t.Logf("faults: %d (%s); worst time to every bundle Fresh after a repair: %v (%s)", nFaults, byKind, worst.Round(time.Millisecond), worstKind)
	t.Logf("converged %v after the faults stopped", settled.Round(time.Millisecond))
	report := func(what string, xs []string) {
		if len(xs) > 0 {
			t.Errorf("%d %s:\n  %s", len(xs), what, strings.Join(xs[:min(len(xs), 30)], "\n  "))
		}
	}
	report("lost", v.lost)
	report("stale", v.stale)
	report("violations", smp.violations)
	summary = fmt.Sprintf("chaos: %d ops, %d faults, %d lost, %d stale, %d violations",
		h.ops.Load(), nFaults, len(v.lost), len(v.stale), len(smp.violations))
}
