// Package evaluate computes the status an agent reports for one manifest
// (Object) and for a whole bundle (Bundle) from the live object, the apply
// outcome and the bundle's feedback rules. Everything here is a pure
// function: no clients, no clocks, no logging.
//
// Determinism (the reporter sends a status only when its JSON hash changes):
//
//   - Conditions always come in the order Applied, Available,
//     StatusFeedbackSynced, then one per condition rule in rule order;
//     feedback values follow rule order (first rule wins on a duplicate
//     name).
//   - Times never change on their own. Pass the previous result as
//     Input.Previous: a condition whose status did not change keeps its
//     lastTransitionTime, and Observed.ObservedAt is kept while the observed
//     object (exists, uid, resourceVersion, generation) is unchanged. Only a
//     real change takes the new Input.ObservedAt (UTC, truncated to
//     milliseconds; condition times to seconds, as metav1.Time serialises).
//     Without Previous every evaluation carries fresh times, so callers must
//     pass it to avoid re-reporting unchanged objects.
//
// Condition meanings are Open Cluster Management's: Applied is the apply
// outcome, Available means the object exists (not that it is ready),
// StatusFeedbackSynced that every feedback rule yielded its values, and
// Deleted ends a bundle. Readiness is reported through WellKnownStatus
// feedback values and through condition rules (Rules): WellKnownConditions
// (Complete for Jobs and Pods, Ready for Deployments, StatefulSets,
// DaemonSets and Pods) and CEL expressions.
//
// Objects that cannot be observed (DESIGN.md I8, Input.Unobserved) keep
// their last entry with StatusFeedbackSynced=Unknown and the reason
// (ClusterUnreachable, Forbidden, Unauthorized); Observed.ObservedAt does
// not move.
//
// Missing objects (DESIGN.md I3) carry no feedback values, Available=False
// and StatusFeedbackSynced=False with reason NotFound, rule conditions
// Unknown with reason NotFound, Observed.Exists=false and an empty uid.
package evaluate

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/pkg/api"
)

// ApplyState is what the applier did with a manifest.
type ApplyState string

// Apply states.
const (
	// ApplyPending: the manifest has not been applied yet (Applied=Unknown).
	ApplyPending ApplyState = ""
	// ApplySucceeded: the last apply succeeded (Applied=True).
	ApplySucceeded ApplyState = "Succeeded"
	// ApplyFailed: the last apply failed (Applied=False with its reason).
	ApplyFailed ApplyState = "Failed"
	// ApplyReadOnly: the manifest is only observed (Applied=True, reason ReadOnly).
	ApplyReadOnly ApplyState = "ReadOnly"
)

// Condition reasons set by this package.
const (
	ReasonAppliedComplete  = "AppliedManifestComplete"
	ReasonAppliedFailed    = "AppliedManifestFailed"
	ReasonApplyPending     = "ApplyPending"
	ReasonReadOnly         = "ReadOnly"
	ReasonAvailable        = "ResourceAvailable"
	ReasonFeedbackSynced   = "StatusFeedbackSynced"
	ReasonNoValue          = "NoValue"
	ReasonInvalidJSONPath  = "InvalidJSONPath"
	ReasonValueTooLarge    = "ValueTooLarge"
	ReasonVersionNotFound  = "VersionNotFound"
	ReasonNoWellKnownRule  = "NoWellKnownRule"
	ReasonUnknownRuleType  = "UnknownRuleType"
	ReasonBundleApplied    = "AppliedManifestWorkComplete"
	ReasonBundleNotApplied = "AppliedManifestWorkFailed"
	ReasonBundleProgress   = "Progressing"
	ReasonBundleAvailable  = "ResourcesAvailable"
	ReasonBundleNotAvail   = "ResourcesNotAvailable"
	ReasonBundleDeleted    = "Deleted"
)

// ApplyResult is the apply outcome for one manifest.
type ApplyResult struct {
	State ApplyState
	// Reason and Message explain a failure (Reason defaults to
	// AppliedManifestFailed); ignored for other states.
	Reason  string
	Message string
}

// Input is everything Object needs to evaluate one manifest.
type Input struct {
	// Meta identifies the manifest (ordinal, group, version, kind, ...).
	Meta workv1.ManifestResourceMeta
	// Object is the live object; nil when it does not exist.
	Object *unstructured.Unstructured
	// FeedbackRules, ConditionRules and ScrapeType come from the
	// manifestConfig matching Meta (see ConfigFor and Input.WithConfig).
	FeedbackRules  []workv1.FeedbackRule
	ConditionRules []workv1.ConditionRule
	ScrapeType     workv1.FeedbackScrapeType
	// Versions holds the object as read at the other API versions its
	// feedback rules name (JsonPath.version); a version missing here or
	// nil means the object cannot be read at that version.
	Versions Versions
	// Apply is the applier's outcome for this manifest.
	Apply ApplyResult
	// ObservedAt is when the agent read Object; used only for changes.
	ObservedAt time.Time
	// Previous is the last result of Object for the same manifest, if any;
	// it keeps times stable (see the package doc).
	Previous *api.ResourceStatus
	// Unobserved, when set, says the object cannot be observed now: Object
	// is then ignored and the entry is the previous one, marked
	// unconfirmed (see Unobserved).
	Unobserved *Unobserved
}

// WithConfig sets the rules of the manifest config c (nil: none).
func (in Input) WithConfig(c *workv1.ManifestConfigOption) Input {
	in.FeedbackRules, in.ConditionRules, in.ScrapeType = nil, nil, ""
	if c != nil {
		in.FeedbackRules, in.ConditionRules, in.ScrapeType = c.FeedbackRules, c.ConditionRules, c.FeedbackScrapeType
	}
	return in
}

// Object evaluates one manifest.
func Object(in Input) api.ResourceStatus {
	if in.Unobserved != nil {
		return unconfirmed(in)
	}
	st := api.ResourceStatus{ResourceMeta: in.Meta, Observed: observed(in)}
	conds := []metav1.Condition{appliedCondition(in.Apply)}
	if in.Object == nil {
		conds = append(conds,
			metav1.Condition{Type: api.ConditionAvailable, Status: metav1.ConditionFalse,
				Reason: api.ReasonNotFound, Message: "The object does not exist"},
			metav1.Condition{Type: api.ConditionStatusFeedbackSynced, Status: metav1.ConditionFalse,
				Reason: api.ReasonNotFound, Message: "The object does not exist; no values reported"})
		conds = append(conds, missingRules(in.ConditionRules)...)
	} else {
		values, synced := Feedback(in.Object, in.FeedbackRules, in.Versions)
		if in.ScrapeType != "" {
			synced.Message += scrapeNote(in.ScrapeType)
		}
		st.StatusFeedbacks.Values = values
		conds = append(conds, Available(in.Object), synced)
		conds = append(conds, Rules(in.Object, in.ConditionRules)...)
	}
	st.Conditions = keepTimes(conds, prevConditions(in.Previous), in.ObservedAt)
	return st
}

// scrapeNote tells, in StatusFeedbackSynced, that a feedbackScrapeType
// was accepted but does not change how baton reads the object: it always
// watches it, so values follow every change (Poll's interval does not apply).
func scrapeNote(t workv1.FeedbackScrapeType) string {
	return fmt.Sprintf(" (feedbackScrapeType %s accepted: baton always watches the object)", t)
}

func appliedCondition(a ApplyResult) metav1.Condition {
	c := metav1.Condition{Type: api.ConditionApplied}
	switch a.State {
	case ApplySucceeded:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonAppliedComplete, "Apply manifest complete"
	case ApplyReadOnly:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonReadOnly, "Read-only manifest: observed, not applied"
	case ApplyFailed:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, a.Reason, a.Message
		if c.Reason == "" {
			c.Reason = ReasonAppliedFailed
		}
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, ReasonApplyPending, "The manifest has not been applied yet"
	}
	return c
}

// observed describes the live object, keeping the previous ObservedAt while
// the object is unchanged.
func observed(in Input) api.Observed {
	o := api.Observed{}
	if in.Object != nil {
		o.Exists = true
		o.UID = string(in.Object.GetUID())
		o.ResourceVersion = in.Object.GetResourceVersion()
		o.Generation = in.Object.GetGeneration()
	}
	if p := in.Previous; p != nil && sameObject(p.Observed, o) {
		o.ObservedAt = p.Observed.ObservedAt
		return o
	}
	o.ObservedAt = in.ObservedAt.UTC().Truncate(time.Millisecond)
	return o
}

func sameObject(a, b api.Observed) bool {
	return a.Exists == b.Exists && a.UID == b.UID && a.ResourceVersion == b.ResourceVersion && a.Generation == b.Generation
}

func prevConditions(p *api.ResourceStatus) []metav1.Condition {
	if p == nil {
		return nil
	}
	return p.Conditions
}

// keepTimes sets lastTransitionTime: the previous one when the condition's
// status did not change, else at (truncated to seconds, UTC).
func keepTimes(conds, prev []metav1.Condition, at time.Time) []metav1.Condition {
	now := metav1.NewTime(at.UTC().Truncate(time.Second))
	for i := range conds {
		conds[i].LastTransitionTime = now
		for _, p := range prev {
			if p.Type == conds[i].Type && p.Status == conds[i].Status {
				conds[i].LastTransitionTime = p.LastTransitionTime
				break
			}
		}
	}
	return conds
}
