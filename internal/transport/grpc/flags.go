package grpc

import (
	"crypto/tls"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/baton-dev/baton/internal/tlsfiles"
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
}

// ClientTLS builds an agent's TLS configuration: caFile verifies the server
// (empty: the system roots); certFile and keyFile, when set, are the agent's
// client certificate, reloaded when the files change (a rotated
// certificate is used from the next connection on, without a restart).
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := tlsfiles.CAPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: server CA: %w", err)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		kp, err := tlsfiles.Load(certFile, keyFile, nil)
		if err != nil {
			return nil, fmt.Errorf("tls: client key pair: %w", err)
		}
		cfg.GetClientCertificate = kp.GetClientCertificate
	}
	return cfg, nil
}
