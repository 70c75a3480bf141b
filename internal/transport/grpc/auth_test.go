package grpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/baton-dev/baton/internal/auth/authn"
	"github.com/baton-dev/baton/internal/tlsfiles"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for cn, valid for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func (ca *testCA) clientTLS(t *testing.T, cn string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	cfg := &tls.Config{RootCAs: pool}
	if cn != "" {
		c, k := ca.issue(t, cn, x509.ExtKeyUsageClientAuth)
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAgentClientCertificates(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	c, k := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	hub := newFakeHub()
	cfg := serverConfig(hub)
	cfg.TLS = TLSConfig{CertFile: writeFile(t, dir, "tls.crt", c), KeyFile: writeFile(t, dir, "tls.key", k)}
	cfg.Auth = newAuth(t, "clientCA: "+writeFile(t, dir, "ca.crt", ca.pem)+"\n")
	srv, _ := startServer(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A certificate for another consumer is refused.
	opts := dialOpts()
	opts.TLS = ca.clientTLS(t, "c2")
	_, err := Dial(ctx, srv.AgentAddr(), "c1", opts)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-hub.attached:
		t.Fatalf("certificate c2 attached as %s", a.consumer)
	case <-time.After(300 * time.Millisecond):
	}
	// The right certificate, loaded from files, gets a session.
	cc, ck := ca.issue(t, "c1", x509.ExtKeyUsageClientAuth)
	opts.TLS, err = tlsfiles.ClientConfig(writeFile(t, dir, "ca.pem", ca.pem), writeFile(t, dir, "c1.crt", cc), writeFile(t, dir, "c1.key", ck), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Dial(ctx, srv.AgentAddr(), "c1", opts)
	if err != nil {
		t.Fatal(err)
	}
	waitUp(t, cl)
	if a := hub.next(t); a.consumer != "c1" {
		t.Fatalf("attached %s", a.consumer)
	}
	// Without a certificate the handshake fails: no session.
	opts.TLS = ca.clientTLS(t, "")
	Dial(ctx, srv.AgentAddr(), "c1", opts)
	select {
	case a := <-hub.attached:
		t.Fatalf("client without certificate attached as %s", a.consumer)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestBearerToken(t *testing.T) {
	hub := newFakeHub()
	cfg := serverConfig(hub)
	cfg.Auth = newAuth(t, "tokens:\n- {token: s3cret, subject: agent-c1, role: agent, consumer: c1}\n")
	srv, _ := startServer(t, cfg)
	stream, err := rawClient(t, srv.SourceAddr()).Subscribe(context.Background(),
		&pb.SubscriptionRequest{Source: "cs", DataType: ce.DataType})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("source Subscribe without token = %v; want Unauthenticated", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := dialOpts()
	opts.Token = "s3cret"
	cl, err := Dial(ctx, srv.AgentAddr(), "c1", opts)
	if err != nil {
		t.Fatal(err)
	}
	waitUp(t, cl)
	hub.next(t)
	opts.Token = "wrong"
	Dial(ctx, srv.AgentAddr(), "c2", opts)
	select {
	case a := <-hub.attached:
		t.Fatalf("wrong token attached as %s", a.consumer)
	case <-time.After(300 * time.Millisecond):
	}
}

// newAuth loads an auth config written to a temporary file.
func newAuth(t *testing.T, config string) *authn.Authenticator {
	t.Helper()
	a, err := authn.New(context.Background(), writeFile(t, t.TempDir(), "auth.yaml", []byte(config)), authn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestBindFlags(t *testing.T) {
	dir := t.TempDir()
	var c Config
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.BindFlags(fs)
	err := fs.Parse([]string{"--agent-addr=:9191", "--grpc-tls-cert=" + filepath.Join(dir, "c")})
	if err != nil {
		t.Fatal(err)
	}
	if c.SourceAddr != DefaultSourceAddr || c.AgentAddr != ":9191" || c.TLS.CertFile != filepath.Join(dir, "c") {
		t.Errorf("config = %+v", c)
	}
}
