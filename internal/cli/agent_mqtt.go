package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"

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
}

func (o *mqttAgentOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.broker, "mqtt-broker", "", "connect to the server through this MQTT broker, e.g. tcp://host:1883, instead of --server (gRPC)")
	f.StringVar(&o.source, "mqtt-source", mqtt.DefaultSource, "the server's source name in the MQTT topics (its --mqtt-source)")
	f.StringVar(&o.username, "mqtt-username", "", "user name at the MQTT broker")
	f.StringVar(&o.passwordFile, "mqtt-password-file", "", "file holding the password at the MQTT broker")
}

// dial opens the agent's link: through the broker when --mqtt-broker is
// set, else with dialServer (gRPC) to addr.
func (o *mqttAgentOptions) dial(ctx context.Context, addr, consumer string, log *slog.Logger) (protocol.Conn, error) {
	if o.broker == "" {
		return dialServer(ctx, addr, consumer, log)
	}
	opts, err := mqttClientOptions(o.username, o.passwordFile, log)
	if err != nil {
		return nil, err
	}
	if v := os.Getenv(dropStatusEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s=%q: want a non-negative number of status messages to drop", dropStatusEnv, v)
		}
		opts.Drop = dropFirstStatus(n)
	}
	return mqtt.Dial(ctx, o.broker, o.source, consumer, opts)
}

// endpoint names where the agent connects, for logs and errors.
func (o *mqttAgentOptions) endpoint(addr string) string {
	if o.broker == "" {
		return addr
	}
	return o.broker
}
