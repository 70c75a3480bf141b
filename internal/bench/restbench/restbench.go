// Package restbench measures a running baton server's REST write and list
// paths from outside, as a user's client sees them: N concurrent HTTP
// clients create bundles of about 3 KB, then the run's bundles are listed
// as one page and as pages of 100. The server's CPU per create comes from
// its own process_cpu_seconds_total metric, so the figure is the server
// process's, not the load generator's.
//
// `baton bench rest` is the command; this package is its engine and holds
// no process management.
package restbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/pkg/api"
)

// Config is one run.
type Config struct {
	// Server is the base URL, e.g. http://127.0.0.1:8000. Required.
	Server string
	// Clients is the number of concurrent clients (default 8).
	Clients int
	// Creates is the number of bundles created (default 6,000). They are
	// then listed: as one page of Creates and in pages of PageSize.
	Creates int
	// PageSize is the size of the paged list (default 100).
	PageSize int
	// Consumer receives the bundles; it is created if missing. Default: a
	// fresh name per run, so the lists count this run's bundles only.
	Consumer string
	// Token, when set, is sent as a bearer token.
	Token string
	// Profile, when set, is called half a second into the create phase
	// (past the warm-up) and may fetch profiles from the server; the list
	// phase starts once it has returned, so it should last no longer than
	// the create phase.
	Profile func(ctx context.Context)
	// HTTP is the client (default: one with Clients idle connections).
	HTTP *http.Client
}

// Result holds the figures of a run. Durations print in milliseconds in JSON.
type Result struct {
	Server         string  `json:"server"`
	Clients        int     `json:"clients"`
	Creates        int     `json:"creates"`
	BundleBytes    int     `json:"bundleBytes"`
	CreateSeconds  float64 `json:"createSeconds"`
	CreatesPerSec  float64 `json:"createsPerSecond"`
	CreateP50Ms    float64 `json:"createP50Ms"`
	CreateP99Ms    float64 `json:"createP99Ms"`
	ListOnePageSec float64 `json:"listOnePageSeconds"`
	ListPagesSec   float64 `json:"listPagesSeconds"`
	Pages          int     `json:"pages"`
	ListBytes      int64   `json:"listBytes"`
	ServerCPUMsPer float64 `json:"serverCPUMsPerCreate"` // -1 when /metrics has no process_cpu_seconds_total
	ServerCPUShare float64 `json:"serverCPUCores"`       // server CPU seconds per wall second while creating; -1 unknown
	ConsumerName   string  `json:"consumer"`
}

func (c *Config) defaults() error {
	if c.Server == "" {
		return errors.New("restbench: no server URL")
	}
	u, err := url.Parse(c.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("restbench: server %q: want http://host:port or https://host:port", c.Server)
	}
	c.Server = strings.TrimRight(c.Server, "/")
	if c.Clients <= 0 {
		c.Clients = 8
	}
	if c.Creates <= 0 {
		c.Creates = 6000
	}
	if c.PageSize <= 0 {
		c.PageSize = 100
	}
	if c.Consumer == "" {
		c.Consumer = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: c.Clients, MaxConnsPerHost: c.Clients, DisableCompression: true,
		}}
	}
	return nil
}

// Run creates the bundles, lists them and returns the figures.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	r := Result{Server: cfg.Server, Clients: cfg.Clients, Creates: cfg.Creates, ConsumerName: cfg.Consumer,
		ServerCPUMsPer: -1, ServerCPUShare: -1}
	b := &bench{cfg: cfg}
	if err := b.ensureConsumer(ctx); err != nil {
		return r, err
	}
	r.BundleBytes = len(BundleJSON(cfg.Consumer, "b-000000"))
	cpu0, cpuErr := b.serverCPU(ctx)
	start := time.Now()
	waitProfile := b.profile(ctx)
	lat, err := b.createAll(ctx)
	elapsed := time.Since(start)
	cpu1, cpuErr2 := b.serverCPU(ctx)
	waitProfile()
	if err != nil {
		return r, err
	}
	r.CreateSeconds = elapsed.Seconds()
	r.CreatesPerSec = float64(cfg.Creates) / elapsed.Seconds()
	r.CreateP50Ms, r.CreateP99Ms = ms(quantile(lat, 0.50)), ms(quantile(lat, 0.99))
	if cpuErr == nil && cpuErr2 == nil {
		r.ServerCPUMsPer = (cpu1 - cpu0) * 1000 / float64(cfg.Creates)
		r.ServerCPUShare = (cpu1 - cpu0) / elapsed.Seconds()
	}
	t := time.Now()
	n, err := b.list(ctx, 1, cfg.Creates, cfg.Creates)
	if err != nil {
		return r, err
	}
	r.ListOnePageSec, r.ListBytes = time.Since(t).Seconds(), n
	r.Pages = (cfg.Creates + cfg.PageSize - 1) / cfg.PageSize
	t = time.Now()
	for p := 1; p <= r.Pages; p++ {
		if _, err := b.list(ctx, p, cfg.PageSize, min(cfg.PageSize, cfg.Creates-(p-1)*cfg.PageSize)); err != nil {
			return r, err
		}
	}
	r.ListPagesSec = time.Since(t).Seconds()
	return r, nil
}

type bench struct{ cfg Config }

func (b *bench) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.cfg.Server+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+b.cfg.Token)
	}
	return b.cfg.HTTP.Do(req)
}

// call sends a request, reads the whole answer and checks its status.
func (b *bench) call(ctx context.Context, method, path string, body []byte, want ...int) ([]byte, error) {
	resp, err := b.do(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if !slices.Contains(want, resp.StatusCode) {
		return nil, fmt.Errorf("%s %s: status %d: %.300s", method, path, resp.StatusCode, data)
	}
	return data, nil
}

func (b *bench) ensureConsumer(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"name": b.cfg.Consumer})
	_, err := b.call(ctx, http.MethodPost, api.BasePath+"/consumers", body, http.StatusCreated, http.StatusConflict)
	return err
}

// createAll runs the create phase and returns every create's latency.
func (b *bench) createAll(ctx context.Context) ([]time.Duration, error) {
	lat := make([]time.Duration, b.cfg.Creates)
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range b.cfg.Clients {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.cfg.Creates {
					return nil
				}
				body := BundleJSON(b.cfg.Consumer, fmt.Sprintf("b-%06d", i))
				t := time.Now()
				if _, err := b.call(gctx, http.MethodPost, api.BasePath+"/resource-bundles", body, http.StatusCreated); err != nil {
					return err
				}
				lat[i] = time.Since(t)
			}
		})
	}
	return lat, g.Wait()
}

// profile starts cfg.Profile half a second from now (past the warm-up)
// and returns the function that waits for it to finish.
func (b *bench) profile(ctx context.Context) (wait func()) {
	if b.cfg.Profile == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-time.After(500 * time.Millisecond):
			b.cfg.Profile(ctx)
		case <-ctx.Done():
		}
	}()
	return func() { <-done }
}

// list reads one page of the run's bundles and checks its envelope; it
// returns the bytes read.
func (b *bench) list(ctx context.Context, page, size, want int) (int64, error) {
	q := url.Values{}
	q.Set("page", fmt.Sprint(page))
	q.Set("size", fmt.Sprint(size))
	q.Set("orderBy", "created_at")
	q.Set("search", "consumer_name = "+client.Quote(b.cfg.Consumer))
	data, err := b.call(ctx, http.MethodGet, api.BasePath+"/resource-bundles?"+q.Encode(), nil, http.StatusOK)
	if err != nil {
		return 0, err
	}
	var env struct {
		Size  int `json:"size"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return 0, fmt.Errorf("list page %d: %w", page, err)
	}
	if env.Size != want || env.Total != b.cfg.Creates {
		return 0, fmt.Errorf("list page %d of %d: got size %d total %d, want size %d total %d",
			page, size, env.Size, env.Total, want, b.cfg.Creates)
	}
	return int64(len(data)), nil
}

// serverCPU reads process_cpu_seconds_total from the server's /metrics.
func (b *bench) serverCPU(ctx context.Context) (float64, error) {
	data, err := b.call(ctx, http.MethodGet, "/metrics", nil, http.StatusOK)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				return 0, fmt.Errorf("metrics: process_cpu_seconds_total %q: %w", v, err)
			}
			return f, nil
		}
	}
	return 0, errors.New("metrics: no process_cpu_seconds_total")
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BundleJSON is the body of one create: a Service and a ConfigMap, a
// JSONPaths feedback rule and the server-side-apply strategy, about 3 KB,
// the shape of the in-process REST benchmark's bundles.
func BundleJSON(consumer, name string) []byte {
	return fmt.Appendf(nil, `{"consumer_name":%q,"metadata":{"name":%q,"labels":{"app":"bench"}},
"manifests":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"router","namespace":"ingress"},
  "spec":{"type":"LoadBalancer","ports":[{"port":443,"targetPort":8443}]}},
 {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"ingress"},"data":{"pad":%q}}],
"manifest_configs":[{"resourceIdentifier":{"group":"","resource":"services","name":"router","namespace":"ingress"},
  "updateStrategy":{"type":"ServerSideApply"},
  "feedbackRules":[{"type":"JSONPaths","jsonPaths":[{"name":"ip","path":".status.loadBalancer.ingress[0].ip"}]}]}],
"delete_option":{"propagationPolicy":"Foreground"}}`, consumer, name, benchPad)
}

var benchPad = strings.Repeat("x", 2200)
