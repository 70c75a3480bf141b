package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/baton-dev/baton/pkg/api"
)

// Shape of BenchmarkE2EFreshness.
const (
	benchBundles    = 2000 // bundles created in bulk, one ConfigMap each
	benchSequential = 200  // bundles created one at a time afterwards
	benchChanges    = 200  // live changes made in the cluster
	benchNamespaces = 4
	benchCreateConc = 8 // concurrent REST clients creating bundles
	benchIdle       = 30 * time.Second
)

// BenchmarkE2EFreshness measures the freshness promise end to end, through
// the built server and agent processes: bundle created over REST → its first
// status visible on the REST watch stream, and a live change in the cluster
// → the new value visible on the watch stream, with 2,000 bundles in place.
// It also records both processes' RSS and idle CPU.
//
// Every bundle observes one ConfigMap (ReadOnly, JSONPath feedback v =
// .data.v) that the benchmark creates itself, so a live change of .data.v is
// not drift the agent reverts. Run it with
//
//	go test -run '^$' -bench E2E -benchtime 1x -timeout 30m ./test/e2e/
//
// "hb=10s" runs the default server and agent timing (heartbeat every 10 s);
// "hb=1s" runs the e2e timing (heartbeat every second), which shows the cost
// of checking the 2,000-bundle digest on every heartbeat.
func BenchmarkE2EFreshness(b *testing.B) {
	timings := []struct {
		name          string
		server, agent []string
	}{
		{"hb=10s", []string{"--heartbeat-timeout", "30s", "--resend-after", "2s"}, []string{"--heartbeat", "10s"}},
		{"hb=1s", nil, nil},
	}
	for _, kind := range []storeKind{sqliteStore, postgresStore} {
		for _, tm := range timings {
			b.Run(string(kind)+"/"+tm.name, func(b *testing.B) {
				for range b.N {
					benchFreshness(b, kind, tm.server, tm.agent)
				}
			})
		}
	}
}

func benchFreshness(b *testing.B, kind storeKind, serverFlags, agentFlags []string) {
	c := newClusterWith(b, kind, serverFlags...)
	c.createConsumer("bench")
	nss := make([]string, benchNamespaces)
	for i := range nss {
		nss[i] = c.namespace("bench")
	}
	total := benchBundles + benchSequential
	cmNS := func(i int) string { return nss[i%len(nss)] }
	cmName := func(i int) string { return fmt.Sprintf("cm-%05d", i) }
	bundleName := func(i int) string { return fmt.Sprintf("bench-%05d", i) }
	c.createConfigMaps(total, 32, cmNS, cmName)

	// The agent's API limits are raised so that applying the bulk is not
	// paced by client-side throttling; the watch path does not use them.
	agent := c.startAgentWith("bench", append([]string{"--kube-api-qps", "500", "--kube-api-burst", "1000"}, agentFlags...))
	w := c.watchBundles()
	defer w.Stop()

	// Phase 1: 2,000 creates, 8 at a time.
	created := make([]time.Time, total)
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(benchCreateConc)
	for i := range benchBundles {
		g.Go(func() error {
			created[i] = time.Now()
			_, err := c.do(http.MethodPost, "/resource-bundles", configMapBundle("bench", bundleName(i), cmNS(i), cmName(i), "0", "ReadOnly"), nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	createDur := time.Since(start)
	bulk := make([]time.Duration, benchBundles)
	for i := range benchBundles {
		at := w.wait(b, bundleName(i), "0", 10*time.Minute)
		bulk[i] = at.Sub(created[i])
	}
	allSeen := time.Since(start)
	resent := c.metricValue(`baton_hub_specs_sent_total{kind="resent"}`)
	b.Logf("%s: %d bundles created over REST in %v (%.0f/s); all first statuses on the watch stream after %v",
		kind, benchBundles, createDur.Round(time.Millisecond), float64(benchBundles)/createDur.Seconds(), allSeen.Round(time.Millisecond))

	// Phase 2: one create at a time with 2,000 bundles in place.
	time.Sleep(2 * time.Second)
	seq := make([]time.Duration, 0, benchSequential)
	for i := benchBundles; i < total; i++ {
		t0 := time.Now()
		c.mustDo(http.MethodPost, "/resource-bundles", configMapBundle("bench", bundleName(i), cmNS(i), cmName(i), "0", "ReadOnly"), nil)
		seq = append(seq, w.wait(b, bundleName(i), "0", time.Minute).Sub(t0))
	}

	// Phase 3: idle — memory and CPU of both processes.
	time.Sleep(3 * time.Second)
	srvCPU0, agCPU0 := cpuTicks(b, c.server.Pid()), cpuTicks(b, agent.Pid())
	time.Sleep(benchIdle)
	srvCPU := float64(cpuTicks(b, c.server.Pid())-srvCPU0) / clockTicks / benchIdle.Seconds() * 100
	agCPU := float64(cpuTicks(b, agent.Pid())-agCPU0) / clockTicks / benchIdle.Seconds() * 100
	srvRSS, agRSS := rssMB(b, c.server.Pid()), rssMB(b, agent.Pid())

	// Phase 4: live changes of .data.v on spread-out ConfigMaps.
	changes := make([]time.Duration, 0, benchChanges)
	ctx := context.Background()
	for k := range benchChanges {
		i := (k * 997) % total
		v := "c" + strconv.Itoa(k)
		patch := fmt.Sprintf(`{"data":{"v":%q}}`, v)
		t0 := time.Now()
		if _, err := c.kube.CoreV1().ConfigMaps(cmNS(i)).Patch(ctx, cmName(i), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		changes = append(changes, w.wait(b, bundleName(i), v, time.Minute).Sub(t0))
	}

	report := func(name string, d []time.Duration) (p50, p99, mx float64) {
		slices.Sort(d)
		p50, p99, mx = ms(pct(d, 50)), ms(pct(d, 99)), ms(d[len(d)-1])
		b.Logf("%s: %s n=%d p50=%.1fms p99=%.1fms max=%.1fms", kind, name, len(d), p50, p99, mx)
		return
	}
	bp50, bp99, _ := report("bulk create → first status", bulk)
	sp50, sp99, _ := report("single create → first status", seq)
	cp50, cp99, cmax := report("live change → REST", changes)
	events, stale := w.events()
	b.Logf("%s: idle over %v: server RSS %.1f MB CPU %.2f%%; agent RSS %.1f MB CPU %.2f%%",
		kind, benchIdle, srvRSS, srvCPU, agRSS, agCPU)
	b.Logf("%s: %d watch events, %d of them Stale %v; %.0f specs re-sent during the bulk", kind, events, sum(stale), stale, resent)
	b.ReportMetric(bp50, "bulk-first-p50-ms")
	b.ReportMetric(bp99, "bulk-first-p99-ms")
	b.ReportMetric(sp50, "first-p50-ms")
	b.ReportMetric(sp99, "first-p99-ms")
	b.ReportMetric(cp50, "change-p50-ms")
	b.ReportMetric(cp99, "change-p99-ms")
	b.ReportMetric(cmax, "change-max-ms")
	b.ReportMetric(srvRSS, "server-rss-MB")
	b.ReportMetric(agRSS, "agent-rss-MB")
	b.ReportMetric(srvCPU, "server-idle-cpu-%")
	b.ReportMetric(agCPU, "agent-idle-cpu-%")
	b.ReportMetric(resent, "bulk-spec-resends")
	b.ReportMetric(float64(stale[api.ReasonDigestMismatch]), "digest-mismatch-events")
	b.ReportMetric(0, "ns/op")
}

// createConfigMaps creates ConfigMaps 0..n-1 (data v=0) with conc clients.
func (c *cluster) createConfigMaps(n, conc int, ns, name func(int) string) {
	c.t.Helper()
	var g errgroup.Group
	g.SetLimit(conc)
	for i := range n {
		g.Go(func() error {
			_, err := c.kube.CoreV1().ConfigMaps(ns(i)).Create(context.Background(), &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: name(i)},
				Data:       map[string]string{"v": "0", "pad": strings.Repeat("x", 200)},
			}, metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		c.t.Fatal(err)
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
const clockTicks = 100

// cpuTicks returns utime+stime of process pid.
func cpuTicks(t testing.TB, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	u, _ := strconv.ParseInt(fields[11], 10, 64)                  // field 14
	k, _ := strconv.ParseInt(fields[12], 10, 64)                  // field 15
	return u + k
}

// rssMB returns VmRSS of process pid in MB.
func rssMB(t testing.TB, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1000
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// bundleWatch follows the REST watch stream and remembers when each bundle
// (by name) first showed each value of its feedback "v".
type bundleWatch struct {
	t      testing.TB
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	seen  map[string]map[string]time.Time
	count int
	stale map[string]int // events showing a Stale bundle, by reason
	err   error
}

// watchBundles opens the watch stream; it returns once the server has
// subscribed it, so every later change is on it.
func (c *cluster) watchBundles() *bundleWatch {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &bundleWatch{t: c.t, cancel: cancel, done: make(chan struct{}), seen: map[string]map[string]time.Time{}, stale: map[string]int{}}
	resp, err := c.openWatch(ctx, -1)
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		last := int64(-1)
		for {
			last = w.read(resp, last)
			if ctx.Err() != nil {
				return
			}
			// The server ends a stream that fell behind: resume after the
			// last change received.
			if resp, err = c.openWatch(ctx, last); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				return
			}
		}
	}()
	return w
}

func (c *cluster) openWatch(ctx context.Context, since int64) (*http.Response, error) {
	url := c.rest + api.BasePath + "/resource-bundles?watch=true"
	if since >= 0 {
		url += "&since=" + strconv.FormatInt(since, 10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("watch: status %d", resp.StatusCode)
	}
	return resp, nil
}

// read consumes one stream until it ends and returns the last seq seen.
func (w *bundleWatch) read(resp *http.Response, last int64) int64 {
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev struct {
			Type   string             `json:"type"`
			Seq    int64              `json:"seq"`
			Object api.ResourceBundle `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			return last
		}
		at := time.Now()
		last = ev.Seq
		v, ok := feedback(ev.Object, "v")
		w.mu.Lock()
		w.count++
		if state, reason := freshness(ev.Object); state == api.FreshnessStale {
			w.stale[reason]++
		}
		if ok {
			m := w.seen[ev.Object.Name]
			if m == nil {
				m = map[string]time.Time{}
				w.seen[ev.Object.Name] = m
			}
			if _, dup := m[v]; !dup {
				m[v] = at
			}
		}
		w.mu.Unlock()
	}
}

// wait returns when bundle name first showed feedback value v.
func (w *bundleWatch) wait(t testing.TB, name, v string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		at, ok := w.seen[name][v]
		err := w.err
		w.mu.Unlock()
		if ok {
			return at
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("bundle %s: value %q not on the watch stream after %v", name, v, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// events returns the number of events received and of those showing a
// Stale bundle, by reason.
func (w *bundleWatch) events() (int, map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count, maps.Clone(w.stale)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// metricValue returns the value of one sample line of the server's
// /metrics (name with labels exactly as exposed), or -1 if absent.
func (c *cluster) metricValue(sample string) float64 {
	c.t.Helper()
	return sampleAt(c.t, c.rest+"/metrics", sample)
}

// agentMetric is metricValue for the agent process p.
func agentMetric(t testing.TB, p *proc, sample string) float64 {
	t.Helper()
	return sampleAt(t, "http://"+p.MetricsAddr+"/metrics", sample)
}

// sampleAt returns the value of one sample line of the Prometheus text at
// url, or -1 if absent.
func sampleAt(t testing.TB, url, sample string) float64 {
	t.Helper()
	for line := range strings.Lines(scrape(t, url)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func (w *bundleWatch) Stop() { w.cancel(); <-w.done }
