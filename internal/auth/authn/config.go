package authn

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/baton-dev/baton/internal/auth"
)

// Config is the file given to `baton server --auth-config`. Every
// authenticator is optional; they combine (a request is tried against
// each in the order tokens, certificates, OIDC, Kubernetes).
type Config struct {
	// Tokens are static bearer tokens.
	Tokens []TokenConfig `json:"tokens,omitempty"`
	// ClientCA is a PEM file of the CAs whose client certificates are
	// accepted on every listener with TLS.
	ClientCA string `json:"clientCA,omitempty"`
	// Certificates map client certificate subjects to identities. With
	// none, a certificate on the agent port is the agent of the consumer
	// named by its common name, and is refused elsewhere.
	Certificates []CertRule `json:"certificates,omitempty"`
	// OIDC validates JWTs of an OpenID Connect issuer.
	OIDC *OIDCConfig `json:"oidc,omitempty"`
	// Kubernetes validates service-account tokens with TokenReview and
	// authorizes sources with SubjectAccessReview.
	Kubernetes *KubernetesConfig `json:"kubernetes,omitempty"`
}

// TokenConfig is one static bearer token.
type TokenConfig struct {
	// Token is the secret itself, or TokenFile a file holding it.
	Token     string `json:"token,omitempty"`
	TokenFile string `json:"tokenFile,omitempty"`
	// Subject names the caller in logs.
	Subject string    `json:"subject"`
	Role    auth.Role `json:"role"`
	// Source is required with role source, Consumer with role agent.
	Source   string `json:"source,omitempty"`
	Consumer string `json:"consumer,omitempty"`
}

// CertRule maps a verified client certificate to an identity. A rule
// matches when CommonName (or one of the certificate's DNS SANs) equals
// the rule's, or when the rule's is "*". auth.Role agent with an empty
// Consumer takes the consumer from the common name; role source with an
// empty Source takes the source from it.
type CertRule struct {
	CommonName string    `json:"commonName,omitempty"`
	DNSName    string    `json:"dnsName,omitempty"`
	Role       auth.Role `json:"role"`
	Source     string    `json:"source,omitempty"`
	Consumer   string    `json:"consumer,omitempty"`
}

// OIDCConfig validates JWTs from one issuer.
type OIDCConfig struct {
	IssuerURL string `json:"issuerURL"`
	// Audience is the required aud claim (the client id).
	Audience string `json:"audience"`
	// CAFile verifies the issuer's TLS certificate (default: system roots).
	CAFile string `json:"caFile,omitempty"`
	// SubjectClaim names the caller (default "sub").
	SubjectClaim string `json:"subjectClaim,omitempty"`
	// Claim is the claim whose value picks a role through Roles (default
	// "groups"; a string or a list of strings).
	Claim string `json:"claim,omitempty"`
	// Roles map a claim value to an identity; the first match wins.
	Roles []ClaimRole `json:"roles"`
}

// ClaimRole maps one claim value to a role.
type ClaimRole struct {
	Value    string    `json:"value"`
	Role     auth.Role `json:"role"`
	Source   string    `json:"source,omitempty"`
	Consumer string    `json:"consumer,omitempty"`
}

// KubernetesConfig enables TokenReview and SubjectAccessReview.
type KubernetesConfig struct {
	// Kubeconfig is the cluster to ask; empty uses the in-cluster config.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Audiences, when set, are the token audiences TokenReview requires.
	Audiences []string `json:"audiences,omitempty"`
}

// LoadConfig reads and checks an auth config file. Token files are read
// here too; a missing one is an error.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses and checks an auth config; name is used in errors.
func ParseConfig(name string, data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("auth config %s: %w", name, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("auth config %s: %w", name, err)
	}
	return &c, nil
}

// Empty reports whether c configures no authenticator.
func (c *Config) Empty() bool {
	return c == nil || len(c.Tokens) == 0 && c.ClientCA == "" && c.OIDC == nil && c.Kubernetes == nil
}

func (c *Config) check() error {
	var errs []error
	seen := map[string]string{}
	for i := range c.Tokens {
		t := &c.Tokens[i]
		f := fmt.Sprintf("tokens[%d]", i)
		if err := t.resolve(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		if t.Subject == "" {
			errs = append(errs, fmt.Errorf("%s.subject: is required (it names the caller in logs)", f))
		}
		if err := checkScope(t.Role, t.Source, t.Consumer); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
		}
		if prev, dup := seen[t.Token]; dup {
			errs = append(errs, fmt.Errorf("%s: the same token as %s", f, prev))
		}
		seen[t.Token] = f
	}
	if len(c.Certificates) > 0 && c.ClientCA == "" {
		errs = append(errs, errors.New("certificates: need clientCA"))
	}
	for i, r := range c.Certificates {
		f := fmt.Sprintf("certificates[%d]", i)
		if r.CommonName == "" && r.DNSName == "" {
			errs = append(errs, fmt.Errorf("%s: commonName or dnsName is required (\"*\" matches any)", f))
		}
		if err := checkRole(r.Role); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
		}
	}
	if o := c.OIDC; o != nil {
		if o.IssuerURL == "" || o.Audience == "" {
			errs = append(errs, errors.New("oidc: issuerURL and audience are required"))
		}
		if len(o.Roles) == 0 {
			errs = append(errs, errors.New("oidc.roles: at least one claim value → role mapping is required"))
		}
		for i, r := range o.Roles {
			if err := checkScope(r.Role, r.Source, r.Consumer); err != nil {
				errs = append(errs, fmt.Errorf("oidc.roles[%d]: %w", i, err))
			}
		}
	}
	return errors.Join(errs...)
}

// resolve reads TokenFile into Token.
func (t *TokenConfig) resolve() error {
	switch {
	case t.Token != "" && t.TokenFile != "":
		return errors.New("token and tokenFile: give one")
	case t.TokenFile != "":
		b, err := os.ReadFile(t.TokenFile)
		if err != nil {
			return fmt.Errorf("tokenFile: %w", err)
		}
		t.Token = string(bytes.TrimSpace(b))
		if t.Token == "" {
			return fmt.Errorf("tokenFile %s: empty", t.TokenFile)
		}
	case strings.TrimSpace(t.Token) == "":
		return errors.New("token or tokenFile is required")
	}
	return nil
}

func checkRole(r auth.Role) error {
	switch r {
	case auth.RoleAdmin, auth.RoleSource, auth.RoleReader, auth.RoleAgent:
		return nil
	case "":
		return errors.New("role: is required (admin, source, reader or agent)")
	}
	return fmt.Errorf("role: %q is not admin, source, reader or agent", r)
}

func checkScope(r auth.Role, source, consumer string) error {
	if err := checkRole(r); err != nil {
		return err
	}
	switch {
	case r == auth.RoleSource && source == "":
		return errors.New("source: is required with role source")
	case r == auth.RoleAgent && consumer == "":
		return errors.New("consumer: is required with role agent")
	case r != auth.RoleSource && source != "":
		return fmt.Errorf("source: only role source has one (role is %s)", r)
	case r != auth.RoleAgent && consumer != "":
		return fmt.Errorf("consumer: only role agent has one (role is %s)", r)
	}
	return nil
}
