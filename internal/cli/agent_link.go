package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/spf13/pflag"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/tlsfiles"
	"github.com/baton-dev/baton/internal/transport/grpc"
)

// dropStatusEnv names the test-only fault hook of `baton agent`: set to N,
// the agent's transport silently drops the first N status messages it sends,
// as a lossy network or broker would. End-to-end tests use it to prove that
// lost status heals; never set it in production.
const dropStatusEnv = "BATON_TEST_DROP_STATUS"

// grpcAgentOptions secure the agent's gRPC link to the server.
type grpcAgentOptions struct {
	tls       bool
	caFile    string
	certFile  string
	keyFile   string
	tokenFile string
}

func (o *grpcAgentOptions) flags(f *pflag.FlagSet) {
	f.BoolVar(&o.tls, "server-tls", false, "connect to --server over TLS, verified with the system roots (implied by --server-ca)")
	f.StringVar(&o.caFile, "server-ca", "", "CA (PEM) that signs the server's certificate; implies TLS")
	f.StringVar(&o.certFile, "client-cert", "", "the agent's client certificate (PEM; its common name must be the consumer)")
	f.StringVar(&o.keyFile, "client-key", "", "key (PEM) of --client-cert")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the bearer token the server requires (a token of its --auth-config)")
}

// dial opens the agent's gRPC link to addr; it reconnects by itself and
// signals every new session on Conn.Up.
func (o *grpcAgentOptions) dial(ctx context.Context, addr, consumer string, log *slog.Logger) (protocol.Conn, error) {
	opts := grpc.DialOptions{Logger: log}
	if (o.certFile == "") != (o.keyFile == "") {
		return nil, fmt.Errorf("--client-cert and --client-key go together")
	}
	if o.tls || o.caFile != "" || o.certFile != "" {
		cfg, err := tlsfiles.ClientConfig(o.caFile, o.certFile, o.keyFile, log)
		if err != nil {
			return nil, err
		}
		opts.TLS = cfg
	}
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		opts.Token = strings.TrimSpace(string(b))
	}
	var err error
	if opts.Drop, err = dropHookFromEnv(); err != nil {
		return nil, err
	}
	return grpc.Dial(ctx, addr, consumer, opts)
}

// dial opens the agent's link: through the broker when --mqtt-broker is
// set, else over gRPC to --server.
func (o *agentOptions) dial(ctx context.Context, log *slog.Logger) (protocol.Conn, error) {
	if o.mqtt.broker != "" {
		return o.mqtt.dial(ctx, o.consumer, log)
	}
	return o.grpc.dial(ctx, o.server, o.consumer, log)
}

// endpoint names where the agent connects, for logs and errors.
func (o *agentOptions) endpoint() string {
	if o.mqtt.broker != "" {
		return o.mqtt.broker
	}
	return o.server
}

// dropHookFromEnv returns the fault hook dropStatusEnv asks for (nil when unset).
func dropHookFromEnv() (func(protocol.Message) bool, error) {
	v := os.Getenv(dropStatusEnv)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%s=%q: want a non-negative number of status messages to drop", dropStatusEnv, v)
	}
	var seen atomic.Int64
	return func(m protocol.Message) bool {
		return m.Type == protocol.TypeStatus && seen.Add(1) <= n
	}, nil
}
