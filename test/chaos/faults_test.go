package chaos

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault kinds (-chaos.faults, make chaos FAULTS=).
const (
	faultServer  = "server"  // kill -9 of a server replica, restarted after a pause
	faultAgent   = "agent"   // kill -9 of an agent, restarted after a pause
	faultCut     = "cut"     // the agent's link to the server (or broker) cut at its proxies for a while
	faultDrop    = "drop"    // agent killed and restarted dropping its first status messages
	faultKubeCut = "kubecut" // the agent's link to its kube-apiserver cut at its proxy for a while
	faultDup     = "dup"     // the agent's next status messages sent twice, its next specs handled twice
	faultDelay   = "delay"   // the agent's next status messages held back for seconds (later ones overtake them)
	faultClock   = "clock"   // agent killed and restarted with its clock skewed by minutes to an hour; restarted right again after a while
	faultPGTerm  = "pgterm"  // pg_terminate_backend of every connection to baton's database
	faultPGKill  = "pgkill"  // kill -9 of the run's own PostgreSQL (all its processes), restarted after a pause
	faultBroker  = "broker"  // kill -9 of the run's own Mosquitto, restarted after a pause
)

var faultKinds = []string{faultServer, faultAgent, faultCut, faultDrop, faultKubeCut, faultDup, faultDelay,
	faultClock, faultPGTerm, faultPGKill, faultBroker}

// defaultMix is the fault mix of a run that names none: every kind the
// run's store and transport allow.
func defaultMix(store, transport string, ownPG bool) string {
	mix := "server=1,agent=2,cut=2,drop=1,kubecut=1,dup=1,delay=1,clock=1"
	if store == "postgres" {
		mix += ",pgterm=1"
		if ownPG {
			mix += ",pgkill=1"
		}
	}
	if transport == "mqtt" {
		mix += ",broker=1"
	}
	return mix
}

// parseMix reads "server=1,agent=2,cut=1" into weights, refusing kinds the
// run cannot inject (pg faults without PostgreSQL, broker without MQTT).
func parseMix(s, store, transport string, ownPG bool) (map[string]int, error) {
	m := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 || !contains(faultKinds, k) {
			return nil, fmt.Errorf("fault mix %q: want kind=weight with kinds %s", part, strings.Join(faultKinds, ", "))
		}
		switch {
		case n == 0:
		case (k == faultPGTerm || k == faultPGKill) && store != "postgres":
			return nil, fmt.Errorf("fault mix %q: %s faults need -chaos.store postgres", part, k)
		case k == faultPGKill && !ownPG:
			return nil, fmt.Errorf("fault mix %q: no PostgreSQL binaries (initdb) for a cluster of the run's own; the shared one is never killed", part)
		case k == faultBroker && transport != "mqtt":
			return nil, fmt.Errorf("fault mix %q: broker faults need -chaos.transport mqtt", part)
		}
		m[k] = n
	}
	return m, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// fault is one injected fault: when it began and when it was repaired.
type fault struct {
	kind     string
	target   string
	start    time.Time
	repaired time.Time
}

// injector injects faults at seeded random times until ctx ends; each
// fault repairs itself (restart, restore) before run returns.
type injector struct {
	w      *world
	rng    *rand.Rand
	mix    map[string]int
	every  time.Duration
	mu     sync.Mutex
	faults []fault
	busy   map[string]bool // targets with a fault in progress
}

func (in *injector) pick() string {
	total := 0
	for _, k := range faultKinds {
		total += in.mix[k]
	}
	if total == 0 {
		return ""
	}
	n := in.rng.Intn(total)
	for _, k := range faultKinds {
		if n < in.mix[k] {
			return k
		}
		n -= in.mix[k]
	}
	return ""
}

func (in *injector) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		gap := time.Duration(in.rng.ExpFloat64() * float64(in.every))
		gap = max(gap, in.every/4)
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		kind := in.pick()
		if kind == "" {
			continue
		}
		// Every random choice is drawn here, in order, so that a seed
		// replays the same schedule.
		a := in.w.agents[in.rng.Intn(len(in.w.agents))]
		s := in.w.servers[in.rng.Intn(len(in.w.servers))]
		down := time.Duration(500+in.rng.Intn(3500)) * time.Millisecond
		n := 1 + in.rng.Intn(3)
		jump := time.Duration(1+in.rng.Intn(60)) * time.Minute
		if in.rng.Intn(2) == 0 {
			jump = -jump
		}
		target := a.consumer
		switch kind {
		case faultServer:
			target = s.proc.Name()
		case faultPGTerm, faultPGKill:
			target = "postgres"
		case faultBroker:
			target = "broker"
		}
		in.mu.Lock()
		if in.busy[target] {
			in.mu.Unlock()
			continue
		}
		in.busy[target] = true
		in.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := fault{kind: kind, target: target, start: time.Now()}
			in.w.t.Logf("%s fault: %s on %s", f.start.Format("15:04:05.000"), kind, target)
			in.inject(f.kind, a, s, down, n, jump)
			f.repaired = time.Now()
			in.w.t.Logf("%s repaired: %s on %s", f.repaired.Format("15:04:05.000"), kind, target)
			in.mu.Lock()
			in.faults = append(in.faults, f)
			delete(in.busy, target)
			in.mu.Unlock()
		}()
	}
}

// inject runs one fault to its repair.
func (in *injector) inject(kind string, a *agent, s *server, down time.Duration, n int, jump time.Duration) {
	w := in.w
	setFaults := func(json string) {
		if err := a.setFaults(json); err != nil {
			w.t.Errorf("fault file of %s: %v", a.consumer, err)
		}
	}
	switch kind {
	case faultServer:
		s.proc.Kill()
		time.Sleep(down)
		s.proc.Restart()
		w.waitServer(s)
	case faultAgent:
		a.proc.Kill()
		time.Sleep(down)
		a.proc.Restart()
		w.waitAgent(a)
	case faultDrop:
		a.proc.Kill()
		a.proc.RestartWith([]string{"BATON_TEST_FAULT_FILE=" + a.faultFile, fmt.Sprintf("BATON_TEST_DROP_STATUS=%d", n)})
		w.waitAgent(a)
	case faultCut, faultKubeCut:
		links := a.links
		if kind == faultKubeCut {
			links = []*proxy{a.kubeProxy}
		}
		for _, p := range links {
			p.Cut()
		}
		time.Sleep(down)
		for _, p := range links {
			p.Restore()
		}
	case faultDup:
		setFaults(fmt.Sprintf(`{"dupStatus":%d,"dupSpec":%d}`, 2*n, 2*n))
		time.Sleep(down)
		setFaults(`{}`)
	case faultDelay:
		// Held back for longer than a heartbeat and the resend interval:
		// the agent resends, the server acknowledges, the late copy comes last.
		delay := down + 2*time.Second
		setFaults(fmt.Sprintf(`{"delayStatus":%d,"delay":%q}`, 2*n, delay))
		time.Sleep(delay + down)
		setFaults(`{}`)
	case faultClock:
		// The clock jumped while the agent was down (see internal/cli's
		// faultSpec.ClockOffset for why not while it runs), and jumps back.
		for _, spec := range []string{fmt.Sprintf(`{"clockOffset":%q}`, jump), `{}`} {
			setFaults(spec)
			a.proc.Kill()
			a.proc.Restart()
			w.waitAgent(a)
			time.Sleep(down)
		}
	case faultPGTerm:
		if _, err := terminateBackends(w.dbURL); err != nil {
			w.t.Errorf("pg_terminate_backend: %v", err)
		}
	case faultPGKill:
		w.db.kill()
		time.Sleep(down)
		w.db.start()
	case faultBroker:
		w.broker.Kill()
		time.Sleep(down)
		w.broker.Restart()
		waitListening(w.t, w.mqtt)
	}
}

// counts returns the number of faults of each kind, as "server=2 agent=3".
func (in *injector) counts() (int, string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	m := map[string]int{}
	for _, f := range in.faults {
		m[f.kind]++
	}
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	return len(in.faults), strings.Join(parts, " ")
}
