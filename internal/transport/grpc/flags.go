package grpc

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// BindFlags registers the server's listener and TLS flags on fs, with the
// current values of c as defaults.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	if c.SourceAddr == "" {
		c.SourceAddr = DefaultSourceAddr
	}
	if c.AgentAddr == "" {
		c.AgentAddr = DefaultAgentAddr
	}
	fs.StringVar(&c.SourceAddr, "grpc-addr", c.SourceAddr, "address of the gRPC CloudEvents endpoint for source clients")
	fs.StringVar(&c.AgentAddr, "agent-addr", c.AgentAddr, "address of the gRPC endpoint for agents")
	fs.StringVar(&c.TLS.CertFile, "grpc-tls-cert", c.TLS.CertFile, "server certificate (PEM) for both gRPC endpoints; empty serves plaintext")
	fs.StringVar(&c.TLS.KeyFile, "grpc-tls-key", c.TLS.KeyFile, "server key (PEM) for --grpc-tls-cert")
	fs.StringVar(&c.TLS.ClientCAFile, "agent-client-ca", c.TLS.ClientCAFile,
		"CA (PEM) that signs agent client certificates; a certificate's common name must be its consumer")
	fs.Func("grpc-token-file", "file holding the bearer token every gRPC call must carry", func(path string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		c.TLS.Token = strings.TrimSpace(string(b))
		return nil
	})
}

// ClientTLS builds an agent's TLS configuration: caFile verifies the server
// (empty: the system roots); certFile and keyFile, when set, are the agent's
// client certificate.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: server CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: server CA %s: no certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client key pair: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
