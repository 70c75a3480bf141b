package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	workv1 "open-cluster-management.io/api/work/v1"
)

// Reasons of a manifest the bundle's executor may not apply.
const (
	// ReasonExecutorInvalid: the executor is not a service account subject.
	ReasonExecutorInvalid = "ExecutorInvalid"
	// ReasonExecutorForbidden: a SubjectAccessReview denied the executor a
	// verb the manifest needs; retried (with backoff) until RBAC allows it.
	ReasonExecutorForbidden = "ExecutorForbidden"
)

// executorUser is the user name of a service account executor, or an
// error when the executor cannot be used.
func executorUser(ex *workv1.ManifestWorkExecutor) (string, error) {
	if ex.Subject.Type != workv1.ExecutorSubjectTypeServiceAccount {
		return "", fmt.Errorf("executor subject type %q is not supported (want ServiceAccount)", ex.Subject.Type)
	}
	sa := ex.Subject.ServiceAccount
	if sa == nil || sa.Namespace == "" || sa.Name == "" {
		return "", errors.New("executor subject needs serviceAccount.namespace and serviceAccount.name")
	}
	return "system:serviceaccount:" + sa.Namespace + ":" + sa.Name, nil
}

// verbsFor are the verbs the executor must hold on an object before it is
// applied, as Open Cluster Management checks them: what the strategy
// writes, and delete when the bundle will delete the object (checked in
// advance, so a bundle it could not remove is never applied).
func verbsFor(strategy workv1.UpdateStrategyType, deletes bool) []string {
	var verbs []string
	switch strategy {
	case workv1.UpdateStrategyTypeReadOnly:
		return []string{"get"}
	case workv1.UpdateStrategyTypeCreateOnly:
		verbs = []string{"create", "get"}
	default:
		verbs = []string{"create", "update", "patch", "get"}
	}
	if deletes {
		verbs = append(verbs, "delete")
	}
	return verbs
}

// executorClient checks with SubjectAccessReviews that the bundle's
// executor may do what applying m needs and returns a dynamic client that
// impersonates it. The agent's own identity needs the impersonate verb on
// that service account (and on the groups of service accounts).
func (a *Applier) executorClient(ctx context.Context, ex *workv1.ManifestWorkExecutor, m *manifest, strategy workv1.UpdateStrategyType, deletes bool) (dynamic.ResourceInterface, *Error) {
	user, err := executorUser(ex)
	if err != nil {
		return nil, &Error{Object: m.id(), Action: "authorize", Reason: ReasonExecutorInvalid, Terminal: true, Err: err}
	}
	sa := ex.Subject.ServiceAccount
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.Namespace, "system:authenticated"}
	gvr := m.mapping.Resource
	var denied []string
	for _, verb := range verbsFor(strategy, deletes) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: m.obj.GetNamespace(), Name: m.obj.GetName(),
				Verb: verb, Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource},
		}}
		out, err := a.authz.SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			return nil, objErr(m.id(), "authorize", err)
		}
		if !out.Status.Allowed {
			denied = append(denied, verb)
		}
	}
	if len(denied) > 0 {
		return nil, &Error{Object: m.id(), Action: "authorize", Reason: ReasonExecutorForbidden,
			Err: fmt.Errorf("executor service account %s/%s may not %s %s (SubjectAccessReview denied)",
				sa.Namespace, sa.Name, strings.Join(denied, ", "), resourceName(gvr.Group, gvr.Resource))}
	}
	dyn, err := a.impersonating(user, groups)
	if err != nil {
		return nil, &Error{Object: m.id(), Action: "authorize", Reason: ReasonAPIError, Err: err}
	}
	if m.mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return dyn.Resource(gvr).Namespace(m.obj.GetNamespace()), nil
	}
	return dyn.Resource(gvr), nil
}

func resourceName(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
}

// impersonating returns (and caches) a dynamic client acting as user.
func (a *Applier) impersonating(user string, groups []string) (dynamic.Interface, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.executors[user]; ok {
		return c, nil
	}
	cfg := rest.CopyConfig(a.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("impersonate %s: %w", user, err)
	}
	a.executors[user] = c
	return c, nil
}
