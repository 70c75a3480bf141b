package authn

import (
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/tlsfiles"
)

// certMapper maps verified client certificates to identities.
type certMapper struct {
	pool  *x509.CertPool
	rules []CertRule
}

func newCertMapper(caFile string, rules []CertRule) (*certMapper, error) {
	pool, err := tlsfiles.CAPool(caFile)
	if err != nil {
		return nil, fmt.Errorf("clientCA: %w", err)
	}
	return &certMapper{pool: pool, rules: rules}, nil
}

// identity maps a verified leaf certificate. Without rules, a certificate
// on the agent port is the agent of its common name; elsewhere it is not
// an identity.
func (m *certMapper) identity(port auth.Port, leaf *x509.Certificate) (*auth.Identity, error) {
	cn := leaf.Subject.CommonName
	if len(m.rules) == 0 {
		if port == auth.PortAgent && cn != "" {
			return &auth.Identity{Subject: "cert:" + cn, Role: auth.RoleAgent, Consumer: cn, Method: "certificate"}, nil
		}
		return nil, fmt.Errorf("%w: client certificate %q: no certificate rule maps it to an identity on the %s port", auth.ErrUnauthenticated, cn, port)
	}
	for _, r := range m.rules {
		if !r.matches(leaf) {
			continue
		}
		id := &auth.Identity{Subject: "cert:" + cn, Role: r.Role, Source: r.Source, Consumer: r.Consumer, Method: "certificate"}
		if id.Role == auth.RoleAgent && id.Consumer == "" {
			id.Consumer = cn
		}
		if id.Role == auth.RoleSource && id.Source == "" {
			id.Source = cn
		}
		if (id.Role == auth.RoleAgent && id.Consumer == "") || (id.Role == auth.RoleSource && id.Source == "") {
			return nil, fmt.Errorf("%w: client certificate without a common name", auth.ErrUnauthenticated)
		}
		return id, nil
	}
	return nil, fmt.Errorf("%w: client certificate %q matches no certificate rule", auth.ErrUnauthenticated, cn)
}

func (r CertRule) matches(c *x509.Certificate) bool {
	if r.CommonName != "" && (r.CommonName == "*" || r.CommonName == c.Subject.CommonName) {
		return true
	}
	if r.DNSName != "" && (r.DNSName == "*" && len(c.DNSNames) > 0 || slices.Contains(c.DNSNames, r.DNSName)) {
		return true
	}
	return false
}
