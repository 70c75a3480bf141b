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

// Fault kinds.
const (
	faultServer = "server" // kill -9 of the server, restarted after a pause
	faultAgent  = "agent"  // kill -9 of an agent, restarted after a pause
	faultCut    = "cut"    // the agent's link to the server cut at the proxy for a while
	faultDrop   = "drop"   // agent killed and restarted dropping its first status messages
)

var faultKinds = []string{faultServer, faultAgent, faultCut, faultDrop}

// parseMix reads "server=1,agent=2,cut=1,drop=1" into weights.
func parseMix(s string) (map[string]int, error) {
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
		a := in.w.agents[in.rng.Intn(len(in.w.agents))]
		down := time.Duration(500+in.rng.Intn(3500)) * time.Millisecond
		drops := 1 + in.rng.Intn(3)
		target := "server"
		if kind != faultServer {
			target = a.consumer
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
			switch kind {
			case faultServer:
				in.w.server.Kill()
				time.Sleep(down)
				in.w.server.Restart()
				in.w.waitServer()
			case faultAgent:
				a.proc.Kill()
				time.Sleep(down)
				a.proc.Restart()
				in.w.waitAgent(a)
			case faultDrop:
				a.proc.Kill()
				a.proc.RestartWith([]string{fmt.Sprintf("BATON_TEST_DROP_STATUS=%d", drops)})
				in.w.waitAgent(a)
			case faultCut:
				a.proxy.Cut()
				time.Sleep(down)
				a.proxy.Restore()
			}
			f.repaired = time.Now()
			in.mu.Lock()
			in.faults = append(in.faults, f)
			delete(in.busy, target)
			in.mu.Unlock()
		}()
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
