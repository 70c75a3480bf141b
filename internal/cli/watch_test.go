package cli

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/server/servertest"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/internal/watch"
)

// startWatchServer runs a server with the watch stream mounted as `baton
// server` mounts it, over one SQLite store.
func startWatchServer(t *testing.T) (string, *watch.Broker) {
	t.Helper()
	st := storetest.NewSQLite(t)
	broker := watch.New(st, watch.WithPollInterval(20*time.Millisecond))
	url := servertest.Start(t, server.Options{Store: st,
		OnSpecWrite: func(string) { broker.Kick() },
		Watch: func(render func(*http.Request, store.Bundle) any) http.Handler {
			return watch.NewHandler(broker, st, render)
		},
		Runnables: []server.Runnable{broker}})
	return url, broker
}

// caughtUp waits until the broker has published change seq, so that a
// stream opened now starts after it.
func caughtUp(t *testing.T, b *watch.Broker, seq int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); b.Last() < seq; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("broker at %d; want %d", b.Last(), seq)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// background runs baton until the test ends or stop is called.
func background(t *testing.T, args ...string) (out *syncBuffer, stop func() error) {
	t.Helper()
	t.Setenv(EnvServer, "")
	root := NewRoot()
	out = &syncBuffer{}
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(out)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Error("command did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return out, stop
}

func waitFor(t *testing.T, out *syncBuffer, wants ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s := out.String()
		ok := true
		for _, w := range wants {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("output lacks %q:\n%s", wants, out.String())
}

func TestWatchPrintsChanges(t *testing.T) {
	srv, broker := startWatchServer(t)
	must(t, srv, "apply", "-f", "../../examples/consumer-dev.yaml")
	must(t, srv, "apply", "-f", "../../examples/deployment.yaml")
	caughtUp(t, broker, 1)

	events, stopWatch := background(t, "watch", "bundles", "--consumer", "dev", "--server", srv)
	getw, stopGet := background(t, "get", "bundles", "--watch", "--server", srv)
	waitFor(t, getw, "NAME", "hello-deployment")
	time.Sleep(100 * time.Millisecond) // let both streams open before the change

	must(t, srv, "apply", "-f", "../../examples/shared-ingress.yaml")
	waitFor(t, events, "ADDED", "bundle/shared-ingress", "consumer=dev", "version=1")
	waitFor(t, getw, "shared-ingress")
	must(t, srv, "delete", "bundle", "shared-ingress")
	waitFor(t, events, "MODIFIED", "version=2")
	if strings.Contains(events.String(), "hello-deployment") {
		t.Errorf("watch printed a change from before it started:\n%s", events)
	}
	if err := stopWatch(); err != nil {
		t.Errorf("watch ended with %v", err)
	}
	if err := stopGet(); err != nil {
		t.Errorf("get --watch ended with %v", err)
	}
}

func TestWatchJSONResumesSince(t *testing.T) {
	srv, _ := startWatchServer(t)
	must(t, srv, "apply", "-f", "../../examples/consumer-dev.yaml")
	must(t, srv, "apply", "-f", "../../examples/deployment.yaml")
	must(t, srv, "apply", "-f", "../../examples/shared-ingress.yaml")
	out, stop := background(t, "watch", "-o", "json", "--since", "1", "--server", srv)
	waitFor(t, out, `"type":"ADDED"`, `"name":"shared-ingress"`)
	_ = stop()
	if line := strings.SplitN(out.String(), "\n", 2)[0]; !strings.HasPrefix(line, `{"type":"ADDED","seq":2,`) {
		t.Errorf("first line %q; want change 2", line)
	}
	if strings.Contains(out.String(), "hello-deployment") {
		t.Errorf("change 1 replayed after --since 1:\n%s", out)
	}
}
