package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/protocol"
)

// faultFileEnv names the second test-only fault hook of `baton agent`
// (besides dropStatusEnv): the path of a JSON file the agent re-reads every
// 100 ms while it runs, so that a test changes faults without a restart.
// Its fields (see faultSpec) duplicate or delay the agent's next messages,
// and skew the agent's clock. The chaos runner (test/chaos) uses it; never
// set it in production.
const faultFileEnv = "BATON_TEST_FAULT_FILE"

// faultSpec is the content of the fault file. Counts apply from the moment
// the file changes: {"dupStatus":3} duplicates the next three status
// messages once more, whatever the file held before.
type faultSpec struct {
	// ClockOffset shifts the agent's clock from the real one ("-10m"). It
	// is read at start only: within one process a wall-clock jump changes
	// no duration (Go's times carry a monotonic reading), so the faithful
	// model of a jump is a process whose clock is skewed from its start, as
	// an agent restarted after the jump has: what it stores or sends (its
	// records, observedAt, event times) is then off by the skew.
	ClockOffset string `json:"clockOffset,omitempty"`
	// DupStatus: the next N status messages are sent twice.
	DupStatus int64 `json:"dupStatus,omitempty"`
	// DupSpec: the next N spec messages received are handed to the agent twice.
	DupSpec int64 `json:"dupSpec,omitempty"`
	// DelayStatus: the next N status messages are sent Delay later (the
	// send reports success at once, so later messages overtake them).
	DelayStatus int64  `json:"delayStatus,omitempty"`
	Delay       string `json:"delay,omitempty"`
}

// testFaults is the agent's live state of the fault file.
type testFaults struct {
	path                            string
	log                             *slog.Logger
	offset, delay                   atomic.Int64 // nanoseconds
	dupStatus, dupSpec, delayStatus atomic.Int64
	last                            string
}

// testFaultsFromEnv reads faultFileEnv (nil when unset) and applies the
// file once, so that a bad file fails the start with a clear error.
func testFaultsFromEnv(log *slog.Logger) (*testFaults, error) {
	path := os.Getenv(faultFileEnv)
	if path == "" {
		return nil, nil
	}
	f := &testFaults{path: path, log: log}
	if err := f.load(); err != nil {
		return nil, fmt.Errorf("%s=%s: %w", faultFileEnv, path, err)
	}
	return f, nil
}

// load applies the file when its content changed; a missing file is no fault.
func (f *testFaults) load() error {
	b, err := os.ReadFile(f.path)
	if os.IsNotExist(err) {
		b, err = []byte("{}"), nil
	}
	if err != nil || string(b) == f.last {
		return err
	}
	var s faultSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("fault file: %w", err)
	}
	var off, delay time.Duration
	if s.ClockOffset != "" {
		if off, err = time.ParseDuration(s.ClockOffset); err != nil {
			return fmt.Errorf("fault file: clockOffset: %w", err)
		}
	}
	if s.Delay != "" {
		if delay, err = time.ParseDuration(s.Delay); err != nil || delay < 0 {
			return fmt.Errorf("fault file: delay %q: want a non-negative duration", s.Delay)
		}
	}
	if f.last == "" {
		f.offset.Store(int64(off))
	}
	f.last = string(b)
	f.delay.Store(int64(delay))
	f.dupStatus.Store(s.DupStatus)
	f.dupSpec.Store(s.DupSpec)
	f.delayStatus.Store(s.DelayStatus)
	f.log.Warn("agent: test fault file applied", "clockOffset", off, "dupStatus", s.DupStatus,
		"dupSpec", s.DupSpec, "delayStatus", s.DelayStatus, "delay", delay)
	return nil
}

// watch re-reads the file until ctx ends.
func (f *testFaults) watch(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := f.load(); err != nil {
				f.log.Error("agent: test fault file", "err", err)
			}
		}
	}
}

// take consumes one of counter's remaining faults.
func take(counter *atomic.Int64) bool {
	for {
		n := counter.Load()
		if n <= 0 {
			return false
		}
		if counter.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// faultClock is the real clock skewed by the fault file's offset at start.
type faultClock struct {
	clock.RealClock
	f *testFaults
}

func (c faultClock) Now() time.Time { return time.Now().Add(time.Duration(c.f.offset.Load())) }

func (c faultClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// faultConn duplicates and delays messages of the agent's link as the
// fault file asks.
type faultConn struct {
	protocol.Conn
	ctx context.Context
	f   *testFaults
	out chan protocol.Message
}

func newFaultConn(ctx context.Context, c protocol.Conn, f *testFaults) *faultConn {
	fc := &faultConn{Conn: c, ctx: ctx, f: f, out: make(chan protocol.Message)}
	go fc.forward()
	return fc
}

func (c *faultConn) Recv() <-chan protocol.Message { return c.out }

func (c *faultConn) forward() {
	defer close(c.out)
	for m := range c.Conn.Recv() {
		n := 1
		if m.Type == protocol.TypeSpec && take(&c.f.dupSpec) {
			n = 2
		}
		for range n {
			select {
			case c.out <- m:
			case <-c.ctx.Done():
				return
			}
		}
	}
}

func (c *faultConn) Send(ctx context.Context, m protocol.Message) error {
	if m.Type != protocol.TypeStatus {
		return c.Conn.Send(ctx, m)
	}
	if take(&c.f.delayStatus) {
		d := time.Duration(c.f.delay.Load())
		go func() {
			select {
			case <-time.After(d):
				_ = c.Conn.Send(c.ctx, m)
			case <-c.ctx.Done():
			}
		}()
		return nil
	}
	if err := c.Conn.Send(ctx, m); err != nil {
		return err
	}
	if take(&c.f.dupStatus) {
		_ = c.Conn.Send(ctx, m)
	}
	return nil
}
