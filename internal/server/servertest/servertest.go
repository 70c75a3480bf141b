// Package servertest runs an assembled baton server (server.New + Start) on
// a loopback port for tests of the packages that talk to it over HTTP.
package servertest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/server"
)

// Start serves opts (Store is required; Listener is set here) until the test
// ends, and returns the server's base URL ("http://127.0.0.1:port").
func Start(t testing.TB, opts server.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	srv, err := server.New(opts)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("server did not stop within 15s")
		}
	})
	return "http://" + ln.Addr().String()
}
