package observe

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/baton-dev/baton/pkg/api"
)

// Reasons a scope cannot be observed, as Health.Reason.
const (
	// ReasonClusterUnreachable: the API server did not answer (connection
	// refused or reset, timeout, 5xx).
	ReasonClusterUnreachable = api.ReasonClusterUnreachable
	// ReasonForbidden: the API server refused the agent the list or watch (403).
	ReasonForbidden = api.ReasonForbidden
	// ReasonUnauthorized: the API server did not accept the agent's
	// credentials (401).
	ReasonUnauthorized = api.ReasonUnauthorized
)

// Health says whether a scope's cache reflects the API server now. When OK
// is false the cache holds what was last seen, which may no longer be true;
// Reason (one of the Reason constants) and Message say why, Since when the
// failure started.
type Health struct {
	OK      bool
	Reason  string
	Message string
	Since   time.Time
}

// ScopeHealth is the health of one scope, for health endpoints and logs.
type ScopeHealth struct {
	Resource  string // group/version/resource
	Namespace string
	Health
}

// classify turns a failed list or watch into a Health reason; ok is false
// for errors that do not mean the cache is cut off (the observer stopping,
// an expired resource version, which the informer repairs by relisting, or
// throttling).
func classify(err error) (reason string, ok bool) {
	switch {
	case err == nil, errors.Is(err, context.Canceled),
		apierrors.IsResourceExpired(err), apierrors.IsGone(err), apierrors.IsTooManyRequests(err):
		return "", false
	case apierrors.IsForbidden(err):
		return ReasonForbidden, true
	case apierrors.IsUnauthorized(err):
		return ReasonUnauthorized, true
	}
	return ReasonClusterUnreachable, true
}

// failure is the Health of a scope whose list or watch failed with err.
func failure(sc scope, verb string, err error, reason string, now time.Time) Health {
	return Health{Reason: reason, Since: now,
		Message: fmt.Sprintf("cannot %s %s: %s", verb, sc, describeErr(err, reason))}
}

// describeErr is a short, stable text for a failure: status errors keep
// the API server's message, network errors only their reason (their text
// carries ephemeral ports, which would make every report differ).
func describeErr(err error, reason string) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return st.Status().Message
	}
	if reason == ReasonClusterUnreachable {
		return "the API server does not answer"
	}
	return err.Error()
}
