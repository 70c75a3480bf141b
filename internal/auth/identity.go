// Package auth is baton's one identity model for the REST API and both gRPC
// ports: a caller is authenticated (static bearer tokens, client
// certificates, Kubernetes TokenReview, OIDC JWTs) into an Identity with a
// role, and each action is then authorized on its scope:
//
//   - admin: everything;
//   - source:<name>: bundles whose source is <name> (REST and the gRPC
//     source port), reading consumers;
//   - reader: read-only REST, Secret data redacted;
//   - agent:<consumer>: the agent port, for that consumer only.
//
// A Kubernetes service account authenticated by TokenReview is a source
// identity whose sources are decided per request by a SubjectAccessReview on
// the non-resource URL /sources/<source> with verb pub (write) or sub
// (read), Maestro's model.
//
// Package authn holds the authenticators and the auth config file; this
// package is the model alone, so handlers can authorize without importing
// them. With no authenticator configured the server runs unauthenticated:
// every request is Anonymous (an admin), and the server binds loopback
// addresses only unless told otherwise.
package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
)

// Role is what an identity may do.
type Role string

// Roles.
const (
	RoleAdmin  Role = "admin"
	RoleSource Role = "source"
	RoleReader Role = "reader"
	RoleAgent  Role = "agent"
)

// Verbs of source authorization (Maestro's SubjectAccessReview verbs).
const (
	VerbPub = "pub" // create, update, delete bundles
	VerbSub = "sub" // read bundles and their status
)

// Port is the listener a request arrived on.
type Port string

// Ports.
const (
	PortREST   Port = "rest"
	PortSource Port = "source"
	PortAgent  Port = "agent"
)

// SourceReviewer decides per request whether an identity may use verb on a
// source (a SubjectAccessReview); it backs identities with no fixed source.
type SourceReviewer interface {
	Review(ctx context.Context, id *Identity, source, verb string) error
}

// Identity is an authenticated caller.
type Identity struct {
	// Subject names the caller in logs (never a credential).
	Subject string
	Role    Role
	// Source is the source of a RoleSource identity; empty with Reviewer.
	Source string
	// Consumer is the consumer of a RoleAgent identity.
	Consumer string
	// Method is how the caller was authenticated: token, certificate,
	// kubernetes, oidc, or none.
	Method string
	// Groups are the caller's groups (Kubernetes and OIDC), for reviews.
	Groups []string
	// UID and Extra come from TokenReview and go into reviews.
	UID   string
	Extra map[string][]string
	// Reviewer decides the sources of a RoleSource identity without Source.
	Reviewer SourceReviewer
}

// Anonymous is the identity of every caller of a server without
// authentication: an admin.
var Anonymous = &Identity{Subject: "anonymous", Role: RoleAdmin, Method: "none"}

// String is the role and scope: "admin", "reader", "source:a", "agent:mgmt-1".
func (id *Identity) String() string {
	switch {
	case id == nil:
		return "none"
	case id.Role == RoleSource && id.Source == "":
		return "source:*"
	case id.Role == RoleSource:
		return "source:" + id.Source
	case id.Role == RoleAgent:
		return "agent:" + id.Consumer
	}
	return string(id.Role)
}

// Errors. An authenticator returns ErrNoCredentials when the request
// carries nothing it understands, and an error wrapping ErrUnauthenticated
// when the credential is wrong (expired, forged, unknown).
var (
	ErrNoCredentials   = errors.New("no credentials")
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
)

// Forbidden returns an error wrapping ErrForbidden that says what the
// identity may not do.
func Forbidden(id *Identity, format string, args ...any) error {
	return fmt.Errorf("%w: %s (as %s) %s", ErrForbidden, id.Subject, id, fmt.Sprintf(format, args...))
}

type ctxKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the caller's identity, or Anonymous when the server
// authenticates nobody (no identity was attached).
func FromContext(ctx context.Context) *Identity {
	if id, ok := ctx.Value(ctxKey{}).(*Identity); ok && id != nil {
		return id
	}
	return Anonymous
}

// Request is what a listener knows about a caller.
type Request struct {
	Port Port
	// Bearer is the token of "Authorization: Bearer <token>" (REST) or of
	// the "authorization" metadata (gRPC); empty when none was sent.
	Bearer string
	// Certificates are the caller's verified client certificate chain
	// (leaf first); nil when it presented none.
	Certificates []*x509.Certificate
}
