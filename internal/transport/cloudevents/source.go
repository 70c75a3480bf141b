package cloudevents

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/pkg/api"
)

// Spec request actions.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// SpecRequest is a bundle write published by a source client.
type SpecRequest struct {
	Action   string
	BundleID string
	Consumer string
	// Source is the event's source attribute: the client's source id.
	Source string
	// Version is the expected generation; 0 means "the current one".
	Version           int64
	Meta              api.ObjectMeta
	Spec              api.BundleSpec
	DeletionTimestamp time.Time
}

// DecodeSpecRequest parses a spec create, update or delete request.
func DecodeSpecRequest(e Event) (SpecRequest, error) {
	r := SpecRequest{Source: e.Source}
	switch e.Type {
	case TypeSpecCreate:
		r.Action = ActionCreate
	case TypeSpecUpdate:
		r.Action = ActionUpdate
	case TypeSpecDelete:
		r.Action = ActionDelete
	default:
		return r, fmt.Errorf("event type %q: not a spec request: %w", e.Type, ErrMalformed)
	}
	var err1, err2, err3, err4, err5 error
	r.BundleID, err1 = e.mustString(ExtResourceID)
	r.Consumer, err2 = e.String(ExtClusterName)
	r.Version, err3 = e.Int(ExtResourceVersion)
	r.Meta, err4 = decodeMeta(e)
	r.DeletionTimestamp, err5 = e.Timestamp(ExtDeletionTimestamp)
	if err := first(err1, err2, err3, err4, err5); err != nil {
		return r, fmt.Errorf("event %s: %w", e.Type, err)
	}
	if r.Action != ActionDelete {
		if err := unmarshal(e, &r.Spec); err != nil {
			return r, fmt.Errorf("event %s: %w", e.Type, err)
		}
	}
	return r, nil
}

// EncodeSpecRequest builds a spec request the way an sdk-go source client
// does (used by baton's own clients and by tests).
func EncodeSpecRequest(r SpecRequest, now time.Time) (Event, error) {
	e := Event{Source: r.Source, Time: now.UTC()}
	switch r.Action {
	case ActionCreate:
		e.Type = TypeSpecCreate
	case ActionUpdate:
		e.Type = TypeSpecUpdate
	case ActionDelete:
		e.Type = TypeSpecDelete
		ts := r.DeletionTimestamp
		if ts.IsZero() {
			ts = e.Time
		}
		e.set(ExtDeletionTimestamp, ts)
	default:
		return e, fmt.Errorf("spec request action %q: unknown: %w", r.Action, ErrMalformed)
	}
	e.set(ExtResourceID, r.BundleID)
	e.set(ExtClusterName, r.Consumer)
	e.set(ExtOriginalSource, "")
	e.setInt(ExtResourceVersion, r.Version)
	meta, _ := json.Marshal(r.Meta)
	e.set(ExtMetadata, string(meta))
	if r.Action != ActionDelete {
		b, err := json.Marshal(r.Spec)
		if err != nil {
			return e, fmt.Errorf("bundle %s: encode spec: %w", r.BundleID, err)
		}
		e.Data = b
	}
	return e, nil
}

// SourceStatus is the status of a bundle as a source client receives it.
type SourceStatus struct {
	BundleID   string
	Consumer   string
	Generation int64
	SequenceID string
	// Meta is the work metadata; its timestamps are the bundle's
	// creation and deletion times (Maestro's behaviour).
	Meta     api.ObjectMeta
	Reported api.ReportedStatus
	// Spec, when set, is sent as the event's manifestBundle, as Maestro
	// sends it: a watcher that sees a deleted work still finds its manifests.
	Spec *api.BundleSpec
}

// sourceStatusData is the data of a status event to a source: exactly
// sdk-go's ManifestBundleStatus, so a client that decodes it with unknown
// fields disallowed accepts it. baton's per-object additions (observed)
// are not part of it: sources read them over REST.
type sourceStatusData struct {
	ManifestBundle *api.BundleSpec            `json:"manifestBundle,omitempty"`
	Conditions     []metav1.Condition         `json:"conditions"`
	ResourceStatus []workv1.ManifestCondition `json:"resourceStatus,omitempty"`
}

// manifestConditions drops baton's additions from per-object statuses.
func manifestConditions(rs []api.ResourceStatus) []workv1.ManifestCondition {
	if len(rs) == 0 {
		return nil
	}
	out := make([]workv1.ManifestCondition, len(rs))
	for i, r := range rs {
		out[i] = workv1.ManifestCondition{ResourceMeta: r.ResourceMeta, StatusFeedbacks: r.StatusFeedbacks, Conditions: r.Conditions}
	}
	return out
}

// EncodeSourceStatus builds the status.update_request event for a source.
func EncodeSourceStatus(s SourceStatus, source string, now time.Time) (Event, error) {
	e := Event{Source: source, Type: TypeStatusUpdate, Time: now.UTC()}
	d := sourceStatusData{ManifestBundle: s.Spec, Conditions: s.Reported.Conditions,
		ResourceStatus: manifestConditions(s.Reported.ResourceStatus)}
	if d.Conditions == nil {
		d.Conditions = []metav1.Condition{}
	}
	data, err := json.Marshal(d)
	if err != nil {
		return e, fmt.Errorf("bundle %s: encode status: %w", s.BundleID, err)
	}
	hash, err := SourceStatusHash(s.Reported)
	if err != nil {
		return e, fmt.Errorf("bundle %s: %w", s.BundleID, err)
	}
	meta, _ := json.Marshal(s.Meta)
	e.Data = data
	e.set(ExtResourceID, s.BundleID)
	e.setInt(ExtResourceVersion, s.Generation)
	e.set(ExtSequenceID, s.SequenceID)
	e.set(ExtClusterName, s.Consumer)
	e.set(ExtOriginalSource, source)
	e.set(ExtStatusHash, hash)
	e.set(ExtMetadata, string(meta))
	return e, nil
}

// DecodeSourceStatus parses a status.update_request sent to a source.
func DecodeSourceStatus(e Event) (SourceStatus, error) {
	var s SourceStatus
	if e.Type != TypeStatusUpdate {
		return s, fmt.Errorf("event type %q: not a status update: %w", e.Type, ErrMalformed)
	}
	var err1, err2, err3, err4, err5 error
	s.BundleID, err1 = e.mustString(ExtResourceID)
	s.Generation, err2 = e.Int(ExtResourceVersion)
	s.SequenceID, err3 = e.mustString(ExtSequenceID)
	s.Consumer, err4 = e.String(ExtClusterName)
	s.Meta, err5 = decodeMeta(e)
	var d sourceStatusData
	if err := first(err1, err2, err3, err4, err5, unmarshal(e, &d)); err != nil {
		return s, fmt.Errorf("event %s: %w", e.Type, err)
	}
	s.Spec = d.ManifestBundle
	s.Reported.Conditions = d.Conditions
	if len(s.Reported.Conditions) == 0 {
		s.Reported.Conditions = nil
	}
	for _, mc := range d.ResourceStatus {
		s.Reported.ResourceStatus = append(s.Reported.ResourceStatus, api.ResourceStatus{
			ResourceMeta: mc.ResourceMeta, StatusFeedbacks: mc.StatusFeedbacks, Conditions: mc.Conditions})
	}
	return s, nil
}

// DeletedStatus is the status that tells a source client its bundle is gone.
func DeletedStatus(at time.Time) api.ReportedStatus {
	return api.ReportedStatus{Conditions: []metav1.Condition{{
		Type:               api.ConditionDeleted,
		Status:             metav1.ConditionTrue,
		Reason:             "ResourceDeleted",
		Message:            "The resource bundle was removed from the cluster",
		LastTransitionTime: metav1.NewTime(at.UTC().Truncate(time.Second)),
	}}}
}

// IsDeleted reports whether a status carries Deleted=True.
func IsDeleted(r api.ReportedStatus) bool {
	for _, c := range r.Conditions {
		if c.Type == api.ConditionDeleted && c.Status == metav1.ConditionTrue {
			return true
		}
	}
	return false
}

// SourceStatusHash is the hash an sdk-go source client computes over the
// status it holds after receiving r (SHA-256 of the JSON of the work status
// in unstructured form), so a status resync skips statuses the client
// already has.
func SourceStatusHash(r api.ReportedStatus) (string, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("status hash: %w", err)
	}
	var wire struct {
		Conditions     []metav1.Condition         `json:"conditions"`
		ResourceStatus []workv1.ManifestCondition `json:"resourceStatus,omitempty"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return "", fmt.Errorf("status hash: %w", err)
	}
	st := workv1.ManifestWorkStatus{
		Conditions:     wire.Conditions,
		ResourceStatus: workv1.ManifestResourceStatus{Manifests: wire.ResourceStatus},
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	if err != nil {
		return "", fmt.Errorf("status hash: %w", err)
	}
	b, err := json.Marshal(u)
	if err != nil {
		return "", fmt.Errorf("status hash: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// StatusResync is a source's request for the statuses it lacks.
type StatusResync struct {
	Source   string
	Consumer string // "" for every consumer
	// Hashes maps bundle id to the status hash the client holds.
	Hashes map[string]string
}

// DecodeStatusResync parses a status.resync_request from a source.
func DecodeStatusResync(e Event) (StatusResync, error) {
	r := StatusResync{Source: e.Source, Hashes: map[string]string{}}
	if e.Type != TypeStatusResync {
		return r, fmt.Errorf("event type %q: not a status resync: %w", e.Type, ErrMalformed)
	}
	var l statusHashList
	var err error
	r.Consumer, err = e.String(ExtClusterName)
	if err := first(err, unmarshal(e, &l)); err != nil {
		return r, fmt.Errorf("event %s: %w", e.Type, err)
	}
	for _, h := range l.Hashes {
		r.Hashes[h.ResourceID] = h.StatusHash
	}
	return r, nil
}

// EncodeStatusResync builds a source's status.resync_request.
func EncodeStatusResync(r StatusResync, now time.Time) Event {
	e := Event{Source: r.Source, Type: TypeStatusResync, Time: now.UTC()}
	e.set(ExtClusterName, r.Consumer)
	e.Data, _ = json.Marshal(digestData(r.Hashes)) // strings only
	return e
}
