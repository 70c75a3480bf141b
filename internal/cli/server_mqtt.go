package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/baton-dev/baton/internal/hub"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/server"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/tlsfiles"
	"github.com/baton-dev/baton/internal/transport/mqtt"
)

// mqttServerOptions configure serving agents through an MQTT broker, beside
// gRPC and into the same hub.
type mqttServerOptions struct {
	broker       string
	source       string
	username     string
	passwordFile string
	tls          mqttTLS
}

// mqttTLS secures the link to a tls://, ssl://, mqtts:// or wss:// broker.
type mqttTLS struct {
	caFile, certFile, keyFile string
}

func (t *mqttTLS) flags(fs *pflag.FlagSet) {
	fs.StringVar(&t.caFile, "mqtt-ca", "", "CA (PEM) that signs the MQTT broker's certificate (default: the system roots)")
	fs.StringVar(&t.certFile, "mqtt-client-cert", "", "client certificate (PEM) presented to the MQTT broker; reloaded when the file changes")
	fs.StringVar(&t.keyFile, "mqtt-client-key", "", "key (PEM) of --mqtt-client-cert")
}

func init() {
	// Registered after the agent link (server_link.go sorts first), whose
	// hub this extension serves MQTT agents into.
	registerServerExtension(func() ServerExtension {
		o := &mqttServerOptions{}
		return ServerExtension{Name: "mqtt agent link", Flags: o.flags, Apply: o.apply}
	})
}

func (o *mqttServerOptions) flags(fs *pflag.FlagSet) {
	fs.StringVar(&o.broker, "mqtt-broker", "", "MQTT broker agents connect through, e.g. tcp://host:1883 or tls://host:8883 (empty: no MQTT)")
	fs.StringVar(&o.source, "mqtt-source", mqtt.DefaultSource, "source name in the MQTT topics sources/{source}/consumers/{consumer}/...")
	fs.StringVar(&o.username, "mqtt-username", "", "user name at the MQTT broker")
	fs.StringVar(&o.passwordFile, "mqtt-password-file", "", "file holding the password at the MQTT broker")
	o.tls.flags(fs)
}

func (o *mqttServerOptions) apply(_ context.Context, _ store.Store, log *slog.Logger, opts *server.Options) error {
	if o.broker == "" {
		return nil
	}
	h := hubOf(opts)
	if h == nil {
		return errors.New("mqtt: no agent hub to serve (the agent link extension must come first)")
	}
	mo, err := mqttClientOptions(o.username, o.passwordFile, o.tls, log)
	if err != nil {
		return err
	}
	cfg := mqtt.ServerConfig{Broker: o.broker, Source: o.source, Agents: h, Options: mo}
	if opts.Replica != nil {
		// Every replica on the broker receives every agent's events; the
		// one that owns a consumer's session lease handles them.
		cfg.Ownership = opts.Replica.Ownership(hub.SessionLeasePrefix)
		cfg.OwnerInterval = max(opts.Replica.TTL()/3, 100*time.Millisecond)
	}
	s, err := mqtt.NewServer(cfg)
	if err != nil {
		return err
	}
	opts.Runnables = append(opts.Runnables, s)
	opts.UseTransport(limits.MQTT)
	return nil
}

// hubOf finds the hub the agent link added to opts.
func hubOf(opts *server.Options) *hub.Hub {
	for _, r := range opts.Runnables {
		if h, ok := r.(*hub.Hub); ok {
			return h
		}
	}
	return nil
}

// mqttClientOptions reads the broker credentials and TLS files.
func mqttClientOptions(username, passwordFile string, t mqttTLS, log *slog.Logger) (mqtt.Options, error) {
	o := mqtt.Options{Username: username, Logger: log}
	if t.caFile != "" || t.certFile != "" || t.keyFile != "" {
		cfg, err := tlsfiles.ClientConfig(t.caFile, t.certFile, t.keyFile, log)
		if err != nil {
			return o, fmt.Errorf("mqtt: %w", err)
		}
		o.TLS = cfg
	}
	if passwordFile != "" {
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return o, fmt.Errorf("mqtt: --mqtt-password-file: %w", err)
		}
		o.Password = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	return o, nil
}
