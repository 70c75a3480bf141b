package grpc

import (
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
}
