package evaluate

import (
	"fmt"
	"path"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/pkg/api"
)

// Bundle computes the bundle conditions from its per-object statuses, in
// the order Applied, Available, then every condition a condition rule set
// on some object (in order of first appearance), each with
// ObservedGeneration gen:
//   - Applied is True iff every object is Applied=True, False if any is
//     False, else Unknown (Progressing);
//   - Available is True iff every object is Available=True (exists), else
//     False (Unknown if some object has no Available condition);
//   - a rule condition (Complete, Ready, ...) is True iff every object
//     that carries it is True, False if any is False, else Unknown.
//
// A bundle without objects is Applied and Available. A condition whose
// status equals its previous status (prev) keeps its lastTransitionTime;
// otherwise it takes the latest lastTransitionTime among the objects'
// conditions of that type (the moment that caused the transition), so the
// result depends only on the inputs.
func Bundle(objs []api.ResourceStatus, gen int64, prev []metav1.Condition) []metav1.Condition {
	applied := aggregate(objs, api.ConditionApplied,
		[3]string{ReasonBundleApplied, ReasonBundleNotApplied, ReasonBundleProgress},
		[3]string{"Apply manifest work complete", "Failed to apply", "Not applied yet"})
	available := aggregate(objs, api.ConditionAvailable,
		[3]string{ReasonBundleAvailable, ReasonBundleNotAvail, ReasonBundleNotAvail},
		[3]string{"All resources are available", "Not available", "Availability unknown"})
	out := []metav1.Condition{applied, available}
	for _, typ := range ruleTypes(objs) {
		var with []api.ResourceStatus
		for _, o := range objs {
			if find(o.Conditions, typ) != nil {
				with = append(with, o)
			}
		}
		reason := "ConditionRulesTrue"
		if typ == workv1.ManifestComplete {
			reason = workv1.WorkManifestsComplete
		}
		out = append(out, aggregate(with, typ,
			[3]string{reason, "ConditionRulesFalse", "ConditionRulesUnknown"},
			[3]string{"Every manifest with this condition is " + typ, "Not " + typ, typ + " unknown"}))
	}
	for i := range out {
		out[i].ObservedGeneration = gen
		out[i].LastTransitionTime = metav1.NewTime(latestTransition(objs, out[i].Type))
		for _, p := range prev {
			if p.Type == out[i].Type && p.Status == out[i].Status {
				out[i].LastTransitionTime = p.LastTransitionTime
			}
		}
	}
	return out
}

// builtIn are the per-object conditions the evaluator itself sets.
var builtIn = map[string]bool{api.ConditionApplied: true, api.ConditionAvailable: true,
	api.ConditionStatusFeedbackSynced: true, api.ConditionDeleted: true}

// ruleTypes lists the condition types set by condition rules on objs, in
// order of first appearance.
func ruleTypes(objs []api.ResourceStatus) []string {
	var out []string
	seen := map[string]bool{}
	for _, o := range objs {
		for _, c := range o.Conditions {
			if !builtIn[c.Type] && !seen[c.Type] {
				seen[c.Type] = true
				out = append(out, c.Type)
			}
		}
	}
	return out
}

// aggregate folds the condition typ over objs; reasons and messages are
// indexed True, False, Unknown.
func aggregate(objs []api.ResourceStatus, typ string, reasons, msgs [3]string) metav1.Condition {
	var falses, unknowns []string
	for _, o := range objs {
		c := find(o.Conditions, typ)
		switch {
		case c != nil && c.Status == metav1.ConditionTrue:
		case c != nil && c.Status == metav1.ConditionFalse:
			falses = append(falses, describe(o.ResourceMeta, c))
		default:
			unknowns = append(unknowns, describe(o.ResourceMeta, c))
		}
	}
	c := metav1.Condition{Type: typ}
	switch {
	case len(falses) > 0:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, reasons[1], msgs[1]+": "+strings.Join(falses, "; ")
	case len(unknowns) > 0:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, reasons[2], msgs[2]+": "+strings.Join(unknowns, "; ")
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, reasons[0], msgs[0]
	}
	return c
}

func find(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// describe names an object and the reason of its condition.
func describe(m workv1.ManifestResourceMeta, c *metav1.Condition) string {
	name := m.Name
	if m.Namespace != "" {
		name = m.Namespace + "/" + name
	}
	reason := "no condition"
	if c != nil {
		reason = c.Reason
	}
	return fmt.Sprintf("%s %s (%s)", m.Kind, name, reason)
}

func latestTransition(objs []api.ResourceStatus, typ string) time.Time {
	var t time.Time
	for _, o := range objs {
		if c := find(o.Conditions, typ); c != nil && c.LastTransitionTime.After(t) {
			t = c.LastTransitionTime.Time
		}
	}
	return t
}

// Deleted is the condition of a bundle's final report: Deleted=True. Its
// lastTransitionTime is left to the caller.
func Deleted() metav1.Condition {
	return metav1.Condition{Type: api.ConditionDeleted, Status: metav1.ConditionTrue,
		Reason: ReasonBundleDeleted, Message: "All resources of the bundle were removed"}
}

// ConfigFor returns the first manifestConfig whose resourceIdentifier
// matches the manifest (Matches), nil when none does.
func ConfigFor(configs []workv1.ManifestConfigOption, m workv1.ManifestResourceMeta) *workv1.ManifestConfigOption {
	for i, c := range configs {
		if Matches(c.ResourceIdentifier, m.Group, m.Resource, m.Namespace, m.Name) {
			return &configs[i]
		}
	}
	return nil
}

// Matches reports whether a resourceIdentifier (of a manifest config or an
// orphaning rule) selects an object: every field equal, or matching as a
// pattern ("*" any sequence, "?" one character, as path.Match); an empty
// group or namespace matches only the core group or a cluster-scoped
// object. The agent's strategies, rules and orphaning all match with it.
func Matches(id workv1.ResourceIdentifier, group, resource, namespace, name string) bool {
	return match(id.Group, group) && match(id.Resource, resource) && match(id.Namespace, namespace) && match(id.Name, name)
}

// FeedbackRulesFor returns the feedback rules of ConfigFor.
func FeedbackRulesFor(configs []workv1.ManifestConfigOption, m workv1.ManifestResourceMeta) []workv1.FeedbackRule {
	if c := ConfigFor(configs, m); c != nil {
		return c.FeedbackRules
	}
	return nil
}

func match(pattern, s string) bool {
	if pattern == s {
		return true
	}
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}
