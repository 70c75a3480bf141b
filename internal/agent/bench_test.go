package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
)

// Benchmark shape: 2,000 ReadOnly bundles of 5 ConfigMaps each (10,000
// observed objects in 4 namespaces), JSONPath feedback on every object.
var benchBundles = envInt("BATON_BENCH_BUNDLES", 2000)

const (
	benchPerBundle  = 5
	benchNamespaces = 4
	benchChanges    = 200
	benchIdle       = 30 * time.Second
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// benchServer acknowledges every Status and tells which bundles have been
// fully reported and when an awaited value arrived. It keeps no history.
type benchServer struct {
	conn protocol.Conn
	mu   sync.Mutex
	full map[string]bool // bundles reported with all objects present
	want *awaited
}

type awaited struct {
	bundle string
	obj    int
	value  string
	got    chan time.Time
}

func (s *benchServer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.conn.Recv():
			if m.Type != protocol.TypeStatus {
				continue
			}
			now := time.Now()
			st := m.Status
			ack := protocol.StatusAck{Epoch: st.Epoch, BundleID: st.BundleID, Revision: st.Revision}
			_ = s.conn.Send(ctx, protocol.Message{Type: protocol.TypeStatusAck, StatusAck: &ack})
			s.mu.Lock()
			if !s.full[st.BundleID] && len(st.Reported.ResourceStatus) == benchPerBundle {
				all := true
				for _, rs := range st.Reported.ResourceStatus {
					all = all && rs.Observed.Exists && len(rs.StatusFeedbacks.Values) == 1
				}
				s.full[st.BundleID] = all
			}
			if w := s.want; w != nil && w.bundle == st.BundleID {
				if v, _ := value(st, w.obj, "v"); v == w.value {
					w.got <- now
					s.want = nil
				}
			}
			s.mu.Unlock()
		}
	}
}

func (s *benchServer) fullCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ok := range s.full {
		if ok {
			n++
		}
	}
	return n
}

func BenchmarkAgentFreshness(b *testing.B) {
	if testing.Short() {
		b.Skip("needs a kube-apiserver")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kube := kubernetes.NewForConfigOrDie(cfg)
	run := fmt.Sprintf("bench-%d", time.Now().Unix()%100000)

	start := time.Now()
	nsOf := func(i int) string { return fmt.Sprintf("%s-%d", run, i%benchNamespaces) }
	for i := range benchNamespaces {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsOf(i)}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range benchBundles * benchPerBundle {
		g.Go(func() error {
			_, err := kube.CoreV1().ConfigMaps(nsOf(i/benchPerBundle)).Create(gctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i)},
				Data:       map[string]string{"v": "0", "payload": strings.Repeat("x", 200)},
			}, metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	created := time.Since(start)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	a, pipe, srv, stop := startBenchAgent(b, ctx, cfg, run)
	defer func() { stop() }()

	syncStart := time.Now()
	for i := range benchBundles {
		ns := nsOf(i)
		var ms []json.RawMessage
		for j := range benchPerBundle {
			ms = append(ms, json.RawMessage(fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-%05d","namespace":%q}}`, i*benchPerBundle+j, ns)))
		}
		s := spec(fmt.Sprintf("bundle-%04d", i), 1, ms, config("configmaps", ns, "*", workv1.UpdateStrategyTypeReadOnly,
			workv1.JsonPath{Name: "v", Path: ".data.v"}))
		if err := pipe.Server().Send(ctx, protocol.Message{Type: protocol.TypeSpec, Spec: &s}); err != nil {
			b.Fatal(err)
		}
	}
	for srv.fullCount() < benchBundles {
		if time.Since(syncStart) > 5*time.Minute {
			b.Fatalf("only %d of %d bundles reported after 5 minutes", srv.fullCount(), benchBundles)
		}
		time.Sleep(50 * time.Millisecond)
	}
	initial := time.Since(syncStart)
	time.Sleep(2 * time.Second) // let the first reports settle
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	rss := vmRSS()

	b.ResetTimer()
	lat := make([]time.Duration, 0, benchChanges)
	for n := range benchChanges {
		i := (n * 7919) % (benchBundles * benchPerBundle)
		w := &awaited{bundle: fmt.Sprintf("bundle-%04d", i/benchPerBundle), obj: i % benchPerBundle,
			value: "chg-" + strconv.Itoa(n), got: make(chan time.Time, 1)}
		srv.mu.Lock()
		srv.want = w
		srv.mu.Unlock()
		patch := fmt.Sprintf(`{"data":{"v":%q}}`, w.value)
		t0 := time.Now()
		if _, err := kube.CoreV1().ConfigMaps(nsOf(i/benchPerBundle)).Patch(ctx, fmt.Sprintf("cm-%05d", i), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		select {
		case t1 := <-w.got:
			lat = append(lat, t1.Sub(t0))
		case <-time.After(10 * time.Second):
			b.Fatalf("change %d (%s object %d) not reported within 10s", n, w.bundle, w.obj)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }

	time.Sleep(2 * time.Second)
	cpu0 := cpuTime()
	time.Sleep(benchIdle)
	idleCPU := (cpuTime() - cpu0).Seconds() / benchIdle.Seconds() * 100

	// Restart: a new agent with the command's default API rate limits
	// (50 QPS, burst 100) re-reports every bundle from its records.
	obs := a.observer.Stats()
	stop()
	slow := rest.CopyConfig(cfg)
	slow.QPS, slow.Burst = 50, 100
	restarted := time.Now()
	_, _, srv, stop = startBenchAgent(b, ctx, slow, run)
	for srv.fullCount() < benchBundles {
		if time.Since(restarted) > 5*time.Minute {
			b.Fatalf("only %d of %d bundles re-reported 5 minutes after the restart", srv.fullCount(), benchBundles)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rereport := time.Since(restarted)

	heapMB := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
	b.ReportMetric(float64(p(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(heapMB, "agent-heap-MB")
	b.ReportMetric(rss/(1<<20), "process-rss-MB")
	b.ReportMetric(idleCPU, "idle-cpu-%")
	b.ReportMetric(initial.Seconds(), "initial-sync-s")
	b.ReportMetric(rereport.Seconds(), "restart-rereport-s")
	b.Logf("objects created in %v; %d bundles applied, observed and reported in %v", created.Round(time.Millisecond), benchBundles, initial.Round(time.Millisecond))
	b.Logf("change → report over %d changes: p50 %v p90 %v p99 %v max %v", len(lat), p(0.5), p(0.9), p(0.99), lat[len(lat)-1])
	b.Logf("agent live heap %.1f MB (HeapAlloc delta after GC), process RSS %.1f MB, Go Sys %.1f MB; idle CPU %.2f%% of one core over %v",
		heapMB, rss/(1<<20), float64(after.Sys)/(1<<20), idleCPU, benchIdle)
	b.Logf("observer: %+v", obs)
	b.Logf("after a restart at 50 QPS, all %d bundles re-reported (new epoch) in %v", benchBundles, rereport.Round(time.Millisecond))
}

// vmRSS is the process's resident set size in bytes (/proc/self/status).
func vmRSS() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb * 1024
		}
	}
	return 0
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startBenchAgent starts an agent and a bench server on a new Pipe; stop
// ends the agent and waits for it.
func startBenchAgent(b *testing.B, ctx context.Context, c *rest.Config, consumer string) (*Agent, *protocol.Pipe, *benchServer, func()) {
	b.Helper()
	ctx, cancel := context.WithCancel(ctx)
	pipe := protocol.NewPipe(4096)
	srv := &benchServer{conn: pipe.Server(), full: map[string]bool{}}
	go srv.run(ctx)
	a, err := New(c, pipe.Agent(), Options{Consumer: consumer, RecordsNamespace: consumer + "-records",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = a.Start(ctx); close(done) }()
	return a, pipe, srv, func() { cancel(); <-done }
}
