// Package api holds baton's wire types: the JSON shapes the REST API serves
// and accepts, and the status shapes agents report. They keep Maestro's field
// names (REFERENCE.md) and only add fields (DESIGN.md, "API additions").
//
// The spec vocabulary (manifest configs, delete options, feedback values)
// reuses open-cluster-management.io/api/work/v1 so existing bundles need no
// rewrite.
package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"
)

// Kinds as they appear in the "kind" field of REST objects.
const (
	KindConsumer           = "Consumer"
	KindConsumerList       = "ConsumerList"
	KindResourceBundle     = "ResourceBundle"
	KindResourceBundleList = "ResourceBundleList"
	KindError              = "Error"
)

// BasePath is the REST prefix shared with Maestro.
const BasePath = "/api/maestro/v1"

// ChangeSeqHeader carries, on bundle lists, the change sequence to resume a
// watch from (GET …/resource-bundles?watch=true&since=N) so that nothing
// after the list is missed. A since older than the kept history is 410 Gone.
const ChangeSeqHeader = "X-Baton-Change-Seq"

// ExtensionsHeader asks for baton's additions that Maestro's schema has no
// open place for: the consumer's "agent" and the bundle's top-level
// "source" and "executor". Without it (or with any value but "true") every REST response
// decodes with Maestro's generated client types with unknown fields
// disallowed; additions that fit an open object (everything under
// "status", "metadata") are always served. baton's own client always sends
// it.
const ExtensionsHeader = "X-Baton-Extensions"

// WantsExtensions reports whether a request's header asks for baton's additions.
func WantsExtensions(h http.Header) bool { return strings.EqualFold(h.Get(ExtensionsHeader), "true") }

// Consumer is a cluster that runs one agent.
type Consumer struct {
	ID        string            `json:"id"`
	Kind      string            `json:"kind"`
	Href      string            `json:"href"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// Agent is baton's addition: what the server knows of the consumer's
	// agent. Served only to clients that send ExtensionsHeader.
	Agent *AgentState `json:"agent,omitempty"`
}

// AgentState is the liveness of a consumer's agent as the server sees it (I6).
type AgentState struct {
	Connected     bool       `json:"connected"`
	Epoch         string     `json:"epoch,omitempty"`
	LastHeartbeat *time.Time `json:"lastHeartbeat,omitempty"`
	// ID is the identity (pod or host name) of the agent whose session
	// serves the consumer; one agent session per consumer is active.
	ID string `json:"id,omitempty"`
	// Conflict is set while a second agent for the consumer is running and
	// being told to stand down (a rolling update, a copied deployment).
	Conflict *AgentConflict `json:"conflict,omitempty"`
}

// AgentConflict names the two agents of a consumer: the one serving it and
// the one standing by.
type AgentConflict struct {
	Active        string     `json:"active"`
	StandingBy    string     `json:"standingBy"`
	LastRefusedAt *time.Time `json:"lastRefusedAt,omitempty"`
	Message       string     `json:"message"`
}

// ObjectMeta is the work ObjectMeta a bundle carries (Maestro's "metadata").
// The timestamps are server-set: REST and status events fill them from the
// bundle's created_at and deleted_at (Maestro's behaviour); on input they
// are ignored.
type ObjectMeta struct {
	Name              string            `json:"name,omitempty"`
	Namespace         string            `json:"namespace,omitempty"`
	UID               string            `json:"uid,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	CreationTimestamp *metav1.Time      `json:"creationTimestamp,omitempty"`
	DeletionTimestamp *metav1.Time      `json:"deletionTimestamp,omitempty"`
}

// WithTimestamps returns m with the server-set timestamps of a bundle
// created at created and marked deleting at deleted (nil: not deleting).
func (m ObjectMeta) WithTimestamps(created time.Time, deleted *time.Time) ObjectMeta {
	m.CreationTimestamp, m.DeletionTimestamp = nil, nil
	if !created.IsZero() {
		t := metav1.NewTime(created.UTC())
		m.CreationTimestamp = &t
	}
	if deleted != nil {
		t := metav1.NewTime(deleted.UTC())
		m.DeletionTimestamp = &t
	}
	return m
}

// BundleSpec is what an agent applies: the ManifestBundle of a ManifestWork.
// Each manifest is a whole Kubernetes object in JSON.
type BundleSpec struct {
	Manifests       []json.RawMessage             `json:"manifests"`
	DeleteOption    *workv1.DeleteOption          `json:"deleteOption,omitempty"`
	ManifestConfigs []workv1.ManifestConfigOption `json:"manifestConfigs,omitempty"`
	// Executor, when set, is the identity the agent applies the manifests
	// as (a service account of the managed cluster), after checking its
	// permissions (ManifestWork's spec.executor). On the wire it is
	// "executer", as sdk-go's ManifestBundle spells it.
	Executor *workv1.ManifestWorkExecutor `json:"executer,omitempty"`
}

// ResourceBundle is a bundle as REST serves it. POST and PUT accept the same
// shape; server-set fields (id, kind, href, version, timestamps, status) are
// ignored on input.
type ResourceBundle struct {
	ID           string `json:"id"`
	Kind         string `json:"kind"`
	Href         string `json:"href"`
	Name         string `json:"name"`
	ConsumerName string `json:"consumer_name"`
	// Source is baton's addition, served only to clients that send
	// ExtensionsHeader (Maestro's schema has no such member).
	Source          string                        `json:"source,omitempty"`
	Version         int64                         `json:"version"`
	CreatedAt       time.Time                     `json:"created_at"`
	UpdatedAt       time.Time                     `json:"updated_at"`
	DeletedAt       *time.Time                    `json:"deleted_at,omitempty"`
	Metadata        ObjectMeta                    `json:"metadata"`
	Manifests       []json.RawMessage             `json:"manifests"`
	ManifestConfigs []workv1.ManifestConfigOption `json:"manifest_configs,omitempty"`
	DeleteOption    *workv1.DeleteOption          `json:"delete_option,omitempty"`
	// Executor is ManifestWork's spec.executor: baton's addition, accepted
	// on input and served only to clients that send ExtensionsHeader.
	Executor *workv1.ManifestWorkExecutor `json:"executor,omitempty"`
	Status   *BundleStatus                `json:"status,omitempty"`
}

// Spec returns the part of the bundle an agent applies.
func (b *ResourceBundle) Spec() BundleSpec {
	return BundleSpec{Manifests: b.Manifests, DeleteOption: b.DeleteOption, ManifestConfigs: b.ManifestConfigs, Executor: b.Executor}
}

// BundleStatus is the status of a bundle as REST serves it: what the agent
// reported plus what the server adds (revision, sequence id, freshness).
type BundleStatus struct {
	// ObservedVersion is the spec version the agent computed this status from.
	ObservedVersion int64 `json:"ObservedVersion"`
	// SequenceID is minted by the server (snowflake, strictly increasing per bundle).
	SequenceID     string             `json:"SequenceID,omitempty"`
	Conditions     []metav1.Condition `json:"conditions,omitempty"`
	ResourceStatus []ResourceStatus   `json:"resourceStatus,omitempty"`
	// Revision increases with every accepted status change of the bundle.
	Revision  int64      `json:"revision"`
	Freshness *Freshness `json:"freshness,omitempty"`
	// Deletion says, while the bundle is deleting, since when and what the
	// delete waits for.
	Deletion *Deletion `json:"deletion,omitempty"`
}

// Reasons a delete is still waiting.
const (
	DeletionAgentDisconnected = "AgentDisconnected" // the agent is not connected; nothing can confirm
	DeletionNotConfirmed      = "NotConfirmed"      // delivered or being delivered, not yet confirmed by the agent
	DeletionObjectsRemaining  = "ObjectsRemaining"  // the agent works on it; some objects still exist (finalizers)
)

// Deletion is what a deleting bundle waits for.
type Deletion struct {
	Since   time.Time `json:"since"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
}

// ReportedStatus is the part of the status an agent computes.
type ReportedStatus struct {
	Conditions     []metav1.Condition `json:"conditions,omitempty"`
	ResourceStatus []ResourceStatus   `json:"resourceStatus,omitempty"`
}

// ResourceStatus is the status of one manifest (or observed object).
type ResourceStatus struct {
	ResourceMeta    workv1.ManifestResourceMeta `json:"resourceMeta"`
	StatusFeedbacks workv1.StatusFeedbackResult `json:"statusFeedback"`
	Conditions      []metav1.Condition          `json:"conditions"`
	Observed        Observed                    `json:"observed"`
}

// Observed identifies the live object a ResourceStatus was computed from (I2).
// When the object does not exist, Exists is false and UID is empty.
type Observed struct {
	UID             string    `json:"uid,omitempty"`
	ResourceVersion string    `json:"resourceVersion,omitempty"`
	Generation      int64     `json:"generation,omitempty"`
	Exists          bool      `json:"exists"`
	ObservedAt      time.Time `json:"observedAt"`
}

// Freshness states.
const (
	FreshnessFresh = "Fresh"
	FreshnessStale = "Stale"
)

// Stale reasons.
const (
	ReasonAgentDisconnected = "AgentDisconnected"
	ReasonNotDelivered      = "NotDelivered"
	ReasonDigestMismatch    = "DigestMismatch"
	ReasonNoReportSince     = "NoReportSince"
	// ReasonObservationFailed: the agent is connected but cannot observe
	// some object of the bundle (its API server does not answer, or refuses
	// the agent); the entries of those objects are unconfirmed.
	ReasonObservationFailed = "ObservationFailed"
	// ReasonStatusTooLarge: the agent's status of the bundle is larger than
	// its transport carries; what is stored is the agent's fallback (the
	// conditions, StatusFeedbackSynced=False/StatusTooLarge naming the
	// limit, without feedback values), so the objects' values are unknown.
	// It is also the reason of that condition.
	ReasonStatusTooLarge = "StatusTooLarge"
)

// Freshness is the server's verdict on whether a bundle's status is current (I6).
type Freshness struct {
	State       string     `json:"state"`
	Reason      string     `json:"reason,omitempty"`
	ConfirmedAt *time.Time `json:"confirmedAt,omitempty"`
	AgeSeconds  float64    `json:"ageSeconds"`
}

// List is the envelope of every list response.
type List[T any] struct {
	Kind  string `json:"kind"`
	Page  int    `json:"page"`
	Size  int    `json:"size"`
	Total int    `json:"total"`
	Items []T    `json:"items"`
}

// Error is the body of every error response (Maestro's shape).
type Error struct {
	Kind        string `json:"kind"`
	ID          string `json:"id"`
	Href        string `json:"href"`
	Code        string `json:"code"`
	Reason      string `json:"reason"`
	OperationID string `json:"operation_id,omitempty"`
}

// Condition types and reasons used in bundle and per-object status.
const (
	ConditionApplied              = "Applied"
	ConditionAvailable            = "Available"
	ConditionDeleted              = "Deleted"
	ConditionStatusFeedbackSynced = "StatusFeedbackSynced"
	ReasonNotFound                = "NotFound"
)

// Reasons of StatusFeedbackSynced=Unknown on an entry the agent cannot
// confirm: it cannot observe the object, so the entry (values, observed)
// is the last it saw and may no longer be true.
const (
	ReasonClusterUnreachable = "ClusterUnreachable" // the API server does not answer
	ReasonForbidden          = "Forbidden"          // 403 on list or watch
	ReasonUnauthorized       = "Unauthorized"       // 401: credentials not accepted
)

// Unconfirmed reports whether the agent could not observe the entry's
// object when it computed the entry, and why.
func (r ResourceStatus) Unconfirmed() (reason string, unconfirmed bool) {
	for _, c := range r.Conditions {
		if c.Type != ConditionStatusFeedbackSynced || c.Status != metav1.ConditionUnknown {
			continue
		}
		switch c.Reason {
		case ReasonClusterUnreachable, ReasonForbidden, ReasonUnauthorized:
			return c.Reason, true
		}
	}
	return "", false
}

// TooLarge reports whether s is the agent's fallback for a status its
// transport refused: a bundle condition StatusFeedbackSynced with reason
// StatusTooLarge.
func (s ReportedStatus) TooLarge() bool {
	for _, c := range s.Conditions {
		if c.Type == ConditionStatusFeedbackSynced && c.Reason == ReasonStatusTooLarge {
			return true
		}
	}
	return false
}

// Unconfirmed returns the number of entries the agent could not confirm.
func (s ReportedStatus) Unconfirmed() int {
	n := 0
	for _, r := range s.ResourceStatus {
		if _, ok := r.Unconfirmed(); ok {
			n++
		}
	}
	return n
}
