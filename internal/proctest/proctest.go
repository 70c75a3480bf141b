// Package proctest runs binaries as separate processes for tests that go
// through real processes (test/e2e, test/chaos): ephemeral loopback ports,
// start, kill -9 and restart with the same arguments, and waiting on a
// readiness URL. Each process logs to a file in the test's temporary
// directory; the tail of the log is printed when the test fails.
package proctest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a loopback address with a port nobody listens on.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Proc is one process, restartable with the same arguments.
type Proc struct {
	// MetricsAddr is the address the process serves /healthz, /readyz and
	// /metrics on, for callers that started it with one.
	MetricsAddr string

	t    testing.TB
	bin  string
	name string
	args []string
	env  []string
	log  *os.File
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts bin with args and extra environment env; the process is
// killed when the test ends.
func Start(t testing.TB, bin, name string, env []string, args ...string) *Proc {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{t: t, bin: bin, name: name, args: args, env: env, log: f}
	p.start()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			data, _ := os.ReadFile(f.Name())
			t.Logf("---- %s log (last 6 KiB) ----\n%s", name, Tail(data, 6<<10))
		}
	})
	return p
}

// Tail returns the last n bytes of b.
func Tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Name is the name the process was started with.
func (p *Proc) Name() string { return p.name }

// Args returns a copy of the process's arguments.
func (p *Proc) Args() []string { return append([]string(nil), p.args...) }

// LogPath is the file the process writes its output to.
func (p *Proc) LogPath() string { return p.log.Name() }

func (p *Proc) start() {
	p.t.Helper()
	p.mu.Lock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	p.mu.Unlock()
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("starting %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	fmt.Fprintf(p.log, "==== started %s %s\n", p.name, strings.Join(p.args, " "))
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL) }

// Stop sends SIGTERM and waits.
func (p *Proc) Stop() { p.signal(syscall.SIGTERM) }

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Pid returns the process id of the running process (0 if not started).
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Restart starts the process again with the same arguments.
func (p *Proc) Restart() { p.start() }

// RestartWith starts the process again with the same arguments and env in
// place of the extra environment it was started with.
func (p *Proc) RestartWith(env []string) {
	p.mu.Lock()
	p.env = env
	p.mu.Unlock()
	p.start()
}

// WaitReady polls url until it answers 200, failing the test after timeout.
func WaitReady(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %v", url, timeout)
}
