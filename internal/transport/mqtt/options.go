package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/backoff"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
)

// Options configure a link to the broker, of the server or of an agent.
type Options struct {
	// Username and Password authenticate to the broker (empty: anonymous).
	Username string
	Password []byte
	// TLS is used for tls://, ssl://, mqtts:// and wss:// broker URLs.
	TLS *tls.Config
	// ClientID is the MQTT client identifier (default: a name with a random
	// suffix, so two processes never take over each other's connection).
	ClientID string
	// KeepAlive is the MQTT keepalive (default 30 s).
	KeepAlive time.Duration
	// SessionExpiry is how long the broker keeps the client's session (its
	// subscription and the QoS 1 messages for it) across a lost connection
	// (default 5 min; the first connection of a process starts clean).
	SessionExpiry time.Duration
	// Backoff spaces connection and subscription attempts (zero:
	// backoff.Reconnect, at most 1 s apart).
	Backoff backoff.Policy
	// ConnectTimeout bounds one connection attempt (default 10 s).
	ConnectTimeout time.Duration
	// PublishTimeout bounds the wait for a publish's acknowledgement by the
	// broker when the caller's context has no earlier deadline (default 10 s).
	PublishTimeout time.Duration
	Clock          clock.WithTicker
	Logger         *slog.Logger
	// Drop is a test-only fault injection hook: when it returns true for a
	// message, Send drops the message and reports success. Never set it in
	// production.
	Drop func(protocol.Message) bool
}

func (o Options) withDefaults(clientPrefix string) Options {
	if o.ClientID == "" {
		o.ClientID = fmt.Sprintf("%s-%08x", clientPrefix, rand.Uint32())
		if len(o.ClientID) > 64 {
			o.ClientID = o.ClientID[len(o.ClientID)-64:]
		}
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 30 * time.Second
	}
	if o.SessionExpiry <= 0 {
		o.SessionExpiry = 5 * time.Minute
	}
	if o.Backoff.Initial <= 0 {
		o.Backoff = backoff.Reconnect
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 10 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// ParseBroker parses a broker address: a URL with scheme tcp, mqtt, tls,
// ssl, mqtts, ws or wss, or host:port (tcp).
func ParseBroker(broker string) (*url.URL, error) {
	if broker == "" {
		return nil, fmt.Errorf("mqtt broker: address is required")
	}
	if !strings.Contains(broker, "://") {
		broker = "tcp://" + broker
	}
	u, err := url.Parse(broker)
	if err != nil {
		return nil, fmt.Errorf("mqtt broker %q: %w", broker, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt", "tls", "ssl", "mqtts", "ws", "wss":
	default:
		return nil, fmt.Errorf("mqtt broker %q: scheme %q: want tcp, mqtt, tls, ssl, mqtts, ws or wss", broker, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("mqtt broker %q: host is required", broker)
	}
	if u.Port() == "" {
		port := "1883"
		switch strings.ToLower(u.Scheme) {
		case "tls", "ssl", "mqtts":
			port = "8883"
		case "ws":
			port = "80"
		case "wss":
			port = "443"
		}
		u.Host += ":" + port
	}
	return u, nil
}

// clientConfig is the autopaho configuration shared by server and agent;
// the caller sets OnConnectionUp, OnConnectionDown and OnPublishReceived.
func (o Options) clientConfig(u *url.URL) autopaho.ClientConfig {
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		TlsCfg:                        o.TLS,
		KeepAlive:                     uint16(min(o.KeepAlive/time.Second, 65535)),
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         uint32(min(o.SessionExpiry/time.Second, 1<<32-1)),
		ReconnectBackoff:              o.Backoff.Delay,
		ConnectTimeout:                o.ConnectTimeout,
		ConnectUsername:               o.Username,
		ConnectPassword:               o.Password,
		ClientConfig:                  paho.ClientConfig{ClientID: o.ClientID},
	}
	log := o.Logger.With("broker", u.Redacted())
	secure := isTLSScheme(u.Scheme)
	cfg.OnConnectError = func(err error) {
		if hint := tlsHint(err, secure); hint != "" {
			// A TLS refusal does not heal by retrying: say what to fix.
			log.Warn("mqtt: connect failed", "err", err, "hint", hint)
			return
		}
		log.Info("mqtt: connect failed", "err", err)
	}
	cfg.ClientConfig.OnClientError = func(err error) { log.Info("mqtt: client error", "err", err) }
	return cfg
}

// publish encodes m as a CloudEvent with the given source attribute and
// publishes it with QoS 1 on topic, waiting for the broker's
// acknowledgement. A broker that is down gives protocol.ErrDisconnected.
func publish(ctx context.Context, cm *autopaho.ConnectionManager, o Options, topic, source string, m protocol.Message) error {
	e, err := ce.Encode(m, source, o.Clock.Now())
	if err != nil {
		return err
	}
	return publishEvent(ctx, cm, o, topic, e, string(m.Type))
}

func publishEvent(ctx context.Context, cm *autopaho.ConnectionManager, o Options, topic string, e ce.Event, what string) error {
	payload, err := MarshalEvent(e)
	if err != nil {
		return err
	}
	if len(payload) > limits.MQTTMessageBytes {
		return protocol.TooLarge("publish "+what, len(payload), limits.MQTTMessageBytes)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.PublishTimeout)
		defer cancel()
	}
	_, err = cm.Publish(ctx, &paho.Publish{QoS: 1, Topic: topic, Payload: payload,
		Properties: &paho.PublishProperties{ContentType: ContentType}})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && ctx.Err() == context.Canceled {
		return ctx.Err()
	}
	// Connection down, or lost before the acknowledgement: the caller's
	// retry queue sends the message again once the link is back.
	return fmt.Errorf("publish %s: %v: %w", what, err, protocol.ErrDisconnected)
}

// isTLSScheme reports whether a broker URL of this scheme speaks TLS.
func isTLSScheme(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "tls", "ssl", "mqtts", "wss":
		return true
	}
	return false
}

// tlsHint says what to check when err is a TLS refusal between baton and
// the broker, and "" for anything else. secure says the broker URL is a TLS
// one: with TLS 1.3 the client's handshake ends before the broker checks
// the client certificate, so a refused certificate shows up as the broker
// resetting or closing the connection on the first write or read instead
// of as a TLS alert.
func tlsHint(err error, secure bool) string {
	var unknownCA x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	msg := err.Error()
	switch {
	case errors.As(err, &unknownCA), strings.Contains(msg, "x509: certificate signed by unknown authority"):
		return "the broker's certificate is not signed by a CA baton trusts: give its CA with --mqtt-ca"
	case errors.As(err, &host), strings.Contains(msg, "x509: certificate is valid for"):
		return "the broker's certificate does not name the host of --mqtt-broker"
	case errors.As(err, &invalid):
		return "the broker's certificate is not valid (expired, or not for a server)"
	case strings.Contains(msg, "remote error: tls: certificate required"):
		return "the broker requires a client certificate: give --mqtt-client-cert and --mqtt-client-key"
	case strings.Contains(msg, "remote error: tls: unknown certificate authority"),
		strings.Contains(msg, "remote error: tls: bad certificate"),
		strings.Contains(msg, "remote error: tls: certificate expired"),
		strings.Contains(msg, "remote error: tls: certificate revoked"):
		return "the broker refused the client certificate of --mqtt-client-cert: it must be valid and signed by a CA the broker trusts (its cafile)"
	case strings.Contains(msg, "remote error: tls:"):
		return "the broker refused the TLS handshake: check --mqtt-ca, --mqtt-client-cert and the broker's TLS settings"
	case secure && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) ||
		strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "broken pipe") || strings.Contains(msg, "EOF")):
		return "the broker closed the TLS connection right after the handshake, which is how a TLS 1.3 broker refuses a missing or untrusted client certificate: give --mqtt-client-cert and --mqtt-client-key signed by a CA the broker trusts (its cafile)"
	}
	return ""
}
