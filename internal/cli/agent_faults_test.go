package cli

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
)

func TestFaultFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faults.json")
	t.Setenv(faultFileEnv, path)
	f, err := testFaultsFromEnv(slog.New(slog.DiscardHandler))
	if err != nil || f == nil {
		t.Fatalf("missing file: %v; want no faults", err)
	}
	clk := faultClock{f: f}
	if d := clk.Now().Sub(time.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("clock off by %v without an offset", d)
	}
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := f.load(); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"clockOffset":"-1h","dupStatus":1,"dupSpec":1,"delayStatus":1,"delay":"50ms"}`)
	if d := time.Until(clk.Now()); d < -time.Second {
		t.Fatalf("clock off by %v; want the offset read at start only", d)
	}
	if err := os.WriteFile(path, []byte(`{"clockOffset":"-1h"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	skewed, err := testFaultsFromEnv(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(faultClock{f: skewed}.Now()); d > -59*time.Minute || d < -61*time.Minute {
		t.Fatalf("clock off by %v; want -1h", d)
	}

	p := protocol.NewPipe(16)
	a, b := p.Agent(), p.Server()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newFaultConn(ctx, a, f)
	status := protocol.Message{Type: protocol.TypeStatus}
	// The first status is delayed, the second duplicated, the third plain.
	for range 3 {
		if err := c.Send(ctx, status); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	timeout := time.After(5 * time.Second)
	for got < 4 {
		select {
		case <-b.Recv():
			got++
		case <-timeout:
			t.Fatalf("%d status messages arrived; want 4 (one delayed, one twice)", got)
		}
	}
	if err := b.Send(ctx, protocol.Message{Type: protocol.TypeSpec}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, protocol.Message{Type: protocol.TypeSpec}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		select {
		case <-c.Recv():
		case <-time.After(5 * time.Second):
			t.Fatalf("spec %d not received; want the first spec twice", i+1)
		}
	}

	if err := os.WriteFile(path, []byte(`{"delay":"soon"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := testFaultsFromEnv(slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), faultFileEnv) || !strings.Contains(err.Error(), "delay") {
		t.Fatalf("bad file: %v; want an error naming %s and the field", err, faultFileEnv)
	}
}
