package authn

import (
	"context"
	"fmt"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/baton-dev/baton/internal/auth"
)

// kubeAuth authenticates Kubernetes tokens with TokenReview and authorizes
// their sources with SubjectAccessReview on the non-resource URL
// /sources/<source>, verb pub or sub (Maestro's model).
type kubeAuth struct {
	client    kubernetes.Interface
	audiences []string
}

func newKube(cfg *KubernetesConfig) (*kubeAuth, error) {
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, err
	}
	return newKubeFor(rc, cfg.Audiences)
}

func newKubeFor(rc *rest.Config, audiences []string) (*kubeAuth, error) {
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &kubeAuth{client: c, audiences: audiences}, nil
}

func (k *kubeAuth) authenticate(ctx context.Context, token string) (*auth.Identity, error) {
	tr, err := k.client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: k.audiences}}, metav1.CreateOptions{})
	if err != nil {
		// The API server could not answer: not the caller's fault, but
		// nothing proves who they are either.
		return nil, fmt.Errorf("%w: token review: %v", auth.ErrUnauthenticated, err)
	}
	if !tr.Status.Authenticated {
		msg := tr.Status.Error
		if msg == "" {
			msg = "not authenticated"
		}
		return nil, fmt.Errorf("%w: kubernetes token: %s", auth.ErrUnauthenticated, msg)
	}
	u := tr.Status.User
	extra := map[string][]string{}
	for k, v := range u.Extra {
		extra[k] = v
	}
	return &auth.Identity{Subject: "kube:" + u.Username, Role: auth.RoleSource, Method: "kubernetes",
		Groups: u.Groups, UID: u.UID, Extra: extra, Reviewer: k}, nil
}

// Review asks the API server whether id may use verb on /sources/<source>.
func (k *kubeAuth) Review(ctx context.Context, id *auth.Identity, source, verb string) error {
	extra := map[string]authzv1.ExtraValue{}
	for key, v := range id.Extra {
		extra[key] = v
	}
	sar, err := k.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
		Spec: authzv1.SubjectAccessReviewSpec{
			User: strings.TrimPrefix(id.Subject, "kube:"), Groups: id.Groups, UID: id.UID, Extra: extra,
			NonResourceAttributes: &authzv1.NonResourceAttributes{Path: "/sources/" + source, Verb: verb},
		}}, metav1.CreateOptions{})
	if err != nil {
		return auth.Forbidden(id, "may not %s source %q: subject access review: %v", auth.VerbText(verb), source, err)
	}
	if !sar.Status.Allowed {
		return auth.Forbidden(id, "may not %s source %q (SubjectAccessReview %s /sources/%s denied)", auth.VerbText(verb), source, verb, source)
	}
	return nil
}
