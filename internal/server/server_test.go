package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/baton-dev/baton/internal/api/openapi"
	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// started runs a server on a random local port until the test ends and
// returns its base URL, its cancel function and a function giving a
// channel that yields Start's result once it returned.
func started(t *testing.T, opts server.Options) (string, context.CancelFunc, func() <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	var result error
	go func() { result = srv.Start(ctx); close(finished) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
	})
	// done returns a channel that yields Start's result once it returned.
	done := func() <-chan error {
		ch := make(chan error, 1)
		go func() { <-finished; ch <- result }()
		return ch
	}
	return "http://" + ln.Addr().String(), cancel, done
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerEndpointsAndMetrics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s store.Store) {
		ran := make(chan struct{})
		stopped := make(chan struct{})
		base, cancel, done := started(t, server.Options{
			Store: s,
			Handlers: map[string]http.Handler{
				"GET /api/maestro/v1/watch": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.WriteString(w, "watching")
				}),
			},
			Runnables: []server.Runnable{server.RunnableFunc(func(ctx context.Context) error {
				close(ran)
				<-ctx.Done()
				close(stopped)
				return nil
			})},
		})
		if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("healthz: %d %q", code, body)
		}
		if code, body := get(t, base+"/readyz"); code != 200 {
			t.Fatalf("readyz: %d %q", code, body)
		}
		if code, body := get(t, base+"/api/maestro/v1/watch"); code != 200 || body != "watching" {
			t.Fatalf("extra handler: %d %q", code, body)
		}
		resp, err := http.Post(base+"/api/maestro/v1/consumers", "application/json", strings.NewReader(`{"name":"mgmt-1"}`))
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create consumer: %v %v", resp, err)
		}
		resp.Body.Close()
		if code, _ := get(t, base+"/api/maestro/v1/consumers/mgmt-1"); code != 200 {
			t.Fatalf("get consumer: %d", code)
		}
		if code, _ := get(t, base+"/api/maestro/v1/consumers/nope"); code != 404 {
			t.Fatalf("get missing consumer: %d", code)
		}
		if code, _ := get(t, base+"/no/such/path"); code != 404 {
			t.Fatalf("unknown path: %d", code)
		}
		_, metrics := get(t, base+"/metrics")
		for _, want := range []string{
			`baton_http_requests_total{code="201",route="POST /api/maestro/v1/consumers"} 1`,
			`baton_http_requests_total{code="200",route="GET /api/maestro/v1/consumers/{id}"} 1`,
			`baton_http_requests_total{code="404",route="GET /api/maestro/v1/consumers/{id}"} 1`,
			`baton_http_requests_total{code="404",route="unmatched"} 1`,
			`baton_http_requests_total{code="200",route="GET /healthz"} 1`,
			`baton_http_requests_total{code="200",route="GET /api/maestro/v1/watch"} 1`,
			`baton_http_request_duration_seconds_count{code="201",route="POST /api/maestro/v1/consumers"} 1`,
			`rest_api_inbound_request_count{code="201",method="POST",path="/api/maestro/v1/consumers"} 1`,
			`rest_api_inbound_request_duration_count{code="404",method="GET",path="/api/maestro/v1/consumers/{id}"} 1`,
			`baton_store_operation_duration_seconds_count{op="CreateConsumer",result="ok"} 1`,
			`baton_store_operation_duration_seconds_count{op="GetConsumer",result="not_found"} 1`,
			`baton_store_operation_duration_seconds_count{op="Ping",result="ok"} 1`,
			`go_goroutines`,
			// Maestro's names where baton has the quantity (docs/maestro-compat.md).
			`spec_controller_event_oldest_unreconciled_age_seconds 0`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("runnable not started")
		}
		cancel()
		select {
		case err := <-done():
			if err != nil {
				t.Fatalf("Start returned %v after cancel; want nil", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Start did not return after cancel")
		}
		<-stopped
		if _, err := http.Get(base + "/healthz"); err == nil {
			t.Fatal("server still answers after stop")
		}
	})
}

// downStore fails Ping like an unreachable database.
type downStore struct{ store.Store }

func (downStore) Ping(context.Context) error { return errors.New("connection refused") }

func TestReadyzReportsStoreDown(t *testing.T) {
	base, _, _ := started(t, server.Options{Store: downStore{storetest.NewSQLite(t)}})
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "connection refused") {
		t.Fatalf("readyz with the store down: %d %q", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("healthz with the store down: %d; liveness must not depend on the store", code)
	}
}

func TestRunnableFailureStopsServer(t *testing.T) {
	boom := errors.New("transport broke")
	_, _, done := started(t, server.Options{
		Store: storetest.NewSQLite(t),
		Runnables: []server.Runnable{server.RunnableFunc(func(ctx context.Context) error {
			return boom
		})},
	})
	select {
	case err := <-done():
		if !errors.Is(err, boom) {
			t.Fatalf("Start = %v; want %v", err, boom)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Start did not return after a runnable failed")
	}
}

func TestNewRequiresStore(t *testing.T) {
	if _, err := server.New(server.Options{}); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Fatalf("New without a store: %v", err)
	}
}

func TestListenFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := server.New(server.Options{Store: storetest.NewSQLite(t), HTTPAddr: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Start on a taken port: %v", err)
	}
}

// TestOpenAPIListsEveryRoute checks the OpenAPI document and the routes
// the assembled server registers are the same set.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	srv, err := server.New(server.Options{Store: storetest.NewSQLite(t)})
	if err != nil {
		t.Fatal(err)
	}
	documented, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(srv.Routes(), "\n")
	if want := strings.Join(documented, "\n"); got != want {
		t.Fatalf("routes and OpenAPI document differ:\nserver:\n%s\ndocument:\n%s", got, want)
	}
}

// TestStreamsEndOnShutdown checks a long-lived handler learns of the
// shutdown through Stopping, so Start returns without waiting for
// ShutdownTimeout, and that short requests in flight still complete.
func TestStreamsEndOnShutdown(t *testing.T) {
	streaming := make(chan struct{})
	base, cancel, done := started(t, server.Options{
		Store:           storetest.NewSQLite(t),
		ShutdownTimeout: time.Minute,
		Handlers: map[string]http.Handler{
			"GET /stream": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				http.NewResponseController(w).Flush()
				close(streaming)
				select {
				case <-server.Stopping(r.Context()):
					_, _ = io.WriteString(w, "bye")
				case <-r.Context().Done():
				}
			}),
		},
	})
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/stream")
		if err != nil {
			result <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- string(b)
	}()
	<-streaming
	start := time.Now()
	cancel()
	select {
	case err := <-done():
		if err != nil || time.Since(start) > 30*time.Second {
			t.Fatalf("Start = %v after %v", err, time.Since(start))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Start waited for the stream")
	}
	if got := <-result; got != "bye" {
		t.Fatalf("stream body %q; want the handler to end it on shutdown", got)
	}
	if server.Stopping(context.Background()) != nil {
		t.Fatal("Stopping outside a server is not nil")
	}
}

// TestHealthPortAndReadyChecks: the probes are served on the health
// listener too; /readyz names the first failed check and /livez stays 200.
func TestHealthPortAndReadyChecks(t *testing.T) {
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held atomic.Bool
	base, _, _ := started(t, server.Options{
		Store: storetest.NewSQLite(t), HealthListener: hl,
		ReadyChecks: []server.ReadyCheck{{Name: "replica", Check: func(context.Context) error {
			if !held.Load() {
				return errors.New("replica lease not held yet")
			}
			return nil
		}}},
	})
	health := "http://" + hl.Addr().String()
	for _, b := range []string{base, health} {
		if code, body := get(t, b+"/readyz"); code != http.StatusServiceUnavailable || body != "replica: replica lease not held yet\n" {
			t.Fatalf("%s/readyz before the lease: %d %q", b, code, body)
		}
		if code, body := get(t, b+"/livez"); code != 200 || body != "ok\n" {
			t.Fatalf("%s/livez: %d %q", b, code, body)
		}
		if code, _ := get(t, b+"/healthcheck"); code != http.StatusServiceUnavailable {
			t.Fatalf("%s/healthcheck (Maestro's readiness) before the lease: %d", b, code)
		}
	}
	held.Store(true)
	for _, p := range []string{"/readyz", "/healthcheck"} {
		if code, body := get(t, health+p); code != 200 {
			t.Fatalf("%s with every check passing: %d %q", p, code, body)
		}
	}
	if code, _ := get(t, health+"/api/maestro/v1/consumers"); code != http.StatusNotFound {
		t.Fatalf("the health port serves the API: %d", code)
	}
}

// Profiles are off unless asked for, and then served on the HTTP address.
func TestPprofOffByDefault(t *testing.T) {
	off, _, _ := started(t, server.Options{Store: storetest.NewSQLite(t)})
	if code, _ := get(t, off+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without Pprof: %d, want 404", code)
	}
	on, _, _ := started(t, server.Options{Store: storetest.NewSQLite(t), Pprof: true})
	if code, body := get(t, on+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/ with Pprof from loopback: %d %.100q", code, body)
	}
	if code, _ := get(t, on+"/debug/pprof/mutex?debug=1"); code != http.StatusOK {
		t.Errorf("GET /debug/pprof/mutex: %d", code)
	}
	denied, _, _ := started(t, server.Options{Store: storetest.NewSQLite(t), Pprof: true,
		PprofAllow: func(*http.Request) bool { return false }})
	if code, _ := get(t, denied+"/debug/pprof/"); code != http.StatusForbidden {
		t.Errorf("GET /debug/pprof/ refused by PprofAllow: %d, want 403", code)
	}
}

// baton_outbox_oldest_pending_seconds is the age of the oldest spec not
// yet acknowledged, and 0 with none.
func TestOutboxAgeMetric(t *testing.T) {
	st := storetest.NewSQLite(t)
	t0 := time.Now()
	clk := clocktesting.NewFakeClock(t0)
	base, _, _ := started(t, server.Options{Store: st, Clock: clk})
	value := func() string {
		_, body := get(t, base+"/metrics")
		for line := range strings.SplitSeq(body, "\n") {
			if v, ok := strings.CutPrefix(line, "baton_outbox_oldest_pending_seconds "); ok {
				return v
			}
		}
		t.Fatalf("no baton_outbox_oldest_pending_seconds in /metrics")
		return ""
	}
	if v := value(); v != "0" {
		t.Errorf("with nothing pending: %s, want 0", v)
	}
	ctx := context.Background()
	if _, err := st.CreateConsumer(ctx, store.Consumer{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateBundle(ctx, store.Bundle{ConsumerName: "c", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(t0.Add(time.Hour))
	v, err := strconv.ParseFloat(value(), 64)
	if err != nil || v < 3500 || v > 3700 {
		t.Errorf("an hour after a create nobody acknowledged: %v %v, want about 3600", v, err)
	}
}
