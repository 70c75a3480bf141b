package grpc

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// TLSConfig secures both listeners. The zero value serves plaintext without
// authentication (development and tests).
type TLSConfig struct {
	// CertFile and KeyFile are the server's certificate and key (PEM).
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, makes the agent listener require a client
	// certificate signed by this CA; the certificate's common name must equal
	// the consumer the agent subscribes and publishes for.
	ClientCAFile string
	// Token, when set, is the bearer token every call must carry in its
	// "authorization" metadata, except agent calls authenticated by a
	// verified client certificate.
	Token string
}

func (c TLSConfig) serverOptions() (sources, agents []ggrpc.ServerOption, err error) {
	if c.Token != "" {
		chk := tokenChecker(c.Token)
		sources = append(sources, ggrpc.UnaryInterceptor(chk.unary), ggrpc.StreamInterceptor(chk.stream))
		agents = append(agents, ggrpc.UnaryInterceptor(chk.unary), ggrpc.StreamInterceptor(chk.stream))
	}
	if c.CertFile == "" {
		if c.ClientCAFile != "" {
			return nil, nil, fmt.Errorf("tls: client CA without a server certificate")
		}
		return sources, agents, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: load key pair: %w", err)
	}
	base := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	sources = append(sources, ggrpc.Creds(credentials.NewTLS(base)))
	agentTLS := base.Clone()
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("tls: client CA %s: no certificate", c.ClientCAFile)
		}
		agentTLS.ClientCAs = pool
		agentTLS.ClientAuth = tls.VerifyClientCertIfGiven
		if c.Token == "" {
			agentTLS.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	agents = append(agents, ggrpc.Creds(credentials.NewTLS(agentTLS)))
	return sources, agents, nil
}

// certIdentity returns the common name of the caller's verified client
// certificate, or "" when it presented none.
func certIdentity(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return ""
	}
	return info.State.VerifiedChains[0][0].Subject.CommonName
}

// authorizeConsumer refuses a caller whose client certificate names another consumer.
func authorizeConsumer(ctx context.Context, consumer string) error {
	if id := certIdentity(ctx); id != "" && id != consumer {
		return status.Errorf(codes.PermissionDenied, "certificate %q may not act for consumer %q", id, consumer)
	}
	return nil
}

type tokenChecker string

func (t tokenChecker) check(ctx context.Context) error {
	if certIdentity(ctx) != "" {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		got, ok := strings.CutPrefix(v, "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(got), []byte(t)) == 1 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "missing or invalid bearer token")
}

func (t tokenChecker) unary(ctx context.Context, req any, _ *ggrpc.UnaryServerInfo, h ggrpc.UnaryHandler) (any, error) {
	if err := t.check(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (t tokenChecker) stream(srv any, ss ggrpc.ServerStream, _ *ggrpc.StreamServerInfo, h ggrpc.StreamHandler) error {
	if err := t.check(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
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
