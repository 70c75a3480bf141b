package grpc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/tlsfiles"
)

// Authenticator turns a caller into an identity (auth.Authenticator).
type Authenticator interface {
	Authenticate(ctx context.Context, r auth.Request) (*auth.Identity, error)
	// ClientCAs verifies client certificates; nil accepts none.
	ClientCAs() *x509.CertPool
	// Denied counts and logs a refused call.
	Denied(port auth.Port, reason, subject, what string, err error)
}

// TLSConfig secures both listeners. The zero value serves plaintext
// (loopback development and tests).
type TLSConfig struct {
	// CertFile and KeyFile are the server's certificate and key (PEM),
	// reloaded when the files change.
	CertFile string
	KeyFile  string
}

// serverOptions returns the credentials and identity interceptors of the
// source and agent listeners.
func (s *Server) serverOptions() (sources, agents []ggrpc.ServerOption, err error) {
	sources = s.authOptions(auth.PortSource)
	agents = s.authOptions(auth.PortAgent)
	if s.cfg.TLS.CertFile == "" {
		return sources, agents, nil
	}
	kp, err := tlsfiles.Load(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile, s.log)
	if err != nil {
		return nil, nil, err
	}
	var cas func() *x509.CertPool
	if s.cfg.Auth != nil {
		cas = s.cfg.Auth.ClientCAs
	}
	creds := credentials.NewTLS(tlsfiles.ServerConfig(kp, cas))
	return append(sources, ggrpc.Creds(creds)), append(agents, ggrpc.Creds(creds)), nil
}

func (s *Server) authOptions(port auth.Port) []ggrpc.ServerOption {
	if s.cfg.Auth == nil {
		return nil
	}
	g := &guard{a: s.cfg.Auth, port: port, log: s.log, streams: auth.NewCap(s.cfg.MaxStreamsPerIdentity)}
	return []ggrpc.ServerOption{ggrpc.ChainUnaryInterceptor(g.unary), ggrpc.ChainStreamInterceptor(g.stream)}
}

// guard authenticates every call of one listener and attaches the
// caller's identity to its context; handlers authorize with it. Refusals
// (Unauthenticated, PermissionDenied) are counted and logged.
type guard struct {
	a       Authenticator
	port    auth.Port
	log     *slog.Logger
	streams *auth.Cap // open streams by subject
}

func (g *guard) identify(ctx context.Context, method string) (context.Context, *auth.Identity, error) {
	req := auth.Request{Port: g.port, Certificates: peerCertificates(ctx)}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if tok, ok := strings.CutPrefix(v, "Bearer "); ok {
			req.Bearer = strings.TrimSpace(tok)
		}
	}
	id, err := g.a.Authenticate(ctx, req)
	if err != nil {
		g.a.Denied(g.port, "unauthenticated", "", method, err)
		return nil, nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if err := id.AuthorizePort(g.port); err != nil {
		g.a.Denied(g.port, "forbidden", id.Subject, method, err)
		return nil, nil, status.Error(codes.PermissionDenied, err.Error())
	}
	return auth.WithIdentity(ctx, id), id, nil
}

func (g *guard) done(id *auth.Identity, method string, err error) {
	if status.Code(err) == codes.PermissionDenied {
		g.a.Denied(g.port, "forbidden", id.Subject, method, err)
	}
}

func (g *guard) unary(ctx context.Context, req any, info *ggrpc.UnaryServerInfo, h ggrpc.UnaryHandler) (any, error) {
	ctx, id, err := g.identify(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	resp, err := h(ctx, req)
	g.done(id, info.FullMethod, err)
	return resp, err
}

func (g *guard) stream(srv any, ss ggrpc.ServerStream, info *ggrpc.StreamServerInfo, h ggrpc.StreamHandler) error {
	ctx, id, err := g.identify(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	if !g.streams.Acquire(id.Subject) {
		g.a.Denied(g.port, "stream_limit", id.Subject, info.FullMethod, nil)
		return status.Errorf(codes.ResourceExhausted, "%s already holds %d streams on the %s port (the limit)", id.Subject, g.streams.Max(), g.port)
	}
	defer g.streams.Release(id.Subject)
	err = h(srv, &identStream{ServerStream: ss, ctx: ctx})
	g.done(id, info.FullMethod, err)
	return err
}

type identStream struct {
	ggrpc.ServerStream
	ctx context.Context
}

func (s *identStream) Context() context.Context { return s.ctx }

// peerCertificates returns the caller's verified client certificate chain.
func peerCertificates(ctx context.Context) []*x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return nil
	}
	return info.State.VerifiedChains[0]
}

// denied maps an authorization error to PermissionDenied.
func denied(err error) error {
	if errors.Is(err, auth.ErrForbidden) {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	return status.Error(codes.Internal, fmt.Sprintf("authorization: %v", err))
}

// tokenCreds attaches a bearer token to every call of a client.
type tokenCreds struct {
	token  string
	secure bool
}

func (c tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + c.token}, nil
}

func (c tokenCreds) RequireTransportSecurity() bool { return c.secure }
