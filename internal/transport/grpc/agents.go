package grpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
)

// agentService serves the agent listener: Subscribe with cluster_name opens
// a session handed to the AgentHandler, Publish feeds that session.
type agentService struct {
	pb.UnimplementedCloudEventServiceServer
	s   *Server
	ctx context.Context // the server's; ends every session

	mu       sync.Mutex
	sessions map[string]*session // by subscription id
	latest   map[string]*session // by consumer: the newest stream, for agents that send no subscription id
}

// session is the server's protocol.Conn for one agent Subscribe stream.
type session struct {
	s        *Server
	id       string // subscription id
	consumer string
	out      *outStream
	up       chan struct{}

	// in is Recv's channel. Deliveries hold inMu for reading; closing takes
	// it for writing after out.done is closed, so no delivery races the close.
	inMu   sync.RWMutex
	in     chan protocol.Message
	closed bool
}

var _ protocol.Conn = (*session)(nil)

func (a *agentService) Subscribe(req *pb.SubscriptionRequest, stream ggrpc.ServerStreamingServer[pb.CloudEvent]) error {
	consumer := req.GetClusterName()
	if consumer == "" {
		return status.Error(codes.InvalidArgument, "subscribe: cluster_name is required on the agent endpoint")
	}
	if dt := req.GetDataType(); dt != "" && dt != ce.DataType {
		return status.Errorf(codes.InvalidArgument, "subscribe: data type %q: unsupported", dt)
	}
	if err := auth.FromContext(stream.Context()).AuthorizeConsumer(consumer); err != nil {
		return denied(err)
	}
	// Register before the header, so the agent's first Publish (sent once
	// it sees the header) finds the session.
	sess := &session{s: a.s, id: uuid.NewString(), consumer: consumer, out: newOutStream(), up: make(chan struct{}, 1),
		in: make(chan protocol.Message, streamBuffer)}
	sess.up <- struct{}{}
	a.register(sess)
	defer a.unregister(sess)
	ctx, cancel, id, err := openStream(a.ctx, stream, sess.id)
	if err != nil {
		sess.close()
		return err
	}
	defer cancel()
	log := a.s.log.With("consumer", consumer, "subscription", id)
	log.Info("agent connected")

	sendErr := make(chan error, 1)
	go func() {
		sendErr <- a.s.sendLoop(ctx, sess.out, stream)
		cancel()
	}()
	attachErr := a.s.cfg.Agents.Attach(ctx, consumer, sess)
	cancel()
	sess.close()
	if err := <-sendErr; err != nil {
		log.Info("agent stream send failed", "err", err)
	}
	log.Info("agent disconnected", "err", attachErr)
	switch {
	case attachErr == nil, errors.Is(attachErr, context.Canceled):
	case errors.Is(attachErr, protocol.ErrDecommissioned):
		return status.Errorf(codes.FailedPrecondition, "agent session: %v", attachErr)
	case errors.Is(attachErr, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "agent session: %v", attachErr)
	default:
		return status.Errorf(codes.Unavailable, "agent session: %v", attachErr)
	}
	return nil
}

// register adds sess. An older stream of the same consumer stays open:
// the hub decides which session serves the consumer (a reconnect of the
// same agent supersedes its old one; another agent stands by).
func (a *agentService) register(sess *session) {
	a.mu.Lock()
	a.sessions[sess.id] = sess
	a.latest[sess.consumer] = sess
	a.mu.Unlock()
}

func (a *agentService) unregister(sess *session) {
	a.mu.Lock()
	delete(a.sessions, sess.id)
	if a.latest[sess.consumer] == sess {
		delete(a.latest, sess.consumer)
	}
	a.mu.Unlock()
}

// route finds the session a Publish belongs to: the one named by its
// subscription-id header, else the consumer's newest.
func (a *agentService) route(ctx context.Context, consumer string) *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ids := md.Get(SubscriptionIDHeader); len(ids) > 0 {
			if s := a.sessions[ids[0]]; s != nil && s.consumer == consumer {
				return s
			}
			return nil // that stream is gone: the agent reconnects
		}
	}
	return a.latest[consumer]
}

func (a *agentService) Publish(ctx context.Context, req *pb.PublishRequest) (*emptypb.Empty, error) {
	e, err := FromPB(req.GetEvent())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if ce.IsKeepalive(e) {
		return &emptypb.Empty{}, nil
	}
	m, err := ce.Decode(e)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if m.Consumer == "" {
		return nil, status.Error(codes.InvalidArgument, "publish: clustername extension is required")
	}
	if !fromAgent[m.Type] {
		return nil, status.Errorf(codes.InvalidArgument, "publish: %s: not an agent message", e.Type)
	}
	if err := auth.FromContext(ctx).AuthorizeConsumer(m.Consumer); err != nil {
		return nil, denied(err)
	}
	sess := a.route(ctx, m.Consumer)
	if sess == nil {
		return nil, status.Errorf(codes.Unavailable, "publish: consumer %q has no open subscription", m.Consumer)
	}
	if err := sess.deliver(ctx, m); err != nil {
		return nil, status.Errorf(codes.Unavailable, "publish: consumer %q: %v", m.Consumer, err)
	}
	return &emptypb.Empty{}, nil
}

// fromAgent lists the messages an agent may send.
var fromAgent = map[protocol.Type]bool{protocol.TypeSpecAck: true, protocol.TypeStatus: true,
	protocol.TypeHello: true, protocol.TypeHeartbeat: true}

func (c *session) deliver(ctx context.Context, m protocol.Message) error {
	c.inMu.RLock()
	defer c.inMu.RUnlock()
	if c.closed {
		return protocol.ErrDisconnected
	}
	select {
	case c.in <- m:
		return nil
	case <-c.out.done:
		return protocol.ErrDisconnected
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close ends the session: Send fails from now on and Recv's channel closes.
func (c *session) close() {
	c.out.close()
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.in)
	}
}

// Send encodes m for the agent and queues it on the stream.
func (c *session) Send(ctx context.Context, m protocol.Message) error {
	m.Consumer = c.consumer
	e, err := ce.Encode(m, c.s.cfg.SourceID, c.s.cfg.Clock.Now())
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.consumer, err)
	}
	ev, err := ToPB(e)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.consumer, err)
	}
	if n := proto.Size(ev); n > limits.GRPCMessageBytes {
		// The agent's receive limit: sent, it would end the stream.
		return fmt.Errorf("consumer %s: %w", c.consumer, protocol.TooLarge("send "+string(m.Type), n, limits.GRPCMessageBytes))
	}
	return c.out.enqueue(ctx, ev)
}

func (c *session) Recv() <-chan protocol.Message { return c.in }
func (c *session) Up() <-chan struct{}           { return c.up }
