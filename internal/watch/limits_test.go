package watch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// smallBuffers makes accepted connections buffer little, so a client that
// does not read blocks the server's writes quickly.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

func (h *Handler) open() int { return h.watches.Held() }

// TestWatcherThatNeverReads: a client that opens a watch and stops
// reading holds the stream only until one write blocks for the write
// timeout; then the stream, its broker subscription and its slot in the
// client's watch limit are released. The limit itself answers 429.
func TestWatcherThatNeverReads(t *testing.T) {
	st := storetest.NewSQLite(t)
	ctx := setup(t, st, "c1")
	b := New(st, WithPollInterval(10*time.Millisecond))
	start(t, ctx, b)
	pad := strings.Repeat("x", 64<<10)
	big := func(_ *http.Request, b store.Bundle) any { return map[string]string{"id": b.ID, "pad": pad} }
	h := NewHandler(b, st, big, WithWriteTimeout(300*time.Millisecond), WithMaxWatches(2))
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(c, "GET /api/maestro/v1/resource-bundles?watch=true HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, "the watch to open", func() bool { return h.open() == 1 })

	// A second watch of the same client is allowed, a third is over the limit.
	resp, err := http.Get(srv.URL + "/api/maestro/v1/resource-bundles?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "the second watch to open", func() bool { return h.open() == 2 })
	third, err := http.Get(srv.URL + "/api/maestro/v1/resource-bundles?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	third.Body.Close()
	if third.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third watch: %d; want 429", third.StatusCode)
	}
	resp.Body.Close()
	waitFor(t, "the closed watch to be released", func() bool { return h.open() == 1 })

	// 64 KiB per event: a few dozen fill every buffer between the handler
	// and the client that does not read.
	started := time.Now()
	for i := 0; h.open() > 0; i++ {
		if time.Since(started) > 30*time.Second {
			t.Fatalf("after %d changes in 30 s the never-reading watch is still held", i)
		}
		create(t, ctx, st, "c1", fmt.Sprintf("b%d", i))
	}
	waitFor(t, "the broker subscription to end", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.subs) == 0
	})
	t.Logf("never-reading watch released %v after the first change", time.Since(started).Round(time.Millisecond))
}

// TestSlowWatcherTold: a watcher that falls behind the broker's queue is
// dropped with a final ERROR event saying from where to resume.
func TestSlowWatcherTold(t *testing.T) {
	st := storetest.NewSQLite(t)
	ctx := setup(t, st, "c1")
	b := New(st, WithPollInterval(10*time.Millisecond), WithQueueSize(1))
	start(t, ctx, b)
	h := NewHandler(b, st, render)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	// Changes arrive faster than a queue of one absorbs while the handler
	// reads each bundle from the store.
	for i := 0; i < 50; i++ {
		create(t, ctx, st, "c1", fmt.Sprintf("b%d", i))
	}
	cl := &http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Get(srv.URL + "/api/maestro/v1/resource-bundles?watch=true&since=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	go func() { // keep changing: a watcher that kept up would never end
		for i := 50; i < 2000 && ctx.Err() == nil; i++ {
			if _, err := st.CreateBundle(ctx, store.Bundle{ID: fmt.Sprintf("b%d", i), Name: fmt.Sprintf("b%d", i), ConsumerName: "c1"}); err != nil {
				return
			}
		}
	}()
	sc := bufio.NewScanner(resp.Body)
	var last map[string]any
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			_ = json.Unmarshal(sc.Bytes(), &last)
		}
	}
	if last["type"] != string(EventError) || !strings.Contains(fmt.Sprint(last["object"]), "resume with since=") {
		t.Fatalf("last event %v; want an ERROR event saying from where to resume", last)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
