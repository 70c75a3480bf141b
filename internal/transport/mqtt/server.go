package mqtt

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
)

// AgentHandler serves one agent session (the hub). Attach blocks until ctx
// ends or conn's receive channel closes.
type AgentHandler interface {
	Attach(ctx context.Context, consumer string, conn protocol.Conn) error
}

// Ownership decides which of several servers sharing the broker serves a
// consumer (replica.Ownership): every server receives every agent's
// events, and only the one Serves answers true for handles them.
type Ownership interface {
	Serves(ctx context.Context, consumers []string) ([]bool, error)
}

// Defaults of ServerConfig.
const (
	DefaultSource         = "baton"
	DefaultSessionTimeout = 90 * time.Second
	DefaultHelloInterval  = 5 * time.Second
	DefaultOwnerInterval  = time.Second

	// pendingLimit bounds the messages kept for a consumer while the
	// server decides whether it serves it.
	pendingLimit = 64

	// attachRetryFactor × HelloInterval passes before the server asks an
	// agent whose session the handler refused for a new Hello.
	attachRetryFactor = 12
)

// ServerConfig configures the server side.
type ServerConfig struct {
	// Broker is the broker's address (see ParseBroker).
	Broker string
	// Source names the server in topics and is the CloudEvents source of
	// its events (default "baton").
	Source string
	// Agents serves the sessions.
	Agents AgentHandler
	// SessionTimeout ends the session of a consumer that sent nothing for
	// this long (default 90 s, three missed heartbeats and more).
	SessionTimeout time.Duration
	// HelloInterval is the least time between two requests for a new Hello
	// to one consumer (default 5 s).
	HelloInterval time.Duration
	// Ownership, when set, makes this server one of several sharing the
	// broker: it opens a session only for a consumer Ownership says it
	// serves, ignores the others' events, and every OwnerInterval asks
	// the agents of the consumers it now serves without a session (their
	// server died) for a Hello. Nil serves every consumer.
	Ownership Ownership
	// OwnerInterval is how often ownership is checked (default 1 s).
	OwnerInterval time.Duration
	Options
}

// Server serves agents through the broker until Start's context ends.
type Server struct {
	cfg    ServerConfig
	opts   Options
	filter string

	link     brokerLink
	mu       sync.Mutex
	ctx      context.Context // Start's; set before the first connection
	sessions map[string]*serverConn
	asked    map[string]time.Time // last Hello request per consumer
	// With Ownership: consumers heard from without a session here, and
	// the messages of those whose ownership is being decided.
	seen    map[string]time.Time
	pending map[string][]protocol.Message
	wg      sync.WaitGroup // Attach goroutines
}

// NewServer checks cfg and returns a server; Start runs it.
func NewServer(cfg ServerConfig) (*Server, error) {
	if _, err := ParseBroker(cfg.Broker); err != nil {
		return nil, err
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if err := checkName("mqtt server: source", cfg.Source); err != nil {
		return nil, err
	}
	if cfg.Agents == nil {
		return nil, errors.New("mqtt server: Agents is required")
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.HelloInterval <= 0 {
		cfg.HelloInterval = DefaultHelloInterval
	}
	if cfg.OwnerInterval <= 0 {
		cfg.OwnerInterval = DefaultOwnerInterval
	}
	s := &Server{cfg: cfg, opts: cfg.Options.withDefaults("baton-server-" + cfg.Source),
		filter:   agentEventsFilter(cfg.Source),
		sessions: map[string]*serverConn{}, asked: map[string]time.Time{},
		seen: map[string]time.Time{}, pending: map[string][]protocol.Message{}}
	s.link = brokerLink{opts: s.opts, filter: s.filter, name: []any{"source", cfg.Source},
		onUp: func(gen uint64) {
			if gen > 1 {
				s.askAllHello() // sessions may have missed messages while the link was down
			}
		}}
	return s, nil
}

// Start connects to the broker and serves agents until ctx ends; it
// returns once every session has ended.
func (s *Server) Start(ctx context.Context) error {
	u, _ := ParseBroker(s.cfg.Broker)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	cm, err := s.link.connect(ctx, u, s.received)
	if err != nil {
		return fmt.Errorf("mqtt server %s: %w", u.Redacted(), err)
	}
	if s.cfg.Ownership != nil {
		go s.sweep(ctx)
	}
	s.reap(ctx)
	<-cm.Done()
	s.mu.Lock()
	for _, sc := range s.sessions {
		sc.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// reap ends sessions idle for longer than SessionTimeout until ctx ends.
func (s *Server) reap(ctx context.Context) {
	t := s.opts.Clock.NewTicker(max(s.cfg.SessionTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		now := s.opts.Clock.Now()
		s.mu.Lock()
		for consumer, sc := range s.sessions {
			if now.Sub(sc.seen()) > s.cfg.SessionTimeout {
				s.opts.Logger.Info("mqtt: agent silent; ending its session", "consumer", consumer)
				delete(s.sessions, consumer)
				sc.close()
			}
		}
		s.mu.Unlock()
	}
}

// fromAgent lists the messages an agent may send.
var fromAgent = map[protocol.Type]bool{protocol.TypeSpecAck: true, protocol.TypeStatus: true,
	protocol.TypeHello: true, protocol.TypeHeartbeat: true}

// received routes a publish from an agent; it must not block.
func (s *Server) received(pr paho.PublishReceived) (bool, error) {
	consumer := consumerOf(s.cfg.Source, pr.Packet.Topic)
	if consumer == "" {
		return false, nil
	}
	log := s.opts.Logger.With("consumer", consumer)
	e, err := UnmarshalEvent(pr.Packet.Payload)
	if err == nil && ce.IsKeepalive(e) {
		return true, nil
	}
	var m protocol.Message
	if err == nil {
		m, err = ce.Decode(e)
	}
	switch {
	case err != nil:
		log.Warn("mqtt: dropping undecodable event", "err", err)
	case m.Consumer != consumer:
		// The topic is what broker ACLs authorise; the event must agree.
		log.Warn("mqtt: dropping event for another consumer", "clustername", m.Consumer)
	case !fromAgent[m.Type]:
		log.Warn("mqtt: dropping event an agent may not send", "type", e.Type)
	default:
		s.route(consumer, m)
	}
	return true, nil
}

// route hands m to consumer's session, opening one on Hello and asking
// for a Hello when there is none or the agent's epoch changed.
func (s *Server) route(consumer string, m protocol.Message) {
	s.mu.Lock()
	sc := s.sessions[consumer]
	if sc == nil && s.cfg.Ownership != nil {
		s.unowned(consumer, m) // unlocks
		return
	}
	if sc == nil && m.Type == protocol.TypeHello && s.ctx.Err() == nil {
		sc = newServerConn(s, consumer)
		s.sessions[consumer] = sc
		s.wg.Add(1)
		go s.attach(sc)
	}
	s.mu.Unlock()
	if sc == nil {
		s.askHello(consumer)
		return
	}
	if epoch := messageEpoch(m); epoch != "" {
		if m.Type == protocol.TypeHello {
			sc.setEpoch(epoch)
		} else if epoch != sc.epochSeen() {
			s.askHello(consumer)
		}
	}
	if !sc.deliver(m) {
		s.opts.Logger.Warn("mqtt: session queue full; dropping message", "consumer", consumer, "type", m.Type)
	}
}

func messageEpoch(m protocol.Message) string {
	switch {
	case m.Hello != nil:
		return m.Hello.Epoch
	case m.Heartbeat != nil:
		return m.Heartbeat.Epoch
	case m.Status != nil:
		return m.Status.Epoch
	}
	return ""
}

// unowned handles m from a consumer without a session here when servers
// share the broker, with s.mu held (it unlocks). A Hello has this server
// decide whether it serves the consumer (decide); anything else is only
// noted: the sweep asks the agent for a Hello once this server serves it.
func (s *Server) unowned(consumer string, m protocol.Message) {
	if q, ok := s.pending[consumer]; ok {
		if len(q) < pendingLimit {
			s.pending[consumer] = append(q, m)
		}
		s.mu.Unlock()
		return
	}
	if m.Type != protocol.TypeHello || s.ctx.Err() != nil {
		s.seen[consumer] = s.opts.Clock.Now()
		s.mu.Unlock()
		return
	}
	s.pending[consumer] = []protocol.Message{m}
	delete(s.seen, consumer)
	s.wg.Add(1)
	s.mu.Unlock()
	go s.decide(consumer)
}

// decide opens a session for consumer if this server serves it, and routes
// the messages that waited for the decision into it; otherwise they are
// dropped: the serving server handles them.
func (s *Server) decide(consumer string) {
	defer s.wg.Done()
	serves, err := s.cfg.Ownership.Serves(s.ctx, []string{consumer})
	ok := err == nil && serves[0]
	if err != nil && s.ctx.Err() == nil {
		s.opts.Logger.Warn("mqtt: who serves the consumer", "consumer", consumer, "err", err)
	}
	s.mu.Lock()
	q := s.pending[consumer]
	delete(s.pending, consumer)
	if !ok || s.ctx.Err() != nil {
		s.seen[consumer] = s.opts.Clock.Now()
		s.mu.Unlock()
		return
	}
	if s.sessions[consumer] == nil {
		sc := newServerConn(s, consumer)
		s.sessions[consumer] = sc
		s.wg.Add(1)
		go s.attach(sc)
	}
	s.mu.Unlock()
	for _, m := range q {
		s.route(consumer, m)
	}
}

// sweep asks, every OwnerInterval, the agents of the consumers this server
// now serves but has no session for (their server died or left, or their
// Hello was missed) for a Hello, until ctx ends. Consumers not heard from
// for SessionTimeout are forgotten.
func (s *Server) sweep(ctx context.Context) {
	t := s.opts.Clock.NewTicker(s.cfg.OwnerInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		now := s.opts.Clock.Now()
		s.mu.Lock()
		var consumers []string
		for c, at := range s.seen {
			switch {
			case now.Sub(at) > s.cfg.SessionTimeout:
				delete(s.seen, c)
			case s.sessions[c] == nil:
				consumers = append(consumers, c)
			}
		}
		s.mu.Unlock()
		if len(consumers) == 0 {
			continue
		}
		serves, err := s.cfg.Ownership.Serves(ctx, consumers)
		if err != nil {
			if ctx.Err() == nil {
				s.opts.Logger.Warn("mqtt: who serves the consumers", "consumers", len(consumers), "err", err)
			}
			continue
		}
		for i, c := range consumers {
			if serves[i] {
				s.askHello(c)
			}
		}
	}
}

// attach runs the handler's session for sc until it ends.
func (s *Server) attach(sc *serverConn) {
	defer s.wg.Done()
	log := s.opts.Logger.With("consumer", sc.consumer)
	log.Info("mqtt: agent session started")
	err := s.cfg.Agents.Attach(s.ctx, sc.consumer, sc)
	s.mu.Lock()
	if s.sessions[sc.consumer] == sc {
		delete(s.sessions, sc.consumer)
	}
	if s.cfg.Ownership != nil {
		s.seen[sc.consumer] = s.opts.Clock.Now() // its agent may be served here again
	}
	if err != nil && s.ctx.Err() == nil {
		// E.g. an unknown consumer: ask its agent again only much later.
		s.asked[sc.consumer] = s.opts.Clock.Now().Add(attachRetryFactor * s.cfg.HelloInterval)
	}
	s.mu.Unlock()
	sc.close()
	log.Info("mqtt: agent session ended", "err", err)
}

// askAllHello asks the agent of every session for a new Hello, after the
// server's broker link came back: what an agent sent while the server was
// not subscribed is lost, its Hello on reconnecting included.
func (s *Server) askAllHello() {
	s.mu.Lock()
	consumers := make([]string, 0, len(s.sessions))
	for c := range s.sessions {
		consumers = append(consumers, c)
		delete(s.asked, c)
	}
	s.mu.Unlock()
	for _, c := range consumers {
		s.askHello(c)
	}
}

// askHello asks consumer's agent for a new Hello, at most once per
// HelloInterval: a keepalive on its sourceevents topic.
func (s *Server) askHello(consumer string) {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	if last, ok := s.asked[consumer]; ok && now.Sub(last) < s.cfg.HelloInterval {
		s.mu.Unlock()
		return
	}
	s.asked[consumer] = now
	ctx := s.ctx
	s.mu.Unlock()
	cm, _ := s.link.conn()
	if cm == nil {
		return
	}
	e := ce.Event{Source: s.cfg.Source, Type: ce.TypeHeartbeat, Time: now.UTC(),
		Ext: map[string]any{ce.ExtClusterName: consumer}}
	go func() {
		if err := publishEvent(ctx, cm, s.opts, SourceEventsTopic(s.cfg.Source, consumer), e, "hello request"); err != nil && ctx.Err() == nil {
			s.opts.Logger.Info("mqtt: hello request not sent", "consumer", consumer, "err", err)
		}
	}()
}

// Connected reports whether consumer has a session.
func (s *Server) Connected(consumer string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[consumer] != nil
}

// send publishes m to consumer; protocol.ErrDisconnected while the broker
// link is down.
func (s *Server) send(ctx context.Context, consumer string, m protocol.Message) error {
	cm, live := s.link.conn()
	if !live {
		return protocol.ErrDisconnected
	}
	if s.opts.Drop != nil && s.opts.Drop(m) {
		return nil
	}
	return publish(ctx, cm, s.opts, SourceEventsTopic(s.cfg.Source, consumer), s.cfg.Source, m)
}

// serverConn is the server's protocol.Conn for one consumer's session.
type serverConn struct {
	s        *Server
	consumer string
	in       *mailbox
	up       chan struct{}

	mu     sync.Mutex
	epoch  string
	last   time.Time
	closed bool
}

var _ protocol.Conn = (*serverConn)(nil)

func newServerConn(s *Server, consumer string) *serverConn {
	sc := &serverConn{s: s, consumer: consumer, in: newMailbox(recvLimit), up: make(chan struct{}, 1),
		last: s.opts.Clock.Now()}
	sc.up <- struct{}{}
	return sc
}

func (c *serverConn) deliver(m protocol.Message) bool {
	c.mu.Lock()
	c.last = c.s.opts.Clock.Now()
	c.mu.Unlock()
	return c.in.push(m)
}

func (c *serverConn) seen() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *serverConn) setEpoch(e string) { c.mu.Lock(); c.epoch = e; c.mu.Unlock() }

func (c *serverConn) epochSeen() string { c.mu.Lock(); defer c.mu.Unlock(); return c.epoch }

// close ends the session: Send fails from now on and Recv's channel closes.
func (c *serverConn) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.in.close()
}

// Send publishes m on the consumer's sourceevents topic.
func (c *serverConn) Send(ctx context.Context, m protocol.Message) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return protocol.ErrDisconnected
	}
	m.Consumer = c.consumer
	if err := c.s.send(ctx, c.consumer, m); err != nil {
		return fmt.Errorf("consumer %s: %w", c.consumer, err)
	}
	return nil
}

func (c *serverConn) Recv() <-chan protocol.Message { return c.in.out }
func (c *serverConn) Up() <-chan struct{}           { return c.up }
