package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
)

// recvLimit bounds the messages queued for a reader (see mailbox).
const recvLimit = 1 << 16

// Client is an agent's protocol.Conn over MQTT: it subscribes to the
// consumer's sourceevents topic and publishes on its agentevents topic,
// reconnecting to the broker until the Dial context ends. Up fires on every
// new broker connection once the subscription is in place, and whenever the
// server asks for a new Hello; Send returns protocol.ErrDisconnected while
// the broker is unreachable.
type Client struct {
	consumer string
	source   string // topic source
	evSource string // CloudEvents source attribute of the agent's events
	opts     Options
	in       *mailbox
	up       chan struct{}

	link brokerLink
}

var _ protocol.Conn = (*Client)(nil)

// Dial starts consumer's agent link through the broker for the server
// publishing as source, and returns at once; the link runs until ctx ends,
// after which Recv's channel closes. An error means the arguments are
// unusable.
func Dial(ctx context.Context, broker, source, consumer string, opts Options) (*Client, error) {
	u, err := ParseBroker(broker)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(checkName("mqtt dial: source", source), checkName("mqtt dial: consumer", consumer)); err != nil {
		return nil, err
	}
	opts = opts.withDefaults("baton-agent-" + consumer)
	c := &Client{consumer: consumer, source: source, evSource: "baton-agent-" + consumer, opts: opts,
		in: newMailbox(recvLimit), up: make(chan struct{}, 1)}
	c.link = brokerLink{opts: opts, filter: SourceEventsTopic(source, consumer), name: []any{"consumer", consumer},
		onUp: func(uint64) { c.signalUp() }}
	cm, err := c.link.connect(ctx, u, c.received)
	if err != nil {
		return nil, fmt.Errorf("mqtt dial %s: %w", u.Redacted(), err)
	}
	go func() {
		<-cm.Done()
		c.in.close()
	}()
	return c, nil
}

// subscribe makes one QoS 1 subscription and checks the broker granted it.
func subscribe(ctx context.Context, cm *autopaho.ConnectionManager, filter string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ack, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	if len(ack.Reasons) != 1 || ack.Reasons[0] >= 0x80 {
		return fmt.Errorf("subscribe %s: refused by the broker (reasons %v)", filter, ack.Reasons)
	}
	return nil
}

func (c *Client) signalUp() {
	select {
	case c.up <- struct{}{}:
	default:
	}
}

// received handles a publish from the broker; it must not block.
func (c *Client) received(pr paho.PublishReceived) (bool, error) {
	if pr.Packet.Topic != SourceEventsTopic(c.source, c.consumer) {
		return false, nil
	}
	e, err := UnmarshalEvent(pr.Packet.Payload)
	if err == nil && ce.IsKeepalive(e) {
		// The server has no session for this agent: say Hello again.
		if _, live := c.link.conn(); live {
			c.opts.Logger.Info("mqtt: server asks for a new session", "consumer", c.consumer)
			c.signalUp()
		}
		return true, nil
	}
	var m protocol.Message
	if err == nil {
		m, err = ce.Decode(e)
	}
	if err != nil {
		c.opts.Logger.Warn("mqtt: dropping undecodable event", "consumer", c.consumer, "err", err)
		return true, nil
	}
	if !c.in.push(m) {
		c.opts.Logger.Warn("mqtt: receive queue full; dropping message", "consumer", c.consumer, "type", m.Type)
	}
	return true, nil
}

// Send publishes m on the consumer's agentevents topic and waits for the
// broker's acknowledgement. It returns protocol.ErrDisconnected (wrapped)
// while the broker link is down.
func (c *Client) Send(ctx context.Context, m protocol.Message) error {
	if c.opts.Drop != nil && c.opts.Drop(m) {
		return nil
	}
	cm, live := c.link.conn()
	if !live {
		return protocol.ErrDisconnected
	}
	m.Consumer = c.consumer
	if err := publish(ctx, cm, c.opts, AgentEventsTopic(c.source, c.consumer), c.evSource, m); err != nil {
		return fmt.Errorf("consumer %s: %w", c.consumer, err)
	}
	return nil
}

// Recv returns the messages from the server; it closes when the Dial
// context ends.
func (c *Client) Recv() <-chan protocol.Message { return c.in.out }

// Up receives a value each time a new session starts.
func (c *Client) Up() <-chan struct{} { return c.up }

// Done is closed once the link has stopped after the Dial context ended.
func (c *Client) Done() <-chan struct{} { cm, _ := c.link.conn(); return cm.Done() }
