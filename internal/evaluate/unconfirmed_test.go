package evaluate

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/pkg/api"
)

func TestUnobservedKeepsLastEntryUnconfirmed(t *testing.T) {
	svc := obj(t, `
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: ns, uid: u1, resourceVersion: "7"}
status: {loadBalancer: {ingress: [{ip: 1.1.1.1}]}}
`)
	meta := workv1.ManifestResourceMeta{Version: "v1", Kind: "Service", Resource: "services", Name: "lb", Namespace: "ns"}
	fb := rules(t, `[{type: JSONPaths, jsonPaths: [{name: ip, path: ".status.loadBalancer.ingress[0].ip"}]}]`)
	seen := Object(Input{Meta: meta, Object: svc, FeedbackRules: fb, Apply: ApplyResult{State: ApplyReadOnly}, ObservedAt: t0})

	later := t0.Add(time.Minute)
	cut := &Unobserved{Reason: api.ReasonClusterUnreachable, Message: "cannot watch v1/services in ns: the API server does not answer"}
	got := Object(Input{Meta: meta, FeedbackRules: fb, Apply: ApplyResult{State: ApplyReadOnly}, ObservedAt: later, Previous: &seen, Unobserved: cut})

	if valuesJSON(t, got.StatusFeedbacks.Values) != valuesJSON(t, seen.StatusFeedbacks.Values) {
		t.Errorf("values = %s; want the last seen %s", valuesJSON(t, got.StatusFeedbacks.Values), valuesJSON(t, seen.StatusFeedbacks.Values))
	}
	if got.Observed != seen.Observed {
		t.Errorf("observed = %+v; want the last observation %+v (observedAt not moving)", got.Observed, seen.Observed)
	}
	if c := cond(got, api.ConditionStatusFeedbackSynced); c.Status != metav1.ConditionUnknown || c.Reason != api.ReasonClusterUnreachable ||
		!c.LastTransitionTime.Time.Equal(later.Truncate(time.Second)) {
		t.Errorf("StatusFeedbackSynced = %+v; want Unknown/ClusterUnreachable since %v", c, later)
	}
	if c := cond(got, api.ConditionAvailable); c != cond(seen, api.ConditionAvailable) {
		t.Errorf("Available = %+v; want the last one %+v", c, cond(seen, api.ConditionAvailable))
	}
	if r, ok := got.Unconfirmed(); !ok || r != api.ReasonClusterUnreachable {
		t.Errorf("Unconfirmed() = %q, %v", r, ok)
	}
	if _, ok := seen.Unconfirmed(); ok {
		t.Error("an observed entry counts as unconfirmed")
	}

	// Stable while the failure lasts: same entry, same hash.
	again := Object(Input{Meta: meta, FeedbackRules: fb, Apply: ApplyResult{State: ApplyReadOnly}, ObservedAt: later.Add(time.Minute), Previous: &got, Unobserved: cut})
	if valuesJSON(t, again.StatusFeedbacks.Values) != valuesJSON(t, got.StatusFeedbacks.Values) || cond(again, api.ConditionStatusFeedbackSynced) != cond(got, api.ConditionStatusFeedbackSynced) {
		t.Errorf("a repeated evaluation changed the entry: %+v then %+v", got, again)
	}

	// Never seen: nothing to keep.
	none := Object(Input{Meta: meta, FeedbackRules: fb, Apply: ApplyResult{State: ApplyReadOnly}, ObservedAt: later,
		Unobserved: &Unobserved{Reason: api.ReasonForbidden, Message: "services is forbidden"}})
	if len(none.StatusFeedbacks.Values) != 0 || none.Observed.Exists {
		t.Errorf("never observed entry = %+v; want no values, not existing", none)
	}
	if c := cond(none, api.ConditionAvailable); c.Status != metav1.ConditionUnknown || c.Reason != api.ReasonForbidden {
		t.Errorf("Available = %+v; want Unknown/Forbidden", c)
	}
}
