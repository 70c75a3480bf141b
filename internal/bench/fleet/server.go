package fleet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Launched is a `baton server` process the run started itself, so that
// its CPU and memory can be measured apart from the simulator's.
type Launched struct {
	REST  string // http://host:port
	Agent string // host:port of the agent port

	bin  string
	args []string
	log  io.Writer

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Launch starts bin as `baton server` on free loopback ports, keeping its
// data in dataDir (SQLite) unless extra names a --db-url, and waits until
// it is ready. extra flags come last, so they override the defaults.
func Launch(ctx context.Context, bin, dataDir string, extra []string, log io.Writer) (*Launched, error) {
	addrs := make([]string, 3)
	for i := range addrs {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	args := []string{"server", "--http-addr", addrs[0], "--grpc-addr", addrs[1], "--agent-addr", addrs[2]}
	if !hasFlag(extra, "--db-url") {
		args = append(args, "--data-dir", dataDir)
	}
	args = append(args, extra...)
	if log == nil {
		log = io.Discard
	}
	l := &Launched{REST: "http://" + addrs[0], Agent: addrs[2], bin: bin, args: args, log: log}
	if err := l.start(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (l *Launched) start(ctx context.Context) error {
	cmd := exec.Command(l.bin, l.args...)
	cmd.Stdout, cmd.Stderr = l.log, l.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("fleet: start server: %w", err)
	}
	l.mu.Lock()
	l.cmd = cmd
	l.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("fleet: server exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := http.Get(l.REST + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				go func() { <-exited }()
				return nil
			}
		}
	}
	return fmt.Errorf("fleet: server not ready at %s after 60s", l.REST)
}

// PID is the process id of the running server.
func (l *Launched) PID() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd == nil || l.cmd.Process == nil {
		return 0
	}
	return l.cmd.Process.Pid
}

// Restart kills the server with SIGKILL and starts it again on the same
// ports and data, as a crash and a supervisor's restart would.
func (l *Launched) Restart(ctx context.Context) error {
	l.kill()
	return l.start(ctx)
}

// Stop kills the server.
func (l *Launched) Stop() { l.kill() }

func (l *Launched) kill() {
	l.mu.Lock()
	cmd := l.cmd
	l.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	for i := 0; i < 200 && syscall.Kill(cmd.Process.Pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// Probe samples a process's CPU time and resident memory from /proc.
type Probe struct {
	pid func() int

	mu        sync.Mutex
	markTicks int64
	markAt    time.Time
	peakRSS   int64
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on
// every Linux platform Go supports).
const clockTicks = 100

// NewProbe samples the process pid() names (it may change on a restart)
// every second until ctx ends.
func NewProbe(ctx context.Context, pid func() int) *Probe {
	p := &Probe{pid: pid}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			p.sampleRSS()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *Probe) sampleRSS() {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && (f[0] == "VmHWM:" || f[0] == "VmRSS:") {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				p.mu.Lock()
				p.peakRSS = max(p.peakRSS, kb<<10)
				p.mu.Unlock()
			}
		}
	}
}

// ticks returns the process's user+system CPU time in clock ticks.
func (p *Probe) ticks() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		return 0
	}
	s := string(b)
	// The command name (field 2) may hold spaces; fields count from its ')'.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// Mark starts a CPU measurement.
func (p *Probe) Mark() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.markTicks, p.markAt = p.ticks(), time.Now()
}

// CoresSinceMark is the process's CPU use since Mark, in cores.
func (p *Probe) CoresSinceMark() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := time.Since(p.markAt).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(p.ticks()-p.markTicks) / clockTicks / d
}

// Measure returns the process's CPU use over the next d, in cores.
func (p *Probe) Measure(ctx context.Context, d time.Duration) (float64, error) {
	p.Mark()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	return p.CoresSinceMark(), nil
}

// PeakRSS is the highest resident set size sampled, in bytes.
func (p *Probe) PeakRSS() int64 {
	p.sampleRSS()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakRSS
}
