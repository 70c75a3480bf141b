package grpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	ggrpc "google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/backoff"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
)

// DialOptions configure an agent's link to the server.
type DialOptions struct {
	// Source is the CloudEvents source of the agent's events (default
	// "baton-agent-<consumer>").
	Source string
	// TLS secures the connection (nil: plaintext). Give it a client
	// certificate when the server requires one.
	TLS *tls.Config
	// Token is sent as a bearer token on every call.
	Token string
	// Backoff spaces reconnect attempts, both this client's and the
	// gRPC channel's own (zero: backoff.Reconnect, at most 1 s apart).
	Backoff backoff.Policy
	// ServerTimeout ends a session that received nothing, heartbeats
	// included, for this long (default 3 × DefaultHeartbeatInterval).
	ServerTimeout time.Duration
	// HeaderTimeout bounds the wait for the subscription-id header (default 10 s).
	HeaderTimeout time.Duration
	Clock         clock.WithTickerAndDelayedExecution
	Logger        *slog.Logger
	// Drop is a test-only fault injection hook: when it returns true for a
	// message, Send drops the message and reports success. Never set it in
	// production.
	Drop func(protocol.Message) bool
	// GRPCOptions are appended to the dial options.
	GRPCOptions []ggrpc.DialOption
}

// Client is an agent's protocol.Conn over gRPC: it subscribes with the
// consumer as cluster_name and publishes its messages, reconnecting with
// backoff until the Dial context ends. Up fires for every new session; Send
// returns protocol.ErrDisconnected while no session is up.
//
// Several server addresses (replicas) are tried in turn: a session that
// fails or cannot be opened moves the link to the next address.
type Client struct {
	consumer string
	opts     DialOptions
	addrs    []string
	ccs      []*ggrpc.ClientConn
	recv     chan protocol.Message
	up       chan struct{}

	mu   sync.RWMutex
	live bool
	cur  int                        // index of the address in use
	rpc  pb.CloudEventServiceClient // of addrs[cur]
	// subID is the subscription id of the current session, sent with
	// every Publish so that the server routes it to this session.
	subID string
}

var _ protocol.Conn = (*Client)(nil)

// Dial starts the agent's link to addr and returns at once; the link runs
// until ctx ends, after which Recv's channel closes. addr may list several
// addresses separated by commas ("a:8091,b:8091"), tried in turn. An error
// means the options or addresses are unusable.
func Dial(ctx context.Context, addr, consumer string, opts DialOptions) (*Client, error) {
	if consumer == "" {
		return nil, errors.New("grpc dial: consumer is required")
	}
	addrs, err := SplitAddrs(addr)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults(consumer)
	dopts := []ggrpc.DialOption{ggrpc.WithTransportCredentials(insecure.NewCredentials())}
	if opts.TLS != nil {
		dopts[0] = ggrpc.WithTransportCredentials(credentials.NewTLS(opts.TLS))
	}
	if opts.Token != "" {
		dopts = append(dopts, ggrpc.WithPerRPCCredentials(tokenCreds{token: opts.Token, secure: opts.TLS != nil}))
	}
	dopts = append(dopts, ggrpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		// The channel reconnects by the same policy: grpc's default (up to
		// 120 s between attempts) would keep a restarted server waiting.
		ggrpc.WithConnectParams(ggrpc.ConnectParams{MinConnectTimeout: 5 * time.Second, Backoff: grpcbackoff.Config{
			BaseDelay: opts.Backoff.Initial, Multiplier: max(opts.Backoff.Factor, 1),
			Jitter: opts.Backoff.Jitter, MaxDelay: max(opts.Backoff.Max, opts.Backoff.Initial)}}))
	c := &Client{consumer: consumer, opts: opts, addrs: addrs,
		recv: make(chan protocol.Message, streamBuffer), up: make(chan struct{}, 1)}
	for _, a := range addrs {
		cc, err := ggrpc.NewClient(a, append(dopts, opts.GRPCOptions...)...)
		if err != nil {
			for _, cc := range c.ccs {
				_ = cc.Close()
			}
			return nil, fmt.Errorf("grpc dial %s: %w", a, err)
		}
		c.ccs = append(c.ccs, cc)
	}
	c.rpc = pb.NewCloudEventServiceClient(c.ccs[0])
	go c.run(ctx)
	return c, nil
}

// SplitAddrs splits a comma-separated list of server addresses; an empty
// entry is an error naming its position.
func SplitAddrs(list string) ([]string, error) {
	parts := strings.Split(list, ",")
	out := make([]string, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("server address list %q: entry %d is empty", list, i+1)
		}
		out = append(out, p)
	}
	return out, nil
}

// next moves the link to the next address.
func (c *Client) next() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = (c.cur + 1) % len(c.ccs)
	c.rpc = pb.NewCloudEventServiceClient(c.ccs[c.cur])
}

// Addr returns the address the link uses now.
func (c *Client) Addr() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.addrs[c.cur]
}

func (o DialOptions) withDefaults(consumer string) DialOptions {
	if o.Source == "" {
		o.Source = "baton-agent-" + consumer
	}
	if o.Backoff.Initial <= 0 {
		o.Backoff = backoff.Reconnect
	}
	if o.ServerTimeout <= 0 {
		o.ServerTimeout = 3 * DefaultHeartbeatInterval
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 10 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// RefusedRetry is how long an agent whose consumer the server refuses
// (decommissioned: codes.FailedPrecondition) waits before it asks again.
var RefusedRetry = 30 * time.Second

func (c *Client) run(ctx context.Context) {
	defer close(c.recv)
	defer func() {
		for _, cc := range c.ccs {
			_ = cc.Close()
		}
	}()
	log := c.opts.Logger.With("consumer", c.consumer)
	retry := c.opts.Backoff.Start()
	fast := 0 // addresses tried without waiting since the last wait
	for ctx.Err() == nil {
		addr := c.Addr()
		established, err := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if established {
			retry.Reset()
		}
		if status.Code(err) == codes.FailedPrecondition {
			// The server refuses this consumer for good (decommissioned):
			// say so loudly, and ask again only rarely.
			log.Error("the server refuses this consumer; this agent applies nothing", "server", addr, "err", err,
				"retry", RefusedRetry)
			select {
			case <-ctx.Done():
				return
			case <-c.opts.Clock.After(RefusedRetry):
			}
			continue
		}
		if len(c.ccs) > 1 {
			c.next()
			if established && fast < len(c.ccs)-1 {
				// The next replica is tried at once (once per round):
				// this one may be gone.
				fast++
				log.Info("server link down; trying the next server", "server", addr, "next", c.Addr(), "err", err)
				continue
			}
		}
		fast = 0
		wait := retry.Next()
		log.Info("server link down", "server", addr, "err", err, "retry", wait)
		select {
		case <-ctx.Done():
			return
		case <-c.opts.Clock.After(wait):
		}
	}
}

// connectNow makes the channel dial now, if it is not connected, and waits
// (at most one backoff bound) for the outcome. Without it a channel in
// transient failure answers at once with its last error and dials again
// only when its own backoff says so: the two backoffs added up, and an
// agent reached a restarted server up to two bounds late.
func (c *Client) connectNow(ctx context.Context, cc *ggrpc.ClientConn) {
	ctx, cancel := context.WithTimeout(ctx, max(c.opts.Backoff.Bound(), time.Second))
	defer cancel()
	s := cc.GetState()
	if s == connectivity.TransientFailure {
		cc.ResetConnectBackoff()
		if !cc.WaitForStateChange(ctx, s) {
			return
		}
		s = cc.GetState()
	}
	if s == connectivity.Idle {
		cc.Connect()
	}
	for s == connectivity.Idle || s == connectivity.Connecting {
		if !cc.WaitForStateChange(ctx, s) {
			return
		}
		s = cc.GetState()
	}
}

// session runs one Subscribe stream until it fails; established tells
// whether it got as far as the subscription header.
func (c *Client) session(ctx context.Context) (established bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.RLock()
	rpc, cc := c.rpc, c.ccs[c.cur]
	c.mu.RUnlock()
	c.connectNow(ctx, cc)
	stream, err := rpc.Subscribe(ctx, &pb.SubscriptionRequest{ClusterName: c.consumer, DataType: ce.DataType})
	if err != nil {
		return false, err
	}
	hdrTimer := c.opts.Clock.AfterFunc(c.opts.HeaderTimeout, cancel)
	hdr, err := stream.Header()
	hdrTimer.Stop()
	if err != nil {
		return false, err
	}
	if len(hdr.Get(SubscriptionIDHeader)) == 0 {
		// No header: the server refused; Recv carries its error.
		_, err := stream.Recv()
		return false, fmt.Errorf("subscribe: no %s header: %w", SubscriptionIDHeader, err)
	}
	c.mu.Lock()
	c.live, c.subID = true, hdr.Get(SubscriptionIDHeader)[0]
	c.mu.Unlock()
	defer c.setLive(false)
	select {
	case c.up <- struct{}{}:
	default:
	}

	events := make(chan *pb.CloudEvent)
	errc := make(chan error, 1)
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	watchdog := c.opts.Clock.NewTimer(c.opts.ServerTimeout)
	defer watchdog.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-errc:
			return true, err
		case <-watchdog.C():
			return true, fmt.Errorf("no event from the server for %s", c.opts.ServerTimeout)
		case ev := <-events:
			if err := c.deliver(ctx, ev); err != nil {
				return true, err
			}
			// After delivering: a slow reader is not a silent server.
			watchdog.Reset(c.opts.ServerTimeout)
		}
	}
}

func (c *Client) deliver(ctx context.Context, ev *pb.CloudEvent) error {
	e, err := FromPB(ev)
	if err == nil && ce.IsKeepalive(e) {
		return nil
	}
	var m protocol.Message
	if err == nil {
		m, err = ce.Decode(e)
	}
	if err != nil {
		c.opts.Logger.Warn("dropping undecodable event", "consumer", c.consumer, "type", ev.GetType(), "err", err)
		return nil
	}
	select {
	case c.recv <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) setLive(v bool) { c.mu.Lock(); c.live = v; c.mu.Unlock() }

// Send publishes m. It returns protocol.ErrDisconnected (wrapped) while no
// session is up or when the server cannot be reached.
func (c *Client) Send(ctx context.Context, m protocol.Message) error {
	if c.opts.Drop != nil && c.opts.Drop(m) {
		return nil
	}
	c.mu.RLock()
	live, rpc, subID := c.live, c.rpc, c.subID
	c.mu.RUnlock()
	if !live {
		return protocol.ErrDisconnected
	}
	m.Consumer = c.consumer
	e, err := ce.Encode(m, c.opts.Source, c.opts.Clock.Now())
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.consumer, err)
	}
	ev, err := ToPB(e)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.consumer, err)
	}
	if n := proto.Size(ev); n > limits.GRPCMessageBytes {
		return fmt.Errorf("consumer %s: %w", c.consumer, protocol.TooLarge("publish "+string(m.Type), n, limits.GRPCMessageBytes))
	}
	_, err = rpc.Publish(metadata.AppendToOutgoingContext(ctx, SubscriptionIDHeader, subID), &pb.PublishRequest{Event: ev})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if status.Code(err) == codes.ResourceExhausted && strings.Contains(status.Convert(err).Message(), "larger than max") {
		// The server's receive limit (grpc-go's wording).
		return fmt.Errorf("consumer %s: publish %s: %v: %w", c.consumer, m.Type, err, protocol.ErrTooLarge)
	}
	if status.Code(err) == codes.Unavailable {
		return fmt.Errorf("consumer %s: publish %s: %v: %w", c.consumer, m.Type, err, protocol.ErrDisconnected)
	}
	return fmt.Errorf("consumer %s: publish %s: %w", c.consumer, m.Type, err)
}

// Recv returns the messages from the server; it closes when the Dial
// context ends.
func (c *Client) Recv() <-chan protocol.Message { return c.recv }

// Up receives a value each time a new session starts.
func (c *Client) Up() <-chan struct{} { return c.up }
