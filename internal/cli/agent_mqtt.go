package cli

import (
	"context"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/transport/mqtt"
)

// mqttAgentOptions select the MQTT transport for `baton agent`.
type mqttAgentOptions struct {
	broker       string
	source       string
	username     string
	passwordFile string
	tls          mqttTLS
}

func (o *mqttAgentOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.broker, "mqtt-broker", "", "connect to the server through this MQTT broker, e.g. tcp://host:1883, instead of --server (gRPC)")
	f.StringVar(&o.source, "mqtt-source", mqtt.DefaultSource, "the server's source name in the MQTT topics (its --mqtt-source)")
	f.StringVar(&o.username, "mqtt-username", "", "user name at the MQTT broker")
	f.StringVar(&o.passwordFile, "mqtt-password-file", "", "file holding the password at the MQTT broker")
	o.tls.flags(f)
}

// dial opens the agent's link through the broker.
func (o *mqttAgentOptions) dial(ctx context.Context, consumer string, log *slog.Logger) (protocol.Conn, error) {
	opts, err := mqttClientOptions(o.username, o.passwordFile, o.tls, log)
	if err != nil {
		return nil, err
	}
	if opts.Drop, err = dropHookFromEnv(); err != nil {
		return nil, err
	}
	return mqtt.Dial(ctx, o.broker, o.source, consumer, opts)
}
