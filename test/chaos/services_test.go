package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/baton-dev/baton/internal/proctest"
)

// postgres is a PostgreSQL cluster of the run's own, on an ephemeral port
// in a temporary directory, so that the runner may kill -9 it (never the
// machine's shared server). fsync is off: a killed process loses nothing
// the kernel already holds, and the shared machine is spared the flushes.
type postgres struct {
	t    testing.TB
	bin  string
	dir  string
	port string
	url  string
	log  *os.File
	cred *syscall.Credential // nil: the runner's own user
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// postgresBin is the directory of initdb and postgres ("" when absent).
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// startPostgres initialises and starts the run's own PostgreSQL; nil when
// the binaries are not installed (the run then uses the shared server,
// where only pgterm faults apply).
func startPostgres(t testing.TB) *postgres {
	t.Helper()
	bin := postgresBin()
	if bin == "" {
		t.Logf("no initdb found: using the shared PostgreSQL (no pgkill faults)")
		return nil
	}
	dir, err := os.MkdirTemp("", "chaos-postgres-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cred, err := postgresCredential(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := initdb.CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	addr := proctest.FreePort(t)
	_, port, _ := net.SplitHostPort(addr)
	log, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &postgres{t: t, bin: bin, dir: data, port: port, log: log, cred: cred,
		url: "postgres://postgres@127.0.0.1:" + port + "/postgres?sslmode=disable"}
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("---- postgres log (last 4 KiB) ----\n%s", proctest.Tail(b, 4<<10))
		}
	})
	return p
}

// start runs the postmaster in a process group of its own and waits until
// it accepts connections; a start that fails (the killed cluster's
// backends not yet gone) is retried.
func (p *postgres) start() {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", p.dir, "-p", p.port, "-k", p.dir,
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100")
		cmd.Stdout, cmd.Stderr = p.log, p.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
		if err := cmd.Start(); err != nil {
			p.t.Errorf("starting postgres: %v", err)
			return
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		p.mu.Lock()
		p.cmd, p.done = cmd, done
		p.mu.Unlock()
		for time.Now().Before(deadline) {
			if p.ping() {
				return
			}
			select {
			case <-done:
			case <-time.After(100 * time.Millisecond):
				continue
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Errorf("postgres not ready after 60s on port %s", p.port)
}

// postgresCredential is the user PostgreSQL runs as: the runner's own, or
// the system's postgres user when the runner is root (initdb refuses
// root), who is then given dir.
func postgresCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs a postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (p *postgres) ping() bool {
	db, err := sql.Open("pgx", p.url)
	if err != nil {
		return false
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return db.PingContext(ctx) == nil
}

// kill sends SIGKILL to every process of the cluster (postmaster and
// backends) at once, as a crash of its machine would, and waits.
func (p *postgres) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// terminateBackends ends every connection to the database of url but the
// caller's own (pg_terminate_backend), as a failover or an administrator
// would; it returns how many it ended.
func terminateBackends(url string) (int, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	err = db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
	return n, err
}

// startBroker runs a Mosquitto of the run's own on an ephemeral loopback
// port (never the machine's shared one), without persistence: a kill -9
// loses every message it held.
func startBroker(t testing.TB) (*proctest.Proc, string) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin = "/usr/sbin/mosquitto"; !exists(bin) {
			t.Fatalf("an MQTT run needs the mosquitto binary: %v", err)
		}
	}
	addr := proctest.FreePort(t)
	host, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	body := fmt.Sprintf("listener %s %s\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n", port, host)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, bin, "mosquitto", nil, "-c", conf)
	waitListening(t, addr)
	return p, addr
}

func waitListening(t testing.TB, addr string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("nothing listens on %s after 30s", addr)
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }
