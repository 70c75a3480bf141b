package grpc

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"
	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/internal/bundlewrite"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/snowflake"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
)

// SubscriptionIDHeader is the response header a Subscribe stream opens
// with; sdk-go clients wait for it.
const SubscriptionIDHeader = "subscription-id"

// Defaults.
const (
	DefaultSourceAddr        = ":8090"
	DefaultAgentAddr         = ":8091"
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultSourceID          = "baton"
	streamBuffer             = 256

	// DefaultMaxStreamsPerIdentity caps the open streams of one identity on
	// one port: an agent needs one, a source client a few.
	DefaultMaxStreamsPerIdentity = 16
	// MaxStreamsPerConnection caps concurrent streams on one connection.
	MaxStreamsPerConnection = 100
	// MaxSourceMessage bounds one message on the source port: a spec event
	// carries at most a valid bundle plus its envelope, so anything larger
	// is refused before it is read whole (limits.SourceMessageBytes).
	MaxSourceMessage = limits.SourceMessageBytes
	// MaxAgentMessage bounds one message on the agent port
	// (limits.GRPCMessageBytes).
	MaxAgentMessage = limits.GRPCMessageBytes
)

// AgentHandler serves one agent session. Attach blocks until ctx ends (the
// stream closed or the server stops) or the session is given up; conn's
// Recv closes once Attach's session is over.
type AgentHandler interface {
	Attach(ctx context.Context, consumer string, conn protocol.Conn) error
}

// BundleStore is the part of store.Store the source API writes and reads.
// Errors wrap store.ErrNotFound, store.ErrConflict or store.ErrInvalid.
type BundleStore interface {
	bundlewrite.Store
	ListBundles(ctx context.Context, opts store.ListOptions) (store.Page[store.Bundle], error)
}

// ChangeFeed delivers store changes (the watch broker). since is the last
// sequence seen, or FromNow for live changes only. The channel closes when
// the subscriber fell too far behind; it must then subscribe again from the
// last sequence it saw. The func unsubscribes.
type ChangeFeed interface {
	Subscribe(filter func(store.Change) bool, since int64) (<-chan store.Change, func())
}

// FromNow asks a ChangeFeed for live changes only (watch.FromNow).
const FromNow int64 = -1

// Config configures a Server. Agents, Bundles and Changes are required.
type Config struct {
	// SourceAddr serves source clients (--grpc-addr); AgentAddr serves agents
	// (--agent-addr). Both serve the same CloudEventService.
	SourceAddr string
	AgentAddr  string
	// SourceID is the CloudEvents source of the events the server sends.
	SourceID string
	Agents   AgentHandler
	Bundles  BundleStore
	Changes  ChangeFeed
	// Transport returns the most restrictive transport agents are served
	// on, read at every write: a bundle whose spec message it cannot carry
	// is refused. nil is gRPC.
	Transport func() limits.Transport
	// Notify is called with the consumer after every accepted spec write.
	Notify func(consumer string)
	// SequenceID mints the snowflake sequence id of the Deleted status sent
	// for a purged bundle; it must share the node id with the ids status
	// ingest stores. Default: a generator on node 1.
	SequenceID func() string
	// HeartbeatInterval is how often every Subscribe stream gets a
	// heartbeat event (default 10 s; sdk-go clients give up after 20 s).
	HeartbeatInterval time.Duration
	TLS               TLSConfig
	// Auth authenticates every call; nil serves everyone as auth.Anonymous
	// (an admin), for loopback development and tests.
	Auth Authenticator
	// MaxStreamsPerIdentity caps the open streams of one authenticated
	// identity per port (default DefaultMaxStreamsPerIdentity).
	MaxStreamsPerIdentity int
	Clock                 clock.WithTicker
	Logger                *slog.Logger
	// Registerer receives the metrics under Maestro's names
	// (grpc_server_processed_total, cloudevents_received_total, …); nil
	// keeps them unregistered.
	Registerer prometheus.Registerer
}

// Server is the gRPC CloudEvents endpoint for source clients and agents.
type Server struct {
	cfg     Config
	metrics *metrics
	log     *slog.Logger
	agents  *agentService
	sources *sourceService

	ready             chan struct{}
	mu                sync.Mutex
	sourceLn, agentLn net.Addr
	startOnce         sync.Once
}

// New checks cfg and returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Agents == nil || cfg.Bundles == nil || cfg.Changes == nil {
		return nil, errors.New("grpc server: Agents, Bundles and Changes are required")
	}
	if cfg.SourceAddr == "" {
		cfg.SourceAddr = DefaultSourceAddr
	}
	if cfg.AgentAddr == "" {
		cfg.AgentAddr = DefaultAgentAddr
	}
	if cfg.SourceID == "" {
		cfg.SourceID = DefaultSourceID
	}
	if cfg.MaxStreamsPerIdentity <= 0 {
		cfg.MaxStreamsPerIdentity = DefaultMaxStreamsPerIdentity
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Notify == nil {
		cfg.Notify = func(string) {}
	}
	if cfg.SequenceID == nil {
		ids, err := snowflake.New(1, snowflake.WithClock(cfg.Clock))
		if err != nil {
			return nil, fmt.Errorf("grpc server: %w", err)
		}
		cfg.SequenceID = ids.NextString
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("grpc server: metrics: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, ready: make(chan struct{}), metrics: m}
	s.agents = &agentService{s: s, sessions: map[string]*session{}, latest: map[string]*session{}}
	s.sources = &sourceService{s: s, subs: map[string]map[*sourceSub]struct{}{},
		writer: &bundlewrite.Writer{Store: cfg.Bundles, Transport: cfg.Transport, Notify: cfg.Notify}}
	return s, nil
}

// Ready is closed once both listeners are bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// SourceAddr and AgentAddr return the bound addresses (after Ready).
func (s *Server) SourceAddr() string { s.mu.Lock(); defer s.mu.Unlock(); return addrString(s.sourceLn) }
func (s *Server) AgentAddr() string  { s.mu.Lock(); defer s.mu.Unlock(); return addrString(s.agentLn) }

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Start listens on both addresses and serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	srcOpts, agentOpts, err := s.serverOptions()
	if err != nil {
		return fmt.Errorf("grpc server: %w", err)
	}
	var lc net.ListenConfig
	sl, err := lc.Listen(ctx, "tcp", s.cfg.SourceAddr)
	if err != nil {
		return fmt.Errorf("grpc server: listen %s: %w", s.cfg.SourceAddr, err)
	}
	al, err := lc.Listen(ctx, "tcp", s.cfg.AgentAddr)
	if err != nil {
		sl.Close()
		return fmt.Errorf("grpc server: listen %s: %w", s.cfg.AgentAddr, err)
	}
	s.mu.Lock()
	s.sourceLn, s.agentLn = sl.Addr(), al.Addr()
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.sources.ctx, s.agents.ctx = ctx, ctx
	ka := []ggrpc.ServerOption{
		// sdk-go clients ping every 10 s, also without streams; the default
		// policy (5 min) would answer them with GOAWAY.
		ggrpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		ggrpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		// Stop returns only after every handler (every agent session of the
		// hub) has finished, so the store is not closed under them.
		ggrpc.WaitForHandlers(true),
	}
	ka = append(ka, ggrpc.MaxConcurrentStreams(MaxStreamsPerConnection))
	ka = append(ka, s.metrics.options()...)
	srcOpts, agentOpts = append(srcOpts, ka...), append(agentOpts, ka...)
	srcOpts = append(srcOpts, ggrpc.MaxRecvMsgSize(MaxSourceMessage))
	agentOpts = append(agentOpts, ggrpc.MaxRecvMsgSize(MaxAgentMessage))
	src := ggrpc.NewServer(srcOpts...)
	pb.RegisterCloudEventServiceServer(src, s.sources)
	agt := ggrpc.NewServer(agentOpts...)
	pb.RegisterCloudEventServiceServer(agt, s.agents)
	s.startOnce.Do(func() { close(s.ready) })
	s.log.Info("grpc listening", "sources", sl.Addr().String(), "agents", al.Addr().String())

	errc := make(chan error, 2)
	go func() { errc <- src.Serve(sl) }()
	go func() { errc <- agt.Serve(al) }()
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("grpc server: serve: %w", err)
	}
	cancel() // ends every stream handler
	src.Stop()
	agt.Stop()
	return err
}

// outStream owns the sending side of one Subscribe stream: events queued by
// producers and the periodic heartbeat. Only its loop calls Send.
type outStream struct {
	events chan *pb.CloudEvent
	done   chan struct{}
	once   sync.Once
}

func newOutStream() *outStream {
	return &outStream{events: make(chan *pb.CloudEvent, streamBuffer), done: make(chan struct{})}
}

func (o *outStream) close() { o.once.Do(func() { close(o.done) }) }

// enqueue queues ev; it fails once the stream is over.
func (o *outStream) enqueue(ctx context.Context, ev *pb.CloudEvent) error {
	select {
	case <-o.done:
		return protocol.ErrDisconnected
	default:
	}
	select {
	case o.events <- ev:
		return nil
	case <-o.done:
		return protocol.ErrDisconnected
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendLoop writes queued events and heartbeats to stream until ctx ends or
// a send fails; it closes o on return.
func (s *Server) sendLoop(ctx context.Context, o *outStream, stream ggrpc.ServerStreamingServer[pb.CloudEvent]) error {
	defer o.close()
	t := s.cfg.Clock.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		var ev *pb.CloudEvent
		select {
		case <-ctx.Done():
			return nil
		case <-o.done:
			return nil
		case <-t.C():
			ev = heartbeatEvent(s.cfg.SourceID)
		case ev = <-o.events:
		}
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
}

// openStream sends the subscription-id header (a new id when id is empty)
// and returns a context that ends with the stream or the server.
func openStream(serverCtx context.Context, stream ggrpc.ServerStreamingServer[pb.CloudEvent], id string) (context.Context, context.CancelFunc, string, error) {
	if id == "" {
		id = uuid.NewString()
	}
	if err := stream.SendHeader(metadata.Pairs(SubscriptionIDHeader, id)); err != nil {
		return nil, nil, "", err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	stop := context.AfterFunc(serverCtx, cancel)
	return ctx, func() { stop(); cancel() }, id, nil
}
