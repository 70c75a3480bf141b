package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/proctest"
	"github.com/baton-dev/baton/internal/protocol"
)

// testCA issues certificates for the MQTT TLS test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(mrand.Int64()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+".crt")}
	writeFileAtomic(t, ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// issue writes a certificate for cn (server: for 127.0.0.1) and its key
// into certFile and keyFile, replacing them as a Secret volume swap does.
func (ca *testCA) issue(t *testing.T, cn string, server bool, certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(mrand.Int64()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	writeFileAtomic(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	writeFileAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func writeFileAtomic(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(name+".new", name); err != nil {
		t.Fatal(err)
	}
}

// startTLSBroker runs a mosquitto of its own on an ephemeral loopback port
// that requires a client certificate signed by ca; it returns the tls://
// URL.
func startTLSBroker(t *testing.T, dir string, ca *testCA) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			t.Skip("mosquitto is not installed")
		}
	}
	ca.issue(t, "broker", true, filepath.Join(dir, "broker.crt"), filepath.Join(dir, "broker.key"))
	addr := proctest.FreePort(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	// user root: a mosquitto started as root would otherwise switch to a
	// user that cannot read the test's files.
	writeFileAtomic(t, conf, fmt.Appendf(nil, `user root
persistence false
log_dest stderr
listener %s 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
allow_anonymous true
`, port, ca.file, filepath.Join(dir, "broker.crt"), filepath.Join(dir, "broker.key")))
	proctest.Start(t, bin, "mosquitto", nil, "-c", conf)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s within 20s", addr)
		}
	}
	return "tls://" + addr
}

// logBuffer collects a logger's output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// waitLog waits until the log holds want and returns it.
func waitLog(t *testing.T, l *logBuffer, want string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s := l.String(); strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q within 30s:\n%s", want, l.String())
		}
	}
}

// TestMQTTTLSClientCertificates: `baton server` and an agent reach a
// mosquitto that requires client certificates with --mqtt-ca,
// --mqtt-client-cert and --mqtt-client-key, and a bundle is delivered
// through it; a client without a certificate, one whose certificate the
// broker's CA did not sign, and one that does not trust the broker's CA
// are refused, each with an error that says which; a rotated client
// certificate is picked up by the running client without a restart.
func TestMQTTTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	other := newTestCA(t, dir, "other-ca")
	broker := startTLSBroker(t, dir, ca)
	file := func(n string) string { return filepath.Join(dir, n) }
	ca.issue(t, "baton-server", false, file("server.crt"), file("server.key"))
	ca.issue(t, "mgmt-1", false, file("agent.crt"), file("agent.key"))
	other.issue(t, "mgmt-1", false, file("foreign.crt"), file("foreign.key"))

	source := fmt.Sprintf("tls-%016x", mrand.Uint64())
	base, done, _ := startServerCLI(t, "--mqtt-broker", broker, "--mqtt-source", source,
		"--mqtt-ca", ca.file, "--mqtt-client-cert", file("server.crt"), "--mqtt-client-key", file("server.key"))
	post := func(path, body string) string {
		t.Helper()
		resp, err := http.Post(base+"/api/maestro/v1"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}
	post("/consumers", `{"name":"mgmt-1"}`)
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(post("/resource-bundles",
		`{"consumer_name":"mgmt-1","metadata":{"name":"cm"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","namespace":"default"}}]}`)), &created); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dial := func(tls mqttTLS) (protocol.Conn, *logBuffer) {
		t.Helper()
		var logs logBuffer
		o := &mqttAgentOptions{broker: broker, source: source, tls: tls}
		conn, err := o.dial(ctx, "mgmt-1", slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return conn, &logs
	}
	// The agent with its certificate receives the bundle the server sent.
	conn, _ := dial(mqttTLS{caFile: ca.file, certFile: file("agent.crt"), keyFile: file("agent.key")})
	for timeout := time.After(30 * time.Second); ; {
		select {
		case <-conn.Up():
			_ = conn.Send(ctx, protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Epoch: "e1", Batches: 1}})
			continue
		case m := <-conn.Recv():
			if m.Type != protocol.TypeSpec {
				continue
			}
			if m.Spec.BundleID != created.ID {
				t.Fatalf("spec %+v; want bundle %s", m.Spec, created.ID)
			}
		case err := <-done:
			t.Fatalf("server exited: %v", err)
		case <-timeout:
			t.Fatal("no spec reached the agent through the TLS broker within 30s")
		}
		break
	}

	// Refused clients, each told why.
	for _, c := range []struct {
		what string
		tls  mqttTLS
		want string
	}{
		{"no client certificate", mqttTLS{caFile: ca.file}, "--mqtt-client-cert"},
		{"a certificate of another CA", mqttTLS{caFile: ca.file, certFile: file("foreign.crt"), keyFile: file("foreign.key")}, "--mqtt-client-cert"},
		{"not trusting the broker's CA", mqttTLS{caFile: other.file, certFile: file("agent.crt"), keyFile: file("agent.key")}, "--mqtt-ca"},
	} {
		conn, logs := dial(c.tls)
		logged := waitLog(t, logs, "mqtt: connect failed")
		t.Logf("%s: %s", c.what, strings.TrimSpace(logged[strings.Index(logged, "mqtt: connect failed"):]))
		if !strings.Contains(logged, c.want) {
			t.Errorf("%s: the error does not point at %s:\n%s", c.what, c.want, logged)
		}
		select {
		case <-conn.Up():
			t.Errorf("%s: connected", c.what)
		default:
		}
	}

	// Rotation: a client refused for its foreign certificate connects once
	// the files hold a certificate of the broker's CA, without a restart.
	other.issue(t, "mgmt-1", false, file("rot.crt"), file("rot.key"))
	conn, logs := dial(mqttTLS{caFile: ca.file, certFile: file("rot.crt"), keyFile: file("rot.key")})
	waitLog(t, logs, "mqtt: connect failed")
	ca.issue(t, "mgmt-1", false, file("rot.crt"), file("rot.key"))
	select {
	case <-conn.Up():
	case <-time.After(30 * time.Second):
		t.Fatalf("the rotated certificate was not used within 30s:\n%s", logs.String())
	}
}
