package evaluate

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/pkg/api"
)

// Unobserved says the agent cannot observe a manifest's object now (its
// API server does not answer or refuses the agent), as Input.Unobserved.
type Unobserved struct {
	// Reason is api.ReasonClusterUnreachable, api.ReasonForbidden or
	// api.ReasonUnauthorized.
	Reason  string
	Message string
}

// unconfirmed is Object for a manifest whose object cannot be observed
// (DESIGN.md I8): the entry keeps what was last seen (values, observed
// identity and observedAt, Available and rule conditions) and says it is unconfirmed with
// StatusFeedbackSynced=Unknown and the failure's reason. Without a
// previous result there is nothing to keep: no values, Available=Unknown.
func unconfirmed(in Input) api.ResourceStatus {
	st := api.ResourceStatus{ResourceMeta: in.Meta}
	available := metav1.Condition{Type: api.ConditionAvailable, Status: metav1.ConditionUnknown,
		Reason: in.Unobserved.Reason, Message: "The object cannot be observed: " + in.Unobserved.Message}
	if p := in.Previous; p != nil {
		st.StatusFeedbacks = p.StatusFeedbacks
		st.Observed = p.Observed
		if c := find(p.Conditions, api.ConditionAvailable); c != nil {
			available = *c
		}
	}
	conds := []metav1.Condition{appliedCondition(in.Apply), available,
		{Type: api.ConditionStatusFeedbackSynced, Status: metav1.ConditionUnknown, Reason: in.Unobserved.Reason,
			Message: "Unconfirmed: " + in.Unobserved.Message}}
	if p := in.Previous; p != nil {
		// Conditions of the bundle's rules stay as last seen too.
		for _, c := range p.Conditions {
			switch c.Type {
			case api.ConditionApplied, api.ConditionAvailable, api.ConditionStatusFeedbackSynced:
			default:
				conds = append(conds, c)
			}
		}
	}
	st.Conditions = keepTimes(conds, prevConditions(in.Previous), in.ObservedAt)
	return st
}
